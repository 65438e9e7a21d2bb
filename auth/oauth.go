package auth

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// OAUTHBEARER (RFC 7628) as Kafka's brokers speak it, server side. The
// client's one message carries a bearer token, a JWT here; a token that
// does not pass is answered with a JSON error as the server's challenge,
// and the client's empty reply (a lone 0x01) then fails the exchange, so
// the client reads SASL_AUTHENTICATION_FAILED.

// OAuthBearerName is the mechanism's name.
const OAuthBearerName = "OAUTHBEARER"

// BearerMessage is an OAUTHBEARER client's first message.
type BearerMessage struct {
	Authzid    string            // the GS2 header's a=, decoded; "" when absent
	Token      string            // auth=Bearer <token>
	Extensions map[string]string // the other key=value pairs, not interpreted
}

const maxBearerExtensions = 64

var (
	bearerKey = regexp.MustCompile(`^[A-Za-z]+$`)
	// RFC 6750's b64token, which a JWT's three base64url parts are.
	bearerToken = regexp.MustCompile(`^[A-Za-z0-9\-._~+/]+=*$`)
)

// ParseOAuthBearer parses an OAUTHBEARER client's first message: the GS2
// header "n,," or "n,a=authzid," (channel binding is not supported),
// then 0x01, then key=value pairs each ended by 0x01, then 0x01. The pair
// auth=Bearer <token> is required; the others are extensions.
func ParseOAuthBearer(in []byte) (BearerMessage, error) {
	fail := func(format string, args ...any) (BearerMessage, error) {
		return BearerMessage{}, fmt.Errorf("%w: OAUTHBEARER: %s", ErrFailed, fmt.Sprintf(format, args...))
	}
	cbind, rest, ok := bytes.Cut(in, []byte{','})
	if !ok {
		return fail("a client message without a GS2 header")
	}
	if string(cbind) != "n" && string(cbind) != "y" {
		return fail("channel binding %q is not supported", cbind)
	}
	authz, rest, ok := bytes.Cut(rest, []byte{','})
	if !ok {
		return fail("a client message without a GS2 header")
	}
	var msg BearerMessage
	if len(authz) > 0 {
		az, ok := bytes.CutPrefix(authz, []byte("a="))
		if !ok || len(az) == 0 {
			return fail("GS2 authorization identity %q", authz)
		}
		name, err := saslName(string(az))
		if err != nil {
			return fail("%v", err)
		}
		msg.Authzid = name
	}
	// What follows is 0x01, pairs ended by 0x01 each, and 0x01.
	body, ok := bytes.CutPrefix(rest, []byte{1})
	if !ok {
		return fail("no 0x01 after the GS2 header")
	}
	body, ok = bytes.CutSuffix(body, []byte{1})
	if !ok {
		return fail("the message does not end with 0x01")
	}
	for len(body) > 0 {
		pair, next, ok := bytes.Cut(body, []byte{1})
		if !ok {
			return fail("a key=value pair not ended by 0x01")
		}
		body = next
		k, v, ok := strings.Cut(string(pair), "=")
		switch {
		case !ok:
			return fail("a pair without '=': %q", pair)
		case !bearerKey.MatchString(k):
			return fail("key %q: a key is letters only", k)
		case v == "" || strings.ContainsFunc(v, badValueRune):
			return fail("the value of %q is empty or holds control characters", k)
		}
		if k == "auth" {
			if msg.Token != "" {
				return fail("auth given twice")
			}
			scheme, tok, ok := strings.Cut(v, " ")
			tok = strings.TrimLeft(tok, " ")
			if !ok || !strings.EqualFold(scheme, "bearer") || !bearerToken.MatchString(tok) {
				return fail("auth is not \"Bearer <token>\"")
			}
			msg.Token = tok
			continue
		}
		if _, dup := msg.Extensions[k]; dup {
			return fail("extension %q given twice", k)
		}
		if len(msg.Extensions) == maxBearerExtensions {
			return fail("more than %d extensions", maxBearerExtensions)
		}
		if msg.Extensions == nil {
			msg.Extensions = map[string]string{}
		}
		msg.Extensions[k] = v
	}
	if msg.Token == "" {
		return fail("no auth=Bearer <token>")
	}
	return msg, nil
}

