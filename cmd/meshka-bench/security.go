package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/meshka/meshka/auth"
	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/internal/testcert"
	"github.com/meshka/meshka/tlsfiles"
)

// secureVia secures P1's runs for S1: TLS from the client to upstream
// (direct) or to meshka and from meshka to upstream. A nil *secureVia is
// plaintext everywhere.
type secureVia struct {
	caFile   string
	server   *tls.Config // upstream's and meshka's listener's
	client   *tls.Config
	certFile string
	keyFile  string
}

func (v *secureVia) startUpstream(debug bool) (*upstream, error) {
	if v == nil {
		return startUpstream(debug)
	}
	return startUpstreamWith(debug, []kfake.Opt{kfake.TLS(v.server)}, []kgo.Opt{kgo.DialTLSConfig(v.client)})
}

func (v *secureVia) clientOpts() []kgo.Opt {
	if v == nil {
		return nil
	}
	return []kgo.Opt{kgo.DialTLSConfig(v.client)}
}

const benchTLSListener = "tls"

func (v *secureVia) listenerName() string {
	if v == nil {
		return ""
	}
	return benchTLSListener
}

// nodeTune gives the node an SSL listener and TLS toward upstream.
func (v *secureVia) nodeTune() func(*config.Config) {
	if v == nil {
		return nil
	}
	return func(cfg *config.Config) {
		cfg.Kafka.Listeners = append(cfg.Kafka.Listeners, config.Listener{Name: benchTLSListener, Listen: "127.0.0.1:0",
			SecurityProtocol: config.SSL, TLS: config.TLS{CertFile: v.certFile, KeyFile: v.keyFile}})
		cfg.Upstream.TLS = &config.TLS{CAFile: v.caFile}
	}
}

func clientTLSFrom(caFile string) (*tls.Config, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no certificate", caFile)
	}
	return &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}, nil
}

// newSecureVia makes a CA and a certificate for 127.0.0.1 in dir.
func newSecureVia(dir string) (*secureVia, error) {
	ca, err := testcert.NewCA(dir, "meshka-bench")
	if err != nil {
		return nil, err
	}
	pair, err := ca.Server("bench", "127.0.0.1", "localhost")
	if err != nil {
		return nil, err
	}
	server, err := tlsfiles.Server(config.TLS{CertFile: pair.CertFile, KeyFile: pair.KeyFile}, nil)
	if err != nil {
		return nil, err
	}
	client, err := clientTLSFrom(ca.CAFile)
	if err != nil {
		return nil, err
	}
	return &secureVia{caFile: ca.CAFile, server: server, client: client, certFile: pair.CertFile, keyFile: pair.KeyFile}, nil
}

// runSecurity is S1-S3.
func runSecurity(b *bench) section {
	s := section{}
	dir, err := os.MkdirTemp("", "meshka-bench-tls")
	if err != nil {
		b.failed = true
		s.notes = append(s.notes, "FAILED: "+err.Error())
		return s
	}
	defer os.RemoveAll(dir)
	via, err := newSecureVia(dir)
	if err != nil {
		b.failed = true
		s.notes = append(s.notes, "FAILED: "+err.Error())
		return s
	}

	// S1: P1's produce runs, over TLS on every hop.
	b.via = via
	p, _ := produceRuns(b, "S1")
	b.via = nil
	if len(p.rows) == 1 {
		r := p.rows[0]
		r.what = fmt.Sprintf("produce 1 KiB random values as fast as the client can (P1's runs: 1 producer, %d partitions), TLS from the client to meshka and from meshka to upstream vs TLS straight to upstream", producePartitions)
		r.target, r.check = "≥ 0.9", func(x float64) bool { return x >= 0.9 }
		s.rows = append(s.rows, r)
	}
	for i := range p.samples {
		p.samples[i].case_ = "S1"
	}
	p.notes = append(p.notes, "S1: the same runs as P1 with TLS 1.3 (AES-GCM, an ECDSA P-256 certificate) on every connection: the client's to "+
		"kfake (direct), or the client's to a meshka SSL listener and meshka's to kfake (upstream.tls, its produce pipes and kgo clients). "+
		"What limits it: through meshka every byte is decrypted and encrypted once more, and copied once more each way, on the same 2 "+
		"cores the client and kfake saturate; a CPU profile of an S1-S3 run (meshka-bench -only S1 -cpuprofile) puts meshka's read loops "+
		"(mostly crypto/tls record decryption and its copies) at 5.9% and its produce pipes (tls.Conn.Write of each buffer as a TLS "+
		"record of its own, and the writes' syscalls) at 3.6% of all samples, beside kfake's segment copies (14.7%); P1 in the same "+
		"full run, plaintext, came out at 0.990.")
	s.samples = append(s.samples, p.samples...)
	s.notes = append(s.notes, p.notes...)

	// S2: authenticated connections per second.
	s2, samples, notes := connectionRate(b, via)
	if s2 != nil {
		s.rows = append(s.rows, *s2)
	}
	s.samples = append(s.samples, samples...)
	s.notes = append(s.notes, notes...)

	// S3: P6 over TLS.
	s3, samples, notes := tlsIdleMemory(b, via)
	if s3 != nil {
		s.rows = append(s.rows, *s3)
	}
	s.samples = append(s.samples, samples...)
	s.notes = append(s.notes, notes...)
	return s
}

