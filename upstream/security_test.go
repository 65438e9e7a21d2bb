package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/internal/testcert"
	"github.com/meshka/meshka/tlsfiles"
)

// These tests run the upstream client against kfake with SASL and with
// TLS: kgo's connections and the produce pipes' must both get through.

// upstreamTLS is a CA, a kfake listener configuration with a certificate
// it signed (requiring client certificates when mutual), and the
// client-side configuration meshka would build from upstream.tls.
func upstreamTLS(t *testing.T, mutual bool) (server, client *tls.Config) {
	t.Helper()
	dir := t.TempDir()
	ca, err := testcert.NewCA(dir, "upstream")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.Server("broker", "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(pair.CertFile, pair.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	server = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	ct := config.TLS{CAFile: ca.CAFile}
	if mutual {
		pool := x509.NewCertPool()
		pool.AddCert(ca.Cert)
		server.ClientCAs, server.ClientAuth = pool, tls.RequireAndVerifyClientCert
		cp, err := ca.Client("meshka", pkix.Name{CommonName: "meshka"})
		if err != nil {
			t.Fatal(err)
		}
		ct.CertFile, ct.KeyFile = cp.CertFile, cp.KeyFile
	}
	client, err = tlsfiles.Client(ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	return server, client
}

func mechanism(t *testing.T, name, user, pass string) sasl.Mechanism {
	switch name {
	case "PLAIN":
		return plain.Auth{User: user, Pass: pass}.AsMechanism()
	case "SCRAM-SHA-256":
		return scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()
	case "SCRAM-SHA-512":
		return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()
	}
	t.Fatalf("no mechanism %s", name)
	return nil
}

// Produce through the pipe, a one-off fetch and a fetch stream all work
// against an upstream that requires SASL (each mechanism kfake has), TLS,
// TLS with client certificates, or SASL over TLS; what the pipe wrote is
// in upstream's log, in order.
func TestSecureUpstream(t *testing.T) {
	tests := []struct {
		name      string
		mechanism string // "": no SASL
		tls       bool
		mutual    bool
	}{
		{name: "PLAIN", mechanism: "PLAIN"},
		{name: "SCRAM-SHA-256", mechanism: "SCRAM-SHA-256"},
		{name: "SCRAM-SHA-512", mechanism: "SCRAM-SHA-512"},
		{name: "TLS", tls: true},
		{name: "mTLS", tls: true, mutual: true},
		{name: "SCRAM-SHA-512 over mTLS", mechanism: "SCRAM-SHA-512", tls: true, mutual: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			const topic = "secure"
			var kopts []kfake.Opt
			var direct []kgo.Opt
			var mech sasl.Mechanism
			var clientTLS *tls.Config
			if tc.mechanism != "" {
				kopts = append(kopts, kfake.EnableSASL(), kfake.Superuser(tc.mechanism, "meshka", "s3cret"))
				mech = mechanism(t, tc.mechanism, "meshka", "s3cret")
				direct = append(direct, kgo.SASL(mech))
			}
			if tc.tls {
				var serverTLS *tls.Config
				serverTLS, clientTLS = upstreamTLS(t, tc.mutual)
				kopts = append(kopts, kfake.TLS(serverTLS))
				direct = append(direct, kgo.DialTLSConfig(clientTLS))
			}
			e := startPipeEnvOpts(t, kopts, func(c *Config) { c.TLS, c.SASL = clientTLS, mech }, 1, topic)
			e.direct = direct
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()

			leader := e.leader(ctx, topic, 0)
			for i := range 3 {
				res, err := e.produceOne(ctx, leader, args(topic, 0, 9, testBatch(value(0, i))))
				if err != nil || res.ErrorCode != 0 || res.BaseOffset != int64(i) {
					t.Fatalf("produce %d: err %v, code %d, base offset %d", i, err, res.ErrorCode, res.BaseOffset)
				}
			}
			if got := e.values(ctx, topic, 0); strings.Join(got, ",") != "0-000000,0-000001,0-000002" {
				t.Fatalf("upstream's log: %v", got)
			}

			sink := make(chanSink, 16)
			sub := e.c.Streams().Subscribe(topic, 0, 1, sink)
			defer sub.Stop()
			for {
				select {
				case c := <-sink:
					if c.Err != 0 {
						t.Fatalf("stream: error code %d", c.Err)
					}
					if len(c.Batches) == 0 {
						continue
					}
					if c.Batches[0].Base != 1 || c.HighWatermark != 3 {
						t.Fatalf("stream: first batch at %d, high watermark %d", c.Batches[0].Base, c.HighWatermark)
					}
					return
				case <-ctx.Done():
					t.Fatal("the stream delivered nothing")
				}
			}
		})
	}
}

// A produce connection whose SASL session has a lifetime (KIP-368) is
// written to for nine tenths of it and then retired: what is on it is
// answered, the next batch goes on a new connection, authenticated
// afresh, and every batch is appended in the order it was submitted.
func TestPipeRetiresBeforeSessionEnds(t *testing.T) {
	const topic, n = "reauth", 200
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	var retired atomic.Int32
	var dials atomic.Int32
	mech := mechanism(t, "SCRAM-SHA-256", "meshka", "s3cret")
	e := startPipeEnvOpts(t, []kfake.Opt{kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "meshka", "s3cret"),
		kfake.BrokerConfigs(map[string]string{"connections.max.reauth.ms": "3600000"})}, func(c *Config) {
		c.SASL = mech
		c.now = clock
		c.retired = func(int32) { retired.Add(1) }
		c.Dialer = func(ctx context.Context, network, host string) (net.Conn, error) {
			dials.Add(1)
			var d net.Dialer
			return d.DialContext(ctx, network, host)
		}
	}, 1, topic)
	e.direct = []kgo.Opt{kgo.SASL(mech)}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	leader := e.leader(ctx, topic, 0)
	e.mustProduce(ctx, leader, args(topic, 0, 9, testBatch(value(0, 0))))

	r := newResults(n)
	for i := range n {
		if i == n/2 {
			// Past nine tenths of the hour: batches still in flight on
			// the first connection are answered there, the rest go on
			// the second.
			mu.Lock()
			now = now.Add(55 * time.Minute)
			mu.Unlock()
		}
		e.submit(ctx, leader, args(topic, 0, 9, testBatch(value(0, i+1))), r.done(i))
	}
	r.wait(ctx, t)
	for i := range n {
		if r.errs[i] != nil || r.res[i].ErrorCode != 0 || r.res[i].BaseOffset != int64(i+1) {
			t.Fatalf("batch %d: err %v, code %d, base offset %d", i, r.errs[i], r.res[i].ErrorCode, r.res[i].BaseOffset)
		}
	}
	if got := retired.Load(); got != 1 {
		t.Fatalf("retired %d connections, want 1", got)
	}
	got := e.values(ctx, topic, 0)
	for i, v := range got {
		if v != value(0, i) {
			t.Fatalf("upstream's log at %d: %q, want %q", i, v, value(0, i))
		}
	}
	e.close()
	r.checkOnce(t)
}

