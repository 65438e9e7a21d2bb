package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/meshka/meshka/auth"
	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/internal/testcert"
)

// The SASL_SSL listener meshka dev opens beside the plaintext one, so
// TLS and SASL can be tried in one command: on the Kafka listener's port
// + 100, so 127.0.0.1:9192 by default (node i: 9192 + i), with a
// certificate signed by a CA of its own, both kept in the data dir's tls/
// (made once, then reused, so a client that trusts the CA keeps trusting
// it), and the user dev, password dev-secret.
const (
	devSecurePortOffset = 100
	devUser             = "dev"
	devPassword         = "dev-secret"
	devListenerName     = "dev_sasl_ssl"
)

// addDevSecurity adds the dev SASL_SSL listener and user to cfg, unless
// the configuration names listeners of its own. It returns the CA file
// clients trust it by, or "" when it added none.
func addDevSecurity(cfg *config.Config) (string, error) {
	if len(cfg.Kafka.Listeners) > 0 {
		return "", nil
	}
	dir := filepath.Join(cfg.Dev.DataDir, "tls")
	ca, server, err := devCertificates(dir)
	if err != nil {
		return "", fmt.Errorf("dev TLS certificates in %s: %w", dir, err)
	}
	host, port, err := net.SplitHostPort(cfg.Node.Listen)
	if err != nil {
		return "", fmt.Errorf("node.listen %q: %w", cfg.Node.Listen, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p+devSecurePortOffset > 65535 {
		return "", fmt.Errorf("node.listen %q: no port %d for the SASL_SSL listener", cfg.Node.Listen, p+devSecurePortOffset)
	}
	if p != 0 { // port 0: the Kafka listener's port is picked, and so is this one's
		p += devSecurePortOffset
	}
	listen := net.JoinHostPort(host, strconv.Itoa(p))
	cfg.Kafka.Listeners = []config.Listener{{Name: devListenerName, Listen: listen, SecurityProtocol: config.SASLSSL,
		TLS:            config.TLS{CertFile: server.CertFile, KeyFile: server.KeyFile},
		SASLMechanisms: []string{auth.Plain, auth.ScramSHA512}}}
	known := false
	for _, u := range cfg.Security.Users {
		known = known || u.Name == devUser
	}
	if !known {
		cred, err := auth.NewCredential(auth.ScramSHA512, devUser, devPassword, 4096)
		if err != nil {
			return "", err
		}
		cfg.Security.Users = append(cfg.Security.Users, config.User{Name: devUser, ScramSHA512: cred})
	}
	return ca, nil
}

// devKcat is the kcat command that lists the cluster through the dev
// SASL_SSL listener at addr.
func devKcat(addr net.Addr, caFile string) string {
	return fmt.Sprintf("kcat -b %s -X security.protocol=SASL_SSL -X sasl.mechanisms=SCRAM-SHA-512 -X sasl.username=%s -X sasl.password=%s -X ssl.ca.location=%s -L",
		addr, devUser, devPassword, caFile)
}

// devCertificates are the dev CA's file and the node certificate it
// signed, made when the files are not there yet.
func devCertificates(dir string) (caFile string, server testcert.Pair, err error) {
	server = testcert.Pair{CertFile: filepath.Join(dir, "node.pem"), KeyFile: filepath.Join(dir, "node-key.pem")}
	caFile = filepath.Join(dir, "meshka-dev-ca.pem")
	if exists(caFile) && exists(server.CertFile) && exists(server.KeyFile) {
		return caFile, server, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", server, err
	}
	ca, err := testcert.NewCA(dir, "meshka-dev")
	if err != nil {
		return "", server, err
	}
	if server, err = ca.Server("node", "127.0.0.1", "localhost", "::1"); err != nil {
		return "", server, err
	}
	return ca.CAFile, server, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
