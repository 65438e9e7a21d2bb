package test

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/meshka/meshka/config"
)

// rawConn speaks Kafka's framing by hand, for requests a client library
// would not send as they are here (never re-authenticating).
type rawConn struct {
	net.Conn
	r    *bufio.Reader
	corr int32
}

// ask writes req (a non-flexible version) and reads its answer into
// resp, or returns the read error.
func (c *rawConn) ask(req kmsg.Request, resp kmsg.Response) error {
	c.corr++
	body := req.AppendTo(nil)
	frame := binary.BigEndian.AppendUint32(nil, 0)
	frame = binary.BigEndian.AppendUint16(frame, uint16(req.Key()))
	frame = binary.BigEndian.AppendUint16(frame, uint16(req.GetVersion()))
	frame = binary.BigEndian.AppendUint32(frame, uint32(c.corr))
	frame = binary.BigEndian.AppendUint16(frame, 3)
	frame = append(frame, "raw"...)
	frame = append(frame, body...)
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(frame); err != nil {
		return err
	}
	var size [4]byte
	if _, err := io.ReadFull(c.r, size[:]); err != nil {
		return err
	}
	b := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c.r, b); err != nil {
		return err
	}
	if got := int32(binary.BigEndian.Uint32(b)); got != c.corr {
		return fmt.Errorf("correlation id %d, want %d", got, c.corr)
	}
	resp.SetVersion(req.GetVersion())
	return resp.ReadFrom(b[4:])
}

// KIP-368: with security.sasl.session_lifetime set, a franz-go client
// keeps producing across three lifetimes (it authenticates again), and a
// connection that never authenticates again is closed at its first
// request after the lifetime.
func TestSASLReauthentication(t *testing.T) {
	const lifetime = time.Second
	s := startSecured(t, func(cfg *config.Config) { cfg.Security.SASL.SessionLifetime = config.Duration(lifetime) })
	ctx := timeout(t, time.Minute)
	createTopic(t, ctx, s.env.DirectClient(t), "reauth", 1, nil)

	cl := s.client(t, "sasl", kgo.SASL(scram.Auth{User: "alice", Pass: s.password}.AsSha512Mechanism()))
	end := time.Now().Add(3*lifetime + lifetime/2)
	n := 0
	for time.Now().Before(end) {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "reauth", Value: []byte(fmt.Sprint(n))}).FirstErr(); err != nil {
			t.Fatalf("record %d, %s after the start: %v", n, time.Until(end)-3*lifetime-lifetime/2, err)
		}
		n++
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%d records produced across %s", n, 3*lifetime+lifetime/2)

	c, left := rawAuthenticated(t, s.addr(t, "sasl"), "PLAIN", []byte("\x00alice\x00"+s.password), lifetime)
	closedAfter(t, c, left)
}

// rawToken writes a bare SASL token frame (the v0 flow, no request
// header) and reads the bare answer.
func (c *rawConn) rawToken(token []byte) ([]byte, error) {
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(token)))
	frame = append(frame, token...)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(frame); err != nil {
		return nil, err
	}
	var size [4]byte
	if _, err := io.ReadFull(c.r, size[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint32(size[:]))
	_, err := io.ReadFull(c.r, b)
	return b, err
}

// The v0 flow: after SaslHandshake v0 the tokens travel as bare frames.
// PLAIN with the right password authenticates (Metadata is answered
// after it); a wrong one closes the connection.
func TestSASLHandshakeV0(t *testing.T) {
	s := startSecured(t)
	for _, tc := range []struct {
		password string
		ok       bool
	}{{s.password, true}, {"guess", false}} {
		nc, err := net.Dial("tcp", s.addr(t, "sasl"))
		if err != nil {
			t.Fatal(err)
		}
		c := &rawConn{Conn: nc, r: bufio.NewReader(nc)}
		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.Version, hs.Mechanism = 0, "PLAIN"
		hsResp := kmsg.NewPtrSASLHandshakeResponse()
		if err := c.ask(hs, hsResp); err != nil || hsResp.ErrorCode != 0 {
			t.Fatalf("SaslHandshake v0: %v, code %d", err, hsResp.ErrorCode)
		}
		answer, err := c.rawToken([]byte("\x00alice\x00" + tc.password))
		meta := kmsg.NewPtrMetadataRequest()
		meta.Version = 1
		metaErr := c.ask(meta, kmsg.NewPtrMetadataResponse())
		nc.Close()
		if tc.ok {
			if err != nil || len(answer) != 0 {
				t.Fatalf("v0 PLAIN token: answer %q, %v", answer, err)
			}
			if metaErr != nil {
				t.Fatalf("Metadata after a v0 authentication: %v", metaErr)
			}
			continue
		}
		if err == nil || metaErr == nil {
			t.Fatalf("a wrong password in the v0 flow: token %v, Metadata %v", err, metaErr)
		}
	}
}

// rawAuthenticated dials addr and authenticates with SaslHandshake v1
// for mech and one SaslAuthenticate v1 carrying token; it returns the
// connection and the session lifetime meshka answered, which must be
// above 0 and at most max.
func rawAuthenticated(t *testing.T, addr, mech string, token []byte, max time.Duration) (*rawConn, time.Duration) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &rawConn{Conn: nc, r: bufio.NewReader(nc)}
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, mech
	hsResp := kmsg.NewPtrSASLHandshakeResponse()
	if err := c.ask(hs, hsResp); err != nil || hsResp.ErrorCode != 0 {
		t.Fatalf("SaslHandshake: %v, code %d", err, hsResp.ErrorCode)
	}
	au := kmsg.NewPtrSASLAuthenticateRequest()
	au.Version, au.SASLAuthBytes = 1, token
	auResp := kmsg.NewPtrSASLAuthenticateResponse()
	if err := c.ask(au, auResp); err != nil || auResp.ErrorCode != 0 {
		t.Fatalf("SaslAuthenticate: %v, code %d", err, auResp.ErrorCode)
	}
	if auResp.SessionLifetimeMillis <= 0 || auResp.SessionLifetimeMillis > max.Milliseconds() {
		t.Fatalf("session lifetime %d ms, want up to %d", auResp.SessionLifetimeMillis, max.Milliseconds())
	}
	return c, time.Duration(auResp.SessionLifetimeMillis) * time.Millisecond
}

// closedAfter checks that c is answered within its session lifetime and
// closed at its first request after it.
func closedAfter(t *testing.T, c *rawConn, lifetime time.Duration) {
	t.Helper()
	meta := kmsg.NewPtrMetadataRequest()
	meta.Version = 1
	if err := c.ask(meta, kmsg.NewPtrMetadataResponse()); err != nil {
		t.Fatalf("Metadata within the session lifetime: %v", err)
	}
	time.Sleep(lifetime + 200*time.Millisecond)
	if err := c.ask(meta, kmsg.NewPtrMetadataResponse()); err == nil {
		t.Fatal("Metadata answered after the session lifetime ran out")
	}
}
