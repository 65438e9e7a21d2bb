package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/internal/testcert"
)

// devMesh protects the dev mesh as a production one would be, for what
// cfg leaves unset: a gossip key, kept in <data dir>/mesh/gossip.key
// across starts, and a CA with one certificate for remoting (every dev
// node runs on this host), made afresh at every start in <data dir>/mesh.
// It returns the directory, or "" when cfg set both itself.
func devMesh(cfg *config.Config) (string, error) {
	c := &cfg.Cluster
	needKey := len(c.GossipKeys) == 0 && c.GossipKeyFile == ""
	needTLS := c.Remote != "" && !c.RemoteTLS.Enabled()
	if !needKey && !needTLS {
		return "", nil
	}
	dir := filepath.Join(cfg.Dev.DataDir, "mesh")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("dev mesh: %w", err)
	}
	if needKey {
		path := filepath.Join(dir, "gossip.key")
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			key := make([]byte, 32)
			rand.Read(key)
			if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
				return "", fmt.Errorf("dev mesh: %w", err)
			}
		} else if err != nil {
			return "", fmt.Errorf("dev mesh: %w", err)
		}
		c.GossipKeyFile = path
	}
	if needTLS {
		ca, err := testcert.NewCA(dir, "dev-mesh")
		if err != nil {
			return "", fmt.Errorf("dev mesh: %w", err)
		}
		hosts := []string{"127.0.0.1", "::1", "localhost"}
		for _, addr := range []string{c.Remote, c.AdvertiseRemote} {
			if host, _, err := net.SplitHostPort(addr); err == nil && host != "" {
				if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
					hosts = append(hosts, host)
				}
			}
		}
		p, err := ca.Peer("dev-node", hosts...)
		if err != nil {
			return "", fmt.Errorf("dev mesh: %w", err)
		}
		c.RemoteTLS = config.TLS{CertFile: p.CertFile, KeyFile: p.KeyFile, CAFile: ca.CAFile}
	}
	return dir, nil
}
