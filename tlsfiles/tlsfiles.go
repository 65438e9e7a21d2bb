// Package tlsfiles builds crypto/tls configurations from meshka's TLS
// settings (config.TLS): PEM files for the certificate, its key and the
// trusted CAs, read again when they change, so a renewed certificate
// takes effect without a restart and without dropping a connection.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/meshka/meshka/config"
)

// checkEvery bounds how often the files are looked at: at most once per
// second, on a handshake.
const checkEvery = time.Second

// Server is the tls.Config of a listener. The files are read now (an
// error when they do not load) and again, on a handshake, once they have
// changed; a new file that fails to load leaves the previous certificate
// in use, and says so in the log.
func Server(t config.TLS, log *slog.Logger) (*tls.Config, error) {
	base, err := common(t)
	if err != nil {
		return nil, err
	}
	auth, err := t.ClientAuthType()
	if err != nil {
		return nil, err
	}
	if t.CertFile == "" || t.KeyFile == "" {
		return nil, errors.New("tls: a listener needs cert_file and key_file")
	}
	f, err := newFiles(t, log)
	if err != nil {
		return nil, err
	}
	base.ClientAuth = auth
	cfg := base.Clone()
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		cert, pool := f.current()
		c := base.Clone()
		c.Certificates = []tls.Certificate{*cert}
		c.ClientCAs = pool
		return c, nil
	}
	return cfg, nil
}

// Client is the tls.Config of meshka dialling a TLS server: upstream, or
// another node. Its certificate (mTLS), when it has one, is read again
// once its files change; the CAs are read once.
func Client(t config.TLS, log *slog.Logger) (*tls.Config, error) {
	cfg, err := common(t)
	if err != nil {
		return nil, err
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return nil, errors.New("tls: cert_file and key_file go together")
	}
	cfg.ServerName, cfg.InsecureSkipVerify = t.ServerName, t.InsecureSkipVerify
	if t.CAFile != "" {
		pool, err := loadPool(t.CAFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" {
		f, err := newFiles(config.TLS{CertFile: t.CertFile, KeyFile: t.KeyFile}, log)
		if err != nil {
			return nil, err
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			cert, _ := f.current()
			return cert, nil
		}
	}
	return cfg, nil
}

// common is what a listener's and a client's configurations share: the
// lowest version and the TLS 1.2 suites.
func common(t config.TLS) (*tls.Config, error) {
	min, err := t.TLSVersion()
	if err != nil {
		return nil, err
	}
	suites, err := t.Suites()
	if err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: min, CipherSuites: suites}, nil
}

// files is a certificate, its key and a CA pool as last read, and the
// files' states they were read from.
type files struct {
	t   config.TLS
	log *slog.Logger

	mu      sync.Mutex
	checked time.Time
	stamps  []stamp
	cert    *tls.Certificate
	pool    *x509.CertPool // nil without a CA file
}

type stamp struct {
	mod  time.Time
	size int64
}

func newFiles(t config.TLS, log *slog.Logger) (*files, error) {
	if log == nil {
		log = slog.Default()
	}
	f := &files{t: t, log: log}
	stamps := f.stat()
	cert, pool, err := f.load()
	if err != nil {
		return nil, err
	}
	f.cert, f.pool, f.stamps, f.checked = cert, pool, stamps, time.Now()
	return f, nil
}

func (f *files) paths() []string {
	out := []string{f.t.CertFile, f.t.KeyFile}
	if f.t.CAFile != "" {
		out = append(out, f.t.CAFile)
	}
	return out
}

func (f *files) stat() []stamp {
	var out []stamp
	for _, p := range f.paths() {
		var s stamp
		if fi, err := os.Stat(p); err == nil {
			s = stamp{fi.ModTime(), fi.Size()}
		}
		out = append(out, s)
	}
	return out
}

func (f *files) load() (*tls.Certificate, *x509.CertPool, error) {
	cert, err := tls.LoadX509KeyPair(f.t.CertFile, f.t.KeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: loading %s and %s: %w", f.t.CertFile, f.t.KeyFile, err)
	}
	var pool *x509.CertPool
	if f.t.CAFile != "" {
		if pool, err = loadPool(f.t.CAFile); err != nil {
			return nil, nil, err
		}
	}
	return &cert, pool, nil
}

// current is the certificate and pool to use now, read again first if
// the files changed since they were last read.
func (f *files) current() (*tls.Certificate, *x509.CertPool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if time.Since(f.checked) < checkEvery {
		return f.cert, f.pool
	}
	f.checked = time.Now()
	stamps := f.stat()
	if equalStamps(stamps, f.stamps) {
		return f.cert, f.pool
	}
	cert, pool, err := f.load()
	if err != nil {
		// Perhaps caught half written: the next check tries again.
		f.log.Warn("TLS files changed but do not load; the previous certificate stays in use", "err", err)
		return f.cert, f.pool
	}
	f.cert, f.pool, f.stamps = cert, pool, stamps
	f.log.Info("TLS certificate reloaded", "cert_file", f.t.CertFile)
	return f.cert, f.pool
}

func equalStamps(a, b []stamp) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].mod.Equal(b[i].mod) || a[i].size != b[i].size {
			return false
		}
	}
	return true
}

func loadPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tls: %s holds no PEM certificate", path)
	}
	return pool, nil
}
