package kafkawire

import (
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/auth"
)

// saslState is a connection's SASL authentication, owned by its read
// goroutine (the SASL handlers run there).
type saslState struct {
	session  auth.Session // an authentication in progress
	mech     string
	unframed bool // SaslHandshake v0: the next frames are bare tokens
	user     string
	authed   bool
	expires  time.Time // when the authentication runs out; zero: never
}

// gate refuses a request a SASL listener may not take yet: anything but
// ApiVersions and the SASL exchange before authentication, or after the
// authentication ran out without the client authenticating again
// (KIP-368). The connection is then closed, as Kafka closes it.
func (c *conn) gate(key int16) error {
	if !c.lst.sasl() || selfAnswered(key) {
		return nil
	}
	if !c.sasl.authed {
		return fmt.Errorf("a %s request before SASL authentication", kmsg.NameForKey(key))
	}
	if !c.sasl.expires.IsZero() && time.Now().After(c.sasl.expires) {
		return fmt.Errorf("the SASL session of %q ran out (security.sasl.session_lifetime or the token's exp) without a new authentication", c.sasl.user)
	}
	return nil
}

// authenticated records a finished authentication (c.sasl.session's) as
// user. It holds for security.sasl.session_lifetime, and no longer than
// the credential when that runs out (an OAUTHBEARER token's exp).
func (c *conn) authenticated(user string) error {
	if c.sasl.authed && c.sasl.user != user {
		// KIP-368: re-authentication keeps the principal.
		return fmt.Errorf("%w: re-authenticated as %q, was %q", auth.ErrFailed, user, c.sasl.user)
	}
	c.sasl.expires = time.Time{}
	if d := c.s.deps.SessionLifetime; d > 0 {
		c.sasl.expires = time.Now().Add(d)
	}
	if e, ok := c.sasl.session.(auth.Expirer); ok {
		if exp := e.Expiry(); !exp.IsZero() && (c.sasl.expires.IsZero() || exp.Before(c.sasl.expires)) {
			c.sasl.expires = exp
		}
	}
	c.sasl.authed, c.sasl.user, c.sasl.session = true, user, nil
	c.principal.Store(auth.UserPrincipal(user))
	return nil
}

// rawToken answers a bare SASL token (the v0 flow after SaslHandshake
// v0): the token with its size, and no Kafka response header.
type rawToken struct {
	kmsg.SASLAuthenticateResponse // to be a kmsg.Response; never encoded
	token                         []byte
}

func (r *rawToken) splice(o *outbox, _ *inflight) {
	start := len(o.head)
	o.head = append(o.head, byte(len(r.token)>>24), byte(len(r.token)>>16), byte(len(r.token)>>8), byte(len(r.token)))
	o.head = append(o.head, r.token...)
	o.headSeg(start)
}

// token takes a bare SASL token of the v0 flow.
func (c *conn) token(frame []byte) (*inflight, error) {
	out, err := c.sasl.session.Step(frame)
	if err != nil {
		// The v0 flow has no way to say why: Kafka closes the connection.
		c.s.authFailed(c.remote)
		return nil, err
	}
	if c.sasl.session.Done() {
		c.sasl.unframed = false
		if err := c.authenticated(c.sasl.session.User()); err != nil {
			return nil, err
		}
	}
	return &inflight{key: saslAuthenticateKey, finish: now(&rawToken{token: out}, nil)}, nil
}

// failures slows down repeated failed authentications from one address:
// each failure's answer waits 100 ms more than the last, up to 3 s,
// forgotten a minute after the last failure. Bounded: at 4096 addresses
// entries are dropped (stale ones, and others as the map's order has it)
// until there is room, so a flood of addresses cannot grow it.
type failures struct {
	mu   sync.Mutex
	byIP map[string]*failure
}

type failure struct {
	n    int
	last time.Time
}

const (
	failureStep   = 100 * time.Millisecond
	failureMax    = 3 * time.Second
	failureForget = time.Minute
	failureAddrs  = 4096
)

func (f *failures) add(remote string) time.Duration {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.byIP == nil {
		f.byIP = map[string]*failure{}
	}
	if len(f.byIP) >= failureAddrs {
		for ip, r := range f.byIP {
			if now.Sub(r.last) > failureForget || len(f.byIP) >= failureAddrs {
				delete(f.byIP, ip)
			}
		}
	}
	r := f.byIP[host]
	if r == nil || now.Sub(r.last) > failureForget {
		r = &failure{}
		f.byIP[host] = r
	}
	r.n++
	r.last = now
	return min(time.Duration(r.n)*failureStep, failureMax)
}

// authFailed counts a failed authentication from remote and returns how
// long its answer waits.
func (s *Server) authFailed(remote string) time.Duration { return s.fails.add(remote) }
