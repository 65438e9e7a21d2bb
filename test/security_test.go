package test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/meshka/meshka/auth"
	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/internal/testcert"
	"github.com/meshka/meshka/internal/testenv"
)

// secured is a node with a listener of each security protocol, its CA,
// a user alice (password alice-secret) for PLAIN and both SCRAMs, and an
// OAuth issuer whose tokens OAUTHBEARER accepts.
type secured struct {
	env      *testenv.Env
	ca       *testcert.CA
	other    *testcert.CA // signs certificates the node does not trust
	dir      string
	pool     *x509.CertPool
	password string
	issuer   *testIssuer
}

func startSecured(t *testing.T, opts ...testenv.Option) *secured {
	t.Helper()
	dir := t.TempDir()
	ca, err := testcert.NewCA(dir, "meshka-test")
	if err != nil {
		t.Fatal(err)
	}
	other, err := testcert.NewCA(dir, "stranger")
	if err != nil {
		t.Fatal(err)
	}
	server, err := ca.Server("node", "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	s := &secured{ca: ca, other: other, dir: dir, pool: x509.NewCertPool(), password: "alice-secret", issuer: newTestIssuer(t)}
	s.pool.AddCert(ca.Cert)
	var user config.User
	user.Name = "alice"
	if user.ScramSHA256, err = auth.NewCredential(auth.ScramSHA256, "alice", s.password, 4096); err != nil {
		t.Fatal(err)
	}
	if user.ScramSHA512, err = auth.NewCredential(auth.ScramSHA512, "alice", s.password, 4096); err != nil {
		t.Fatal(err)
	}
	tlsCfg := config.TLS{CertFile: server.CertFile, KeyFile: server.KeyFile}
	mtls := tlsCfg
	mtls.CAFile, mtls.ClientAuth = ca.CAFile, "required"
	all := append([]testenv.Option{func(cfg *config.Config) {
		cfg.Security.Users = []config.User{user}
		s.issuer.configure(cfg)
		cfg.Kafka.Listeners = []config.Listener{
			{Name: "sasl", Listen: "127.0.0.1:0", SecurityProtocol: config.SASLPlaintext},
			{Name: "sasl_ssl", Listen: "127.0.0.1:0", SecurityProtocol: config.SASLSSL, TLS: tlsCfg},
			{Name: "ssl", Listen: "127.0.0.1:0", SecurityProtocol: config.SSL, TLS: tlsCfg},
			{Name: "mtls", Listen: "127.0.0.1:0", SecurityProtocol: config.SSL, TLS: mtls,
				PrincipalMappingRules: []string{"RULE:^CN=(.*?),.*$/$1/L", "DEFAULT"}},
			{Name: "scram512", Listen: "127.0.0.1:0", SecurityProtocol: config.SASLPlaintext, SASLMechanisms: []string{auth.ScramSHA512}},
		}
	}}, opts...)
	s.env = testenv.Start(t, all...)
	return s
}

func (s *secured) addr(t *testing.T, listener string) string {
	t.Helper()
	a, ok := s.env.Node.ListenerAddr(listener)
	if !ok {
		t.Fatalf("no listener %s", listener)
	}
	return a.String()
}

func (s *secured) tls() *tls.Config { return &tls.Config{RootCAs: s.pool} }

// client is a franz-go client of one listener.
func (s *secured) client(t *testing.T, listener string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(s.addr(t, listener)), kgo.RetryTimeout(5 * time.Second),
		kgo.RequestRetries(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// roundTrip produces a record through cl and reads it back, and checks
// that Metadata named the brokers by the listener's address.
func roundTrip(t *testing.T, ctx context.Context, cl *kgo.Client, addr, topic string) {
	t.Helper()
	value := []byte(fmt.Sprintf("through %s", addr))
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: value}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	meta, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range meta.Brokers {
		if got := fmt.Sprintf("%s:%d", b.Host, b.Port); got != addr {
			t.Errorf("Metadata names broker %d at %s; the client came in on %s", b.NodeID, got, addr)
		}
	}
	cl.AddConsumeTopics(topic)
	for {
		fs := cl.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatalf("consume: %v", err)
		}
		found := false
		fs.EachRecord(func(r *kgo.Record) { found = found || string(r.Value) == string(value) })
		if found {
			return
		}
	}
}

// Every mechanism (PLAIN, both SCRAMs, OAUTHBEARER) on SASL_PLAINTEXT
// and SASL_SSL, TLS alone, and mTLS:
// a franz-go client produces and consumes, and is told the addresses of
// the listener it came in on.
func TestSecuredListeners(t *testing.T) {
	s := startSecured(t)
	ctx := timeout(t, time.Minute)
	createTopic(t, ctx, s.env.DirectClient(t), "secured", 1, nil)
	alice := func(m string) sasl.Mechanism {
		switch m {
		case auth.Plain:
			return plain.Auth{User: "alice", Pass: s.password}.AsMechanism()
		case auth.ScramSHA256:
			return scram.Auth{User: "alice", Pass: s.password}.AsSha256Mechanism()
		case auth.OAuthBearerName:
			return s.issuer.mechanism(t, time.Hour, nil)
		}
		return scram.Auth{User: "alice", Pass: s.password}.AsSha512Mechanism()
	}
	for _, listener := range []string{"sasl", "sasl_ssl"} {
		for _, mech := range config.SASLMechanisms {
			t.Run(listener+"/"+mech, func(t *testing.T) {
				opts := []kgo.Opt{kgo.SASL(alice(mech))}
				if listener == "sasl_ssl" {
					opts = append(opts, kgo.DialTLSConfig(s.tls()))
				}
				roundTrip(t, ctx, s.client(t, listener, opts...), s.addr(t, listener), "secured")
			})
		}
	}
	t.Run("ssl", func(t *testing.T) {
		roundTrip(t, ctx, s.client(t, "ssl", kgo.DialTLSConfig(s.tls())), s.addr(t, "ssl"), "secured")
	})
	t.Run("mtls", func(t *testing.T) {
		pair, err := s.ca.Client("app", pkix.Name{CommonName: "App-1", Organization: []string{"Example"}})
		if err != nil {
			t.Fatal(err)
		}
		cert, err := tls.LoadX509KeyPair(pair.CertFile, pair.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		cfg := s.tls()
		cfg.Certificates = []tls.Certificate{cert}
		roundTrip(t, ctx, s.client(t, "mtls", kgo.DialTLSConfig(cfg)), s.addr(t, "mtls"), "secured")
	})
	t.Run("default listener unchanged", func(t *testing.T) {
		roundTrip(t, ctx, s.env.Client(t), s.env.Addr(), "secured")
	})
}

// refusedWith fails the test unless a request through cl fails, and,
// when want is set, with that Kafka error.
func refusedWith(t *testing.T, ctx context.Context, cl *kgo.Client, want error) error {
	t.Helper()
	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	_, err := kmsg.NewPtrMetadataRequest().RequestWith(rctx, cl)
	if err == nil {
		t.Fatal("the request was answered")
	}
	if want != nil && !errors.Is(err, want) {
		t.Fatalf("refused with %v, want %v", err, want)
	}
	return err
}

// Wrong passwords, unknown users, a mechanism not offered, no SASL at
// all, plaintext on a TLS port, a certificate from another CA: each is
// refused, and a good client of the same node is not disturbed.
func TestSecuredListenersRefuse(t *testing.T) {
	s := startSecured(t)
	ctx := timeout(t, 2*time.Minute)
	good := s.client(t, "sasl", kgo.SASL(scram.Auth{User: "alice", Pass: s.password}.AsSha512Mechanism()))
	if _, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, good); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, listener string
		opts           []kgo.Opt
		want           error
	}{
		{"PLAIN wrong password", "sasl", []kgo.Opt{kgo.SASL(plain.Auth{User: "alice", Pass: "guess"}.AsMechanism())}, kerr.SaslAuthenticationFailed},
		{"SCRAM-SHA-256 wrong password", "sasl", []kgo.Opt{kgo.SASL(scram.Auth{User: "alice", Pass: "guess"}.AsSha256Mechanism())}, kerr.SaslAuthenticationFailed},
		{"SCRAM-SHA-512 unknown user", "sasl_ssl", []kgo.Opt{kgo.DialTLSConfig(s.tls()), kgo.SASL(scram.Auth{User: "mallory", Pass: "x"}.AsSha512Mechanism())}, kerr.SaslAuthenticationFailed},
		{"PLAIN where only SCRAM-SHA-512 is offered", "scram512", []kgo.Opt{kgo.SASL(plain.Auth{User: "alice", Pass: s.password}.AsMechanism())}, kerr.UnsupportedSaslMechanism},
		{"no SASL on a SASL listener", "sasl", nil, nil},
		{"plaintext on a TLS listener", "ssl", nil, nil},
		{"no client certificate on an mTLS listener", "mtls", []kgo.Opt{kgo.DialTLSConfig(s.tls())}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := refusedWith(t, ctx, s.client(t, tc.listener, tc.opts...), tc.want)
			t.Logf("refused: %v", err)
		})
	}
	t.Run("a certificate from another CA", func(t *testing.T) {
		pair, err := s.other.Client("stranger", pkix.Name{CommonName: "stranger"})
		if err != nil {
			t.Fatal(err)
		}
		cert, _ := tls.LoadX509KeyPair(pair.CertFile, pair.KeyFile)
		cfg := s.tls()
		cfg.Certificates = []tls.Certificate{cert}
		refusedWith(t, ctx, s.client(t, "mtls", kgo.DialTLSConfig(cfg)), nil)
	})
	if _, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, good); err != nil {
		t.Fatalf("the good client after the refusals: %v", err)
	}
	if _, err := os.Stat(s.dir); err != nil {
		t.Fatal(err)
	}
}
