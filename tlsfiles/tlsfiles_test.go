package tlsfiles_test

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"

	"os"
	"testing"
	"time"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/internal/testcert"
	"github.com/meshka/meshka/tlsfiles"
)

// serve accepts TLS connections on a loopback port with cfg and echoes
// what each sends; it stops with the test.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func dial(addr string, cfg *tls.Config) (*tls.Conn, error) {
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	// TLS 1.3 tells the client of a refused certificate only on its
	// first read.
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("x")); err != nil {
		c.Close()
		return nil, err
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func mustCA(t *testing.T, dir, name string) *testcert.CA {
	t.Helper()
	ca, err := testcert.NewCA(dir, name)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// A renewed certificate is served to new connections without a restart;
// a connection made before keeps working.
func TestServerReloadsItsCertificate(t *testing.T) {
	dir := t.TempDir()
	ca := mustCA(t, dir, "ca")
	first, err := ca.Server("server", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := tlsfiles.Server(config.TLS{CertFile: first.CertFile, KeyFile: first.KeyFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, cfg)
	client, err := tlsfiles.Client(config.TLS{CAFile: ca.CAFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	old, err := dial(addr, client)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if got := old.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(first.Cert.SerialNumber) != 0 {
		t.Fatalf("served serial %v, want %v", got, first.Cert.SerialNumber)
	}

	renewed, err := ca.Server("server", "127.0.0.1") // the same files, rewritten
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := dial(addr, client)
		if err != nil {
			t.Fatal(err)
		}
		got := c.ConnectionState().PeerCertificates[0].SerialNumber
		c.Close()
		if got.Cmp(renewed.Cert.SerialNumber) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the renewed certificate was never served")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := old.Write([]byte("y")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(old, make([]byte, 1)); err != nil {
		t.Fatalf("the connection made before the renewal: %v", err)
	}
}

// A file that changes into something that does not load leaves the
// previous certificate in use.
func TestServerKeepsItsCertificateWhenTheNewOneIsBroken(t *testing.T) {
	dir := t.TempDir()
	ca := mustCA(t, dir, "ca")
	pair, err := ca.Server("server", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := tlsfiles.Server(config.TLS{CertFile: pair.CertFile, KeyFile: pair.KeyFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, cfg)
	if err := os.WriteFile(pair.CertFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // past the check interval, so the broken file is read
	client, _ := tlsfiles.Client(config.TLS{CAFile: ca.CAFile}, nil)
	c, err := dial(addr, client)
	if err != nil {
		t.Fatalf("after a broken renewal: %v", err)
	}
	c.Close()
}

// mTLS: with client_auth required, a client with a certificate from the
// listener's CA gets in; one without, or with another CA's, does not.
func TestClientAuth(t *testing.T) {
	dir := t.TempDir()
	ca, other := mustCA(t, dir, "ca"), mustCA(t, dir, "other")
	server, _ := ca.Server("server", "127.0.0.1")
	good, _ := ca.Client("alice", pkix.Name{CommonName: "alice"})
	bad, _ := other.Client("mallory", pkix.Name{CommonName: "mallory"})
	cfg, err := tlsfiles.Server(config.TLS{CertFile: server.CertFile, KeyFile: server.KeyFile, CAFile: ca.CAFile, ClientAuth: "required"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, cfg)
	for _, tc := range []struct {
		name string
		cert testcert.Pair
		ok   bool
	}{{"signed by the CA", good, true}, {"no certificate", testcert.Pair{}, false}, {"another CA's", bad, false}} {
		client, err := tlsfiles.Client(config.TLS{CAFile: ca.CAFile, CertFile: tc.cert.CertFile, KeyFile: tc.cert.KeyFile}, nil)
		if err != nil {
			t.Fatal(err)
		}
		c, err := dial(addr, client)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v, want ok %v", tc.name, err, tc.ok)
		}
		if c != nil {
			if tc.ok && c.ConnectionState().PeerCertificates[0].Subject.CommonName != "server" {
				t.Errorf("%s: served %v", tc.name, c.ConnectionState().PeerCertificates[0].Subject)
			}
			c.Close()
		}
	}
}

// The minimum version holds: a TLS 1.2 client is refused by a 1.3
// listener.
func TestMinVersion(t *testing.T) {
	dir := t.TempDir()
	ca := mustCA(t, dir, "ca")
	server, _ := ca.Server("server", "127.0.0.1")
	cfg, err := tlsfiles.Server(config.TLS{CertFile: server.CertFile, KeyFile: server.KeyFile, MinVersion: "1.3"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, cfg)
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	if _, err := dial(addr, &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS12}); err == nil {
		t.Fatal("a TLS 1.2 client got in")
	}
	if _, err := dial(addr, &tls.Config{RootCAs: pool}); err != nil {
		t.Fatal(err)
	}
}

func TestBadSettings(t *testing.T) {
	for _, tc := range []config.TLS{
		{CertFile: "/nonexistent.pem", KeyFile: "/nonexistent-key.pem"},
		{MinVersion: "1.1", CertFile: "a", KeyFile: "b"},
		{CipherSuites: []string{"TLS_RSA_WITH_RC4_128_SHA"}, CertFile: "a", KeyFile: "b"},
		{ClientAuth: "sometimes", CertFile: "a", KeyFile: "b"},
		{},
	} {
		if _, err := tlsfiles.Server(tc, nil); err == nil {
			t.Errorf("%+v: accepted", tc)
		}
	}
}