// badValueRune is outside RFC 7628's value: VCHAR, space, tab, CR, LF.
func badValueRune(r rune) bool {
	return (r < 0x20 && r != '\t' && r != '\r' && r != '\n') || r >= 0x7f
}

// bearerSession is one server-side OAUTHBEARER exchange.
type bearerSession struct {
	v       *OAuthBearer
	step    int    // 0: awaiting the client's message; 1: the client's reply to an error; 2: over
	refused error  // why the token did not pass, told at step 1
	user    string // the principal's name, once done
	expiry  time.Time
	done    bool
}

// invalidToken is the error the client is sent, as Kafka's brokers send
// it: the reason stays in meshka's log.
var invalidToken = []byte(`{"status":"invalid_token"}`)

func (s *bearerSession) Step(in []byte) ([]byte, error) {
	switch s.step {
	case 0:
		s.step = 2
		msg, err := ParseOAuthBearer(in)
		if err != nil {
			return nil, err
		}
		claims, err := s.v.Check(msg.Token)
		if err != nil {
			s.step, s.refused = 1, err
			return invalidToken, nil
		}
		if msg.Authzid != "" && msg.Authzid != claims.Principal {
			return nil, fmt.Errorf("%w: OAUTHBEARER: the token's principal %q may not act as %q", ErrFailed, claims.Principal, msg.Authzid)
		}
		s.user, s.expiry, s.done = claims.Principal, claims.Expiry, true
		return nil, nil
	case 1:
		s.step = 2
		if len(in) != 1 || in[0] != 1 {
			return nil, fmt.Errorf("%w: OAUTHBEARER: after an error the client sent more than 0x01 (%v)", ErrFailed, s.refused)
		}
		return nil, s.refused
	}
	return nil, fmt.Errorf("%w: OAUTHBEARER: the exchange is over", ErrFailed)
}

func (s *bearerSession) Done() bool        { return s.done }
func (s *bearerSession) User() string      { return s.user }
func (s *bearerSession) Expiry() time.Time { return s.expiry }

// Expirer is a Session whose credential runs out: once Done, Expiry is
// when (an OAUTHBEARER token's exp). A connection's authentication then
// holds no longer than that (KIP-368).
type Expirer interface {
	Expiry() time.Time
}

// Claims are what a token that passed says.
type Claims struct {
	Principal string    // the principal claim's value
	Expiry    time.Time // exp
}

// Check validates a JWT: signed by a key of the set with an allowed
// algorithm, from the issuer, for one of the audiences, within exp, nbf
// and iat (each give or take the clock skew), holding a principal.
// Errors wrap ErrFailed. Safe for concurrent use; it may block while the
// key set is fetched again for a key id it lacks.
func (o *OAuthBearer) Check(token string) (Claims, error) {
	for retried := false; ; retried = true {
		seen := o.generation()
		claims := jwt.MapClaims{}
		_, err := o.parser.ParseWithClaims(token, claims, o.keyfunc.Keyfunc)
		if err != nil {
			if !retried && errors.Is(err, jwkset.ErrKeyNotFound) && o.refetchFor(seen) {
				continue
			}
			return Claims{}, fmt.Errorf("%w: OAUTHBEARER: %v", ErrFailed, err)
		}
		exp, err := claims.GetExpirationTime()
		if err != nil || exp == nil {
			return Claims{}, fmt.Errorf("%w: OAUTHBEARER: the token has no exp", ErrFailed)
		}
		principal, ok := claims[o.cfg.PrincipalClaim].(string)
		if !ok || principal == "" {
			return Claims{}, fmt.Errorf("%w: OAUTHBEARER: the token's %q claim is not a non-empty string", ErrFailed, o.cfg.PrincipalClaim)
		}
		return Claims{Principal: principal, Expiry: exp.Time}, nil
	}
}
