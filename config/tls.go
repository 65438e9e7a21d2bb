package config

import (
	"crypto/tls"
	"fmt"
	"slices"
	"strings"
)

// TLS configures one side of TLS connections: meshka's own certificate
// and the CAs it trusts for the peer's. Files are PEM. Used by the Kafka
// listeners (server side), toward upstream and between nodes (both).
type TLS struct {
	// CertFile holds the certificate, then its chain; KeyFile its
	// private key. A server needs both; a client sends them for mTLS.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// CAFile holds the CAs that sign the peer's certificates: on a
	// listener, the clients' (mTLS); on a client, the server's (empty:
	// the system's roots).
	CAFile string `yaml:"ca_file"`
	// ClientAuth, on a listener: none (the default), requested (a
	// client certificate is checked when one is sent) or required.
	ClientAuth string `yaml:"client_auth"`
	// ServerName, on a client, is the name checked in the server's
	// certificate (empty: the host dialled).
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify, on a client, accepts any server certificate.
	// For tests; never in production.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
	// MinVersion is the lowest TLS version accepted: "1.2" (the
	// default) or "1.3".
	MinVersion string `yaml:"min_version"`
	// CipherSuites are the TLS 1.2 suites allowed, by their IANA names
	// (TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, ...); empty: Go's secure
	// defaults. TLS 1.3's suites are not configurable.
	CipherSuites []string `yaml:"cipher_suites,omitempty"`
}

// Enabled reports whether any of t is set.
func (t TLS) Enabled() bool {
	return t.CertFile != "" || t.KeyFile != "" || t.CAFile != "" || t.ClientAuth != "" || t.ServerName != "" ||
		t.InsecureSkipVerify || t.MinVersion != "" || len(t.CipherSuites) > 0
}

// TLSVersion is MinVersion as a crypto/tls constant.
func (t TLS) TLSVersion() (uint16, error) {
	switch t.MinVersion {
	case "", "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("min_version %q: want 1.2 or 1.3", t.MinVersion)
}

// Suites is CipherSuites as crypto/tls ids; nil for Go's defaults. Only
// suites Go counts as secure are accepted.
func (t TLS) Suites() ([]uint16, error) {
	if len(t.CipherSuites) == 0 {
		return nil, nil
	}
	var out []uint16
	for _, name := range t.CipherSuites {
		i := slices.IndexFunc(tls.CipherSuites(), func(s *tls.CipherSuite) bool { return s.Name == name })
		if i < 0 {
			var names []string
			for _, s := range tls.CipherSuites() {
				if slices.Contains(s.SupportedVersions, tls.VersionTLS12) {
					names = append(names, s.Name)
				}
			}
			return nil, fmt.Errorf("cipher suite %q is not one of %s", name, strings.Join(names, ", "))
		}
		out = append(out, tls.CipherSuites()[i].ID)
	}
	return out, nil
}

// ClientAuthType is ClientAuth as a crypto/tls constant.
func (t TLS) ClientAuthType() (tls.ClientAuthType, error) {
	switch t.ClientAuth {
	case "", "none":
		return tls.NoClientCert, nil
	case "requested":
		return tls.VerifyClientCertIfGiven, nil
	case "required":
		return tls.RequireAndVerifyClientCert, nil
	}
	return 0, fmt.Errorf("client_auth %q: want none, requested or required", t.ClientAuth)
}

// validateTLS checks t at path, as a server's (server) or a client's.
func (v *validator) validateTLS(path string, t TLS, server bool) {
	if _, err := t.TLSVersion(); err != nil {
		v.add(path+".min_version", "%v", err)
	}
	if _, err := t.Suites(); err != nil {
		v.add(path+".cipher_suites", "%v", err)
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		v.add(path, "cert_file and key_file go together")
	}
	if server {
		if t.CertFile == "" {
			v.add(path+".cert_file", "a TLS listener needs a certificate")
		}
		ca, err := t.ClientAuthType()
		if err != nil {
			v.add(path+".client_auth", "%v", err)
		} else if ca != tls.NoClientCert && t.CAFile == "" {
			v.add(path+".ca_file", "client_auth %s needs the CAs that sign client certificates", t.ClientAuth)
		}
		if t.ServerName != "" || t.InsecureSkipVerify {
			v.add(path, "server_name and insecure_skip_verify are for clients")
		}
	} else if t.ClientAuth != "" {
		v.add(path+".client_auth", "is for listeners")
	}
}
