package test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/embedded"
	"github.com/meshka/meshka/internal/testcert"
	"github.com/meshka/meshka/internal/testenv"
	"github.com/meshka/meshka/node"
	"github.com/meshka/meshka/tlsfiles"
)

// secureUpstream is how an upstream is secured: kfake's options, the
// upstream.tls and upstream.sasl sections meshka is given, and what a
// client straight to kfake needs.
type secureUpstream struct {
	kfake  []kfake.Opt
	tls    *config.TLS
	sasl   *config.SASL
	direct []kgo.Opt
}

// withTLS adds TLS to u with a CA of the test's: the brokers' certificate,
// and, when mutual, kfake requires a client certificate that meshka sends.
func (u *secureUpstream) withTLS(t *testing.T, mutual bool) {
	t.Helper()
	dir := t.TempDir()
	ca, err := testcert.NewCA(dir, "upstream")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.Server("broker", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(pair.CertFile, pair.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	server := &tls.Config{Certificates: []tls.Certificate{cert}}
	u.tls = &config.TLS{CAFile: ca.CAFile}
	if mutual {
		pool := x509.NewCertPool()
		pool.AddCert(ca.Cert)
		server.ClientCAs, server.ClientAuth = pool, tls.RequireAndVerifyClientCert
		cp, err := ca.Client("meshka", pkix.Name{CommonName: "meshka"})
		if err != nil {
			t.Fatal(err)
		}
		u.tls.CertFile, u.tls.KeyFile = cp.CertFile, cp.KeyFile
	}
	client, err := tlsfiles.Client(*u.tls, nil)
	if err != nil {
		t.Fatal(err)
	}
	u.kfake = append(u.kfake, kfake.TLS(server))
	u.direct = append(u.direct, kgo.DialTLSConfig(client))
}

// withSASL makes kfake require mechanism, with meshka's user.
func (u *secureUpstream) withSASL(mechanism string) {
	u.kfake = append(u.kfake, kfake.EnableSASL(), kfake.Superuser(mechanism, "meshka", "s3cret"))
	u.sasl = &config.SASL{Mechanism: mechanism, Username: "meshka", Password: "s3cret"}
	switch mechanism {
	case config.SASLPlain:
		u.direct = append(u.direct, kgo.SASL(plain.Auth{User: "meshka", Pass: "s3cret"}.AsMechanism()))
	case config.SASLScramSHA256:
		u.direct = append(u.direct, kgo.SASL(scram.Auth{User: "meshka", Pass: "s3cret"}.AsSha256Mechanism()))
	case config.SASLScramSHA512:
		u.direct = append(u.direct, kgo.SASL(scram.Auth{User: "meshka", Pass: "s3cret"}.AsSha512Mechanism()))
	}
}

// A Kafka client of meshka, itself plaintext and unauthenticated,
// produces with acks=all (meshka's produce connections), consumes (the
// fetch streams), and commits a consumer group's offsets (kgo, to the
// group's coordinator upstream), in front of an upstream that requires
// SASL with each mechanism kfake has, TLS, mTLS, or SASL over TLS.
func TestUpstreamSecurity(t *testing.T) {
	tests := []struct {
		name      string
		mechanism string
		tls       bool
		mutual    bool
	}{
		{name: "SASL PLAIN", mechanism: config.SASLPlain},
		{name: "SASL SCRAM-SHA-256", mechanism: config.SASLScramSHA256},
		{name: "SASL SCRAM-SHA-512", mechanism: config.SASLScramSHA512},
		{name: "TLS", tls: true},
		{name: "mTLS", tls: true, mutual: true},
		{name: "SASL_SSL PLAIN", mechanism: config.SASLPlain, tls: true},
		{name: "SASL_SSL SCRAM-SHA-512 with mTLS", mechanism: config.SASLScramSHA512, tls: true, mutual: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var u secureUpstream
			if tc.tls {
				u.withTLS(t, tc.mutual)
			}
			if tc.mechanism != "" {
				u.withSASL(tc.mechanism)
			}
			env := testenv.StartWith(t, u.kfake, func(c *config.Config) { c.Upstream.TLS, c.Upstream.SASL = u.tls, u.sasl })
			ctx := timeout(t, time.Minute)
			const topic, group, n = "secured", "secured-g", 20

			createTopic(t, ctx, env.Client(t), topic, 2, nil)
			p := env.Client(t, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
			for i := range n {
				if err := p.ProduceSync(ctx, &kgo.Record{Partition: int32(i % 2), Value: []byte{byte(i)}}).FirstErr(); err != nil {
					t.Fatalf("produce %d: %v", i, err)
				}
			}
			c := env.Client(t, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), fromStart(), kgo.DisableAutoCommit())
			if got := consumeN(t, ctx, c, n); len(got) != n {
				t.Fatalf("consumed %d", len(got))
			}
			if err := c.CommitUncommittedOffsets(ctx); err != nil {
				t.Fatalf("commit: %v", err)
			}
			if got := committed(t, ctx, env.DirectClient(t, u.direct...), group, topic); got[0] != n/2 || got[1] != n/2 {
				t.Fatalf("upstream holds offsets %v for %s, want %d for both partitions", got, group, n/2)
			}
		})
	}
}

// With a password upstream refuses, or a broker certificate meshka does
// not trust, meshka logs why, and a client of meshka is answered with a
// retriable error rather than left waiting.
func TestUpstreamRefused(t *testing.T) {
	tests := []struct {
		name   string
		secure func(t *testing.T, u *secureUpstream)
		log    string
	}{
		{"wrong password", func(t *testing.T, u *secureUpstream) {
			u.withSASL(config.SASLScramSHA256)
			u.sasl.Password = "wrong"
		}, `msg="upstream refused SASL authentication (it closed the connection); check upstream.sasl" node=0 mechanism=SCRAM-SHA-256`},
		{"untrusted certificate", func(t *testing.T, u *secureUpstream) {
			u.withTLS(t, false)
			u.tls.CAFile = ""
		}, `msg="upstream TLS handshake failed"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := timeout(t, time.Minute)
			var u secureUpstream
			tc.secure(t, &u)
			up, err := embedded.Start(embedded.Config{Brokers: 1, Partitions: 1}, u.kfake...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(up.Close)
			logs := &syncBuffer{}
			cfg := config.Default()
			cfg.Admin.Listen = "127.0.0.1:0"
			cfg.Node.Listen = "127.0.0.1:0"
			cfg.Cluster.Bind = "127.0.0.1:0"
			cfg.Upstream.Brokers = up.ListenAddrs()
			cfg.Upstream.TLS, cfg.Upstream.SASL = u.tls, u.sasl
			cfg.Kafka.ShutdownTimeout = config.Duration(5 * time.Second)
			n, err := node.Start(cfg, node.Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = n.Shutdown(context.Background()) })

			cl, err := kgo.NewClient(kgo.SeedBrokers(n.Addr().String()))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(cl.Close)
			mreq := kmsg.NewPtrMetadataRequest()
			mt := kmsg.NewMetadataRequestTopic()
			mt.Topic = kmsg.StringPtr("refused")
			mreq.Topics = append(mreq.Topics, mt)
			kresp, err := cl.Request(ctx, mreq)
			if err != nil {
				t.Fatalf("Metadata: %v", err)
			}
			meta := kresp.(*kmsg.MetadataResponse)
			if len(meta.Topics) != 1 || meta.Topics[0].ErrorCode == 0 {
				t.Fatalf("Metadata topics %+v; want an error for refused", meta.Topics)
			}
			if e, ok := kerr.ErrorForCode(meta.Topics[0].ErrorCode).(*kerr.Error); !ok || !e.Retriable {
				t.Fatalf("Metadata error %v is not retriable", kerr.ErrorForCode(meta.Topics[0].ErrorCode))
			}
			if got := logs.String(); !strings.Contains(got, tc.log) {
				t.Errorf("the log does not say %s:\n%s", tc.log, got)
			}
		})
	}
}
