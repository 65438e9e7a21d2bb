package upstream

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"

	"github.com/meshka/meshka/internal/ratelog"
)

// Every connection meshka makes to upstream — kgo's (metadata, admin,
// coordinators, one-off and streamed fetches) and the produce pipes' —
// is dialled by dialer, so all get the same TLS. kgo authenticates its own
// connections with the SASL mechanism (kgo.SASL) and re-authenticates
// them when a session's lifetime runs out (KIP-368); a pipe authenticates
// its connection itself (authenticate) and retires it before its session
// ends.

const (
	dialTimeout = 10 * time.Second // TCP and the TLS handshake together
	// saslMaxAnswer bounds a SASL answer; SCRAM's are under a kilobyte.
	saslMaxAnswer = 1 << 20
	// retireShare is the part of a SASL session's lifetime a pipe
	// connection is written to; the rest is left for the answers to
	// what was written before.
	retireShare = 0.9
	// maxLifetime clamps a lifetime a broker names: beyond a year it
	// never matters, and a huge one would overflow a time.Duration.
	maxLifetime = 365 * 24 * time.Hour
)

type dialer struct {
	base func(ctx context.Context, network, host string) (net.Conn, error)
	tls  *tls.Config // nil: plaintext
	lim  *ratelog.Limiter
}

// dial connects to addr and, with TLS, completes the handshake, all
// within dialTimeout. The server name checked is the configured one or
// else the host dialled.
func (d dialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	var conn net.Conn
	var err error
	if d.base != nil {
		conn, err = d.base(ctx, network, addr)
	} else {
		var nd net.Dialer
		conn, err = nd.DialContext(ctx, network, addr)
	}
	if err != nil || d.tls == nil {
		return conn, err
	}
	cfg := d.tls.Clone()
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			conn.Close()
			return nil, err
		}
		cfg.ServerName = host
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		// kgo dials again on its own, so this is the one place a
		// refused certificate can be named.
		if ctx.Err() == nil {
			d.lim.Warn("tls "+addr, "upstream TLS handshake failed", "addr", addr, "err", err)
		}
		return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
	}
	return tc, nil
}

// authenticate runs SASL on a new produce connection, within ctx's
// deadline: SaslHandshake (v1, so SaslAuthenticate follows), then
// SaslAuthenticate requests carrying the mechanism's messages until its
// session is done, as kgo does on its own connections. It returns when
// the connection must stop being written to (zero: never), from the
// session lifetime upstream names (KIP-368).
func (c *Client) authenticate(ctx context.Context, conn net.Conn, addr string, mech sasl.Mechanism) (time.Time, error) {
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
		defer conn.SetDeadline(time.Time{})
	}
	versions, err := c.ApiVersions(ctx)
	if err != nil {
		return time.Time{}, err
	}
	version := int16(0)
	for _, k := range versions.ApiKeys {
		if k.ApiKey == 36 {
			version = min(k.MaxVersion, kmsg.NewPtrSASLAuthenticateRequest().MaxVersion())
		}
	}
	rt := saslTrip{conn: conn, fmt: kmsg.NewRequestFormatter(kmsg.FormatterClientID(c.cfg.ClientID))}

	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version = 1
	hs.Mechanism = mech.Name()
	hsResp := hs.ResponseKind().(*kmsg.SASLHandshakeResponse)
	if err := rt.do(hs, hsResp); err != nil {
		return time.Time{}, fmt.Errorf("SASL handshake: %w", err)
	}
	if err := kerr.ErrorForCode(hsResp.ErrorCode); err != nil {
		return time.Time{}, fmt.Errorf("SASL handshake for %s: %w (upstream offers %s)", mech.Name(), err, strings.Join(hsResp.SupportedMechanisms, ", "))
	}

	session, msg, err := mech.Authenticate(ctx, addr)
	if err != nil {
		return time.Time{}, fmt.Errorf("SASL %s: %w", mech.Name(), err)
	}
	var lifetime int64
	var started time.Time // when the last request went: the lifetime counts from then
	// A mechanism may end with one last message whose answer it does
	// not read; upstream still answers it, so it is read here.
	for done := false; !done || len(msg) > 0; {
		req := kmsg.NewPtrSASLAuthenticateRequest()
		req.Version = version
		req.SASLAuthBytes = msg
		resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
		started = c.now()
		if err := rt.do(req, resp); err != nil {
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("upstream closed the connection, as a broker does when it refuses the credentials: %w", err)
			}
			return time.Time{}, fmt.Errorf("SASL %s authentication: %w", mech.Name(), err)
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			detail := ""
			if resp.ErrorMessage != nil {
				detail = ": " + *resp.ErrorMessage
			}
			return time.Time{}, fmt.Errorf("SASL %s authentication: %w%s", mech.Name(), err, detail)
		}
		lifetime = resp.SessionLifetimeMillis
		msg = nil
		if !done {
			if done, msg, err = session.Challenge(resp.SASLAuthBytes); err != nil {
				return time.Time{}, fmt.Errorf("SASL %s: %w", mech.Name(), err)
			}
		}
	}
	if lifetime <= 0 {
		return time.Time{}, nil
	}
	life := min(time.Duration(min(lifetime, maxLifetime.Milliseconds()))*time.Millisecond, maxLifetime)
	return started.Add(time.Duration(float64(life) * retireShare)), nil
}