const (
	connectDuration = 4 * time.Second
	connectWorkers  = 16
	benchUser       = "bench"
	benchPassword   = "bench-secret"
)

// connectionRate is S2: new SASL_SSL connections authenticated with
// SCRAM-SHA-512 per second, by connectWorkers clients that each connect,
// authenticate and close in a loop, against kfake with SASL and TLS and
// against a meshka SASL_SSL listener.
func connectionRate(b *bench, via *secureVia) (*row, []sample, []string) {
	var notes []string
	direct, err := startUpstreamWith(b.opts.debug, []kfake.Opt{kfake.TLS(via.server), kfake.EnableSASL(),
		kfake.Superuser(auth.ScramSHA512, benchUser, benchPassword)},
		[]kgo.Opt{kgo.DialTLSConfig(via.client), kgo.SASL(scram.Auth{User: benchUser, Pass: benchPassword}.AsSha512Mechanism())})
	if err != nil {
		b.failed = true
		return nil, nil, []string{"FAILED: S2 upstream: " + err.Error()}
	}
	defer direct.close()
	plain, err := startUpstream(b.opts.debug)
	if err != nil {
		b.failed = true
		return nil, nil, []string{"FAILED: S2 upstream: " + err.Error()}
	}
	defer plain.close()
	cred, err := auth.NewCredential(auth.ScramSHA512, benchUser, benchPassword, 4096)
	if err != nil {
		b.failed = true
		return nil, nil, []string{"FAILED: " + err.Error()}
	}
	nd, err := plain.startNode(func(cfg *config.Config) {
		cfg.Security.Users = []config.User{{Name: benchUser, ScramSHA512: cred}}
		cfg.Kafka.Listeners = []config.Listener{{Name: "sasl_ssl", Listen: "127.0.0.1:0", SecurityProtocol: config.SASLSSL,
			TLS: config.TLS{CertFile: via.certFile, KeyFile: via.keyFile}, SASLMechanisms: []string{auth.ScramSHA512}}}
	})
	if err != nil {
		b.failed = true
		return nil, nil, []string{"FAILED: S2 meshka: " + err.Error()}
	}
	defer func() {
		if err := stopNode(b, nd); err != nil {
			b.progress("S2: meshka shutdown: %v", err)
		}
	}()
	meshAddr, _ := nd.ListenerAddr("sasl_ssl")
	addrs := map[string]string{"direct": direct.addrs()[0], "meshka": meshAddr.String()}
	var samples []sample
	var d, m []float64
	for r := range b.roundsFor("S2", b.opts.rounds) {
		for _, side := range []string{"direct", "meshka"} {
			x := sample{case_: "S2", round: r, side: side}
			n, elapsed, err := connectLoop(addrs[side], via.client, connectDuration)
			x.records, x.elapsed = n, elapsed
			if err != nil {
				x.err = err.Error()
				b.failed = true
			}
			rate := float64(n) / elapsed.Seconds()
			b.progress("S2 round %d/%d %-6s %7.1f connections/s", r, b.opts.rounds, side, rate)
			samples = append(samples, x)
			if side == "direct" {
				d = append(d, rate)
			} else {
				m = append(m, rate)
			}
		}
	}
	notes = append(notes, fmt.Sprintf("S2: %d client goroutines in this process, each in a loop: dial, TLS handshake (ECDSA P-256 certificate, "+
		"TLS 1.3), SaslHandshake v1 and two SaslAuthenticate v1 (franz-go's SCRAM-SHA-512 client, 4096 iterations on both sides), close; "+
		"connections/s counts the authentications completed within %s (each connection has a deadline of its own, so the end of the run cuts none short). Direct: one broker of kfake with TLS and SASL; meshka: a SASL_SSL listener "+
		"checking the same mechanism against a stored credential. Both server sides, and the clients, share the 2 cores, and the client's "+
		"PBKDF2 (4096 iterations of HMAC-SHA-512 per connection) is a large share of the work on both sides alike.", connectWorkers, connectDuration))
	return &row{id: "S2", what: "new SASL_SSL SCRAM-SHA-512 connections per second accepted and authenticated, meshka vs kfake with SASL and TLS",
		unit: "conn/s", direct: d, meshka: m, target: "≥ 1.0", check: func(x float64) bool { return x >= 1.0 }}, samples, notes
}