// A produce connection's authentication that upstream refuses fails with
// an error naming the mechanism and the reason: wrong credentials (kfake,
// like a broker, closes the connection), or a mechanism upstream does not
// offer (kfake has no OAUTHBEARER).
func TestPipeAuthenticationRefused(t *testing.T) {
	mech := mechanism(t, "PLAIN", "meshka", "s3cret")
	e := startPipeEnvOpts(t, []kfake.Opt{kfake.EnableSASL(), kfake.Superuser("PLAIN", "meshka", "s3cret")},
		func(c *Config) { c.SASL = mech }, 1, "refused")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	leader := e.leader(ctx, "refused", 0)
	addr, _ := e.c.meta.BrokerAddr(leader)
	for _, tc := range []struct {
		mech sasl.Mechanism
		want string
	}{
		{mechanism(t, "PLAIN", "meshka", "wrong"), "SASL PLAIN authentication: upstream closed the connection, as a broker does when it refuses the credentials"},
		{oauth.Auth{Token: "t"}.AsMechanism(), "SASL handshake for OAUTHBEARER: UNSUPPORTED_SASL_MECHANISM"},
	} {
		conn, err := e.c.dialer.dial(ctx, "tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.c.authenticate(ctx, conn, addr, tc.mech)
		conn.Close()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.mech.Name(), err, tc.want)
		}
	}
}