// saslTrip writes one request at a time and reads its answer.
type saslTrip struct {
	conn net.Conn
	fmt  *kmsg.RequestFormatter
	corr int32
	buf  []byte
}

func (t *saslTrip) do(req kmsg.Request, resp kmsg.Response) error {
	t.corr++
	t.buf = t.fmt.AppendRequest(t.buf[:0], req, t.corr)
	if _, err := t.conn.Write(t.buf); err != nil {
		return err
	}
	var size [4]byte
	if _, err := io.ReadFull(t.conn, size[:]); err != nil {
		return err
	}
	n := int(int32(binary.BigEndian.Uint32(size[:])))
	if n < 4 || n > saslMaxAnswer {
		return fmt.Errorf("answer of %d bytes", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(t.conn, body); err != nil {
		return err
	}
	if corr := int32(binary.BigEndian.Uint32(body)); corr != t.corr {
		return fmt.Errorf("answer for correlation id %d, want %d", corr, t.corr)
	}
	resp.SetVersion(req.GetVersion())
	rest := kbin.Reader{Src: body[4:]}
	if resp.IsFlexible() {
		kmsg.SkipTags(&rest)
		if !rest.Ok() {
			return errors.New("bad tagged fields in the answer's header")
		}
	}
	return resp.ReadFrom(rest.Src)
}

// saslHook names, in meshka's log, a SASL authentication upstream ended
// by closing the connection, as a broker does when it refuses the
// credentials: kgo takes that for a network error and tries again
// without logging it. A refusal upstream answers with an error code is
// logged by kgo, through kgoLogger.
type saslHook struct {
	lim  *ratelog.Limiter
	mech string
}

var _ kgo.HookBrokerRead = saslHook{}

func (h saslHook) OnBrokerRead(meta kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key != int16(kmsg.SASLAuthenticate) || err == nil {
		return
	}
	addr := net.JoinHostPort(meta.Host, fmt.Sprint(meta.Port))
	h.lim.Warn("sasl "+addr, "upstream refused SASL authentication (it closed the connection); check upstream.sasl",
		"mechanism", h.mech, "addr", addr, "err", err)
}

// kgoLogger passes kgo's errors to meshka's log, at most one line per
// message and broker every 10 s: a refused authentication is retried on
// every request. kgo logs nothing else at that level on meshka's
// clients, which consume no groups.
type kgoLogger struct{ lim *ratelog.Limiter }

func newKgoLogger(log *slog.Logger) kgoLogger {
	return kgoLogger{lim: ratelog.New(log, 10*time.Second)}
}

func (kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelError }

func (l kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	if level != kgo.LogLevelError {
		return
	}
	key := msg
	for i := 0; i+1 < len(keyvals); i += 2 {
		if keyvals[i] == "broker" {
			key += fmt.Sprint(" ", keyvals[i+1])
		}
	}
	l.lim.Log(slog.LevelError, key, "upstream connection: "+msg, keyvals...)
}