// connectLoop runs connectWorkers clients connecting and authenticating
// to addr for d; it returns how many authentications completed within d.
// Each connection has a deadline of its own, so the end of the run cuts
// none short: one that completes after it is not counted.
func connectLoop(addr string, tlsCfg *tls.Config, d time.Duration) (int64, time.Duration, error) {
	var done atomic.Int64
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	for range connectWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := scramConnect(ctx, addr, tlsCfg)
				cancel()
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				if time.Now().Before(end) {
					done.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return done.Load(), d, firstErr
}

// scramConnect opens one connection and authenticates it.
func scramConnect(ctx context.Context, addr string, tlsCfg *tls.Config) error {
	var dialer tls.Dialer
	dialer.Config = tlsCfg
	nc, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer nc.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl.Add(5 * time.Second))
	}
	c := &frameConn{conn: nc, r: bufio.NewReader(nc)}
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, auth.ScramSHA512
	hsResp := kmsg.NewPtrSASLHandshakeResponse()
	if err := c.ask(hs, hsResp); err != nil {
		return err
	}
	if hsResp.ErrorCode != 0 {
		return fmt.Errorf("SaslHandshake: error %d", hsResp.ErrorCode)
	}
	session, msg, err := scram.Auth{User: benchUser, Pass: benchPassword}.AsSha512Mechanism().Authenticate(ctx, addr)
	if err != nil {
		return err
	}
	for {
		au := kmsg.NewPtrSASLAuthenticateRequest()
		au.Version, au.SASLAuthBytes = 1, msg
		auResp := kmsg.NewPtrSASLAuthenticateResponse()
		if err := c.ask(au, auResp); err != nil {
			return err
		}
		if auResp.ErrorCode != 0 {
			return fmt.Errorf("SaslAuthenticate: error %d", auResp.ErrorCode)
		}
		done, next, err := session.Challenge(auResp.SASLAuthBytes)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		msg = next
	}
}

// frameConn writes requests (non-flexible versions) and reads their
// answers, one at a time.
type frameConn struct {
	conn net.Conn
	r    *bufio.Reader
	corr int32
}

func (c *frameConn) ask(req kmsg.Request, resp kmsg.Response) error {
	c.corr++
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("meshka-bench")).AppendRequest(nil, req, c.corr)
	if _, err := c.conn.Write(frame); err != nil {
		return err
	}
	var size [4]byte
	if _, err := io.ReadFull(c.r, size[:]); err != nil {
		return err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c.r, body); err != nil {
		return err
	}
	resp.SetVersion(req.GetVersion())
	return resp.ReadFrom(body[4:])
}

// tlsIdleMemory is S3: P6's measurement with every connection TLS.
func tlsIdleMemory(b *bench, via *secureVia) (*row, []sample, []string) {
	n := idleConns
	if err := raiseFileLimit(n + 1000); err != nil {
		b.failed = true
		return nil, nil, []string{"FAILED: S3: " + err.Error()}
	}
	up, err := startUpstream(b.opts.debug)
	if err != nil {
		b.failed = true
		return nil, nil, []string{"FAILED: S3 upstream: " + err.Error()}
	}
	defer up.close()
	sec := &idleTLS{server: via.server, caFile: via.caFile, listener: benchTLSListener, tune: func(cfg *config.Config) {
		cfg.Kafka.Listeners = []config.Listener{{Name: benchTLSListener, Listen: "127.0.0.1:0", SecurityProtocol: config.SSL,
			TLS: config.TLS{CertFile: via.certFile, KeyFile: via.keyFile}}}
	}}
	var samples []sample
	var plain, meshka []float64
	for r := range b.roundsFor("S3", b.opts.rounds) {
		for _, side := range []string{"plain", "meshka"} {
			x := connsOnceWith(b, up, side, r, n, sec)
			x.case_ = "S3"
			samples = append(samples, x)
			if x.err != "" {
				b.failed = true
				b.progress("S3 round %d %s: FAILED: %s", r, side, x.err)
				continue
			}
			b.progress("S3 round %d/%d %-6s %6.2f KiB RSS per TLS connection", r, b.opts.rounds, side, x.extra["rss"])
			if side == "plain" {
				plain = append(plain, x.extra["rss"])
			} else {
				meshka = append(meshka, x.extra["rss"])
			}
		}
	}
	note := fmt.Sprintf("S3: P6's method (a child process holds the client ends) with every one of the %d connections TLS 1.3: the handshake, then one "+
		"ApiVersions v3 answered, then idle. Direct column: a Go TLS listener that completes each handshake and holds the connection. "+
		"What a TLS connection holds beyond a plaintext one is crypto/tls's per-connection state and its record buffers.", n)
	return &row{id: "S3", what: fmt.Sprintf("process RSS per idle TLS connection (%d connections); direct column: a Go TLS listener holding handshaken connections", n),
		unit: "KiB", direct: plain, meshka: meshka, result: absolute("KiB"), target: "≤ 48 KiB", check: func(x float64) bool { return x <= 48 }}, samples, []string{note}
}
