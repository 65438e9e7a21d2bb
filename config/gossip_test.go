package config

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func key(n int, fill byte) string {
	return base64.StdEncoding.EncodeToString([]byte(strings.Repeat(string(fill), n)))
}

// Gossip keys and remoting's TLS: each problem at its key, and no key's
// value in any message.
func TestValidateMeshSecurity(t *testing.T) {
	remoteTLS := TLS{CertFile: "node.pem", KeyFile: "node-key.pem", CAFile: "ca.pem"}
	tests := []struct {
		name   string
		modify func(*Cluster)
		path   string // "" means valid
		msg    string
	}{
		{"keys of every AES size", func(c *Cluster) { c.GossipKeys = []string{key(32, 'a'), key(16, 'b'), key(24, 'c')} }, "", ""},
		{"a key of another length", func(c *Cluster) { c.GossipKeys = []string{key(32, 'a'), key(20, 'b')} }, "cluster.gossip_keys[1]", "a key of 20 bytes; an AES key is 16, 24 or 32 bytes"},
		{"a key not base64", func(c *Cluster) { c.GossipKeys = []string{"not base64!"} }, "cluster.gossip_keys[0]", "not a base64 key"},
		{"a key twice", func(c *Cluster) { c.GossipKeys = []string{key(32, 'a'), key(32, 'a')} }, "cluster.gossip_keys[1]", "the same key as cluster.gossip_keys[0]"},
		{"keys and a key file", func(c *Cluster) { c.GossipKeys, c.GossipKeyFile = []string{key(32, 'a')}, "keys" }, "cluster.gossip_key_file", "not both"},
		{"a key file", func(c *Cluster) { c.GossipKeyFile = "keys" }, "", ""},
		{"remote tls", func(c *Cluster) { c.RemoteTLS = remoteTLS }, "", ""},
		{"remote tls with a server name and 1.3", func(c *Cluster) {
			c.RemoteTLS = remoteTLS
			c.RemoteTLS.ServerName, c.RemoteTLS.MinVersion, c.RemoteTLS.ClientAuth = "mesh.internal", "1.3", "required"
		}, "", ""},
		{"remote tls without remoting", func(c *Cluster) { c.RemoteTLS, c.Remote = remoteTLS, "" }, "cluster.remote_tls", "cluster.remote is empty"},
		{"remote tls without a certificate", func(c *Cluster) { c.RemoteTLS = TLS{CAFile: "ca.pem"} }, "cluster.remote_tls", "needs cert_file and key_file"},
		{"remote tls without a key", func(c *Cluster) { c.RemoteTLS = TLS{CertFile: "node.pem", CAFile: "ca.pem"} }, "cluster.remote_tls", "needs cert_file and key_file"},
		{"remote tls without a CA", func(c *Cluster) { c.RemoteTLS = TLS{CertFile: "node.pem", KeyFile: "node-key.pem"} }, "cluster.remote_tls.ca_file", "the CA that signs every node's certificate"},
		{"remote tls client auth optional", func(c *Cluster) {
			c.RemoteTLS = remoteTLS
			c.RemoteTLS.ClientAuth = "requested"
		}, "cluster.remote_tls.client_auth", "always requires the peer's certificate"},
		{"remote tls skipping verification", func(c *Cluster) {
			c.RemoteTLS = remoteTLS
			c.RemoteTLS.InsecureSkipVerify = true
		}, "cluster.remote_tls.insecure_skip_verify", "not allowed"},
		{"remote tls bad version", func(c *Cluster) {
			c.RemoteTLS = remoteTLS
			c.RemoteTLS.MinVersion = "1.1"
		}, "cluster.remote_tls.min_version", "want 1.2 or 1.3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.modify(&c.Cluster)
			errs := c.Validate()
			if tc.path == "" {
				if len(errs) != 0 {
					t.Fatalf("unexpected errors:\n%v", errs)
				}
				return
			}
			if len(errs) != 1 || errs[0].Path != tc.path || !strings.Contains(errs[0].Msg, tc.msg) {
				t.Fatalf("got errors:\n%v\nwant one at %s containing %q", errs, tc.path, tc.msg)
			}
			for _, k := range c.Cluster.GossipKeys {
				if strings.Contains(errs.Error(), k) {
					t.Fatalf("the error shows a key: %v", errs)
				}
			}
		})
	}
}

// The keyring comes from gossip_keys, or from the key file's lines in
// order, comments and blank lines left out; a bad line is named by its
// number.
func TestGossipKeyring(t *testing.T) {
	a, b := key(32, 'a'), key(16, 'b')
	keys, err := Cluster{GossipKeys: []string{a, b}}.GossipKeyring()
	if err != nil || len(keys) != 2 || string(keys[0]) != strings.Repeat("a", 32) || string(keys[1]) != strings.Repeat("b", 16) {
		t.Fatalf("from gossip_keys: %q, %v", keys, err)
	}
	if keys, err := (Cluster{}).GossipKeyring(); keys != nil || err != nil {
		t.Fatalf("with no keys: %q, %v", keys, err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "keys")
	if err := os.WriteFile(path, []byte("# the new key first\n"+b+"\n\n  "+a+"  \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err = Cluster{GossipKeyFile: path}.GossipKeyring()
	if err != nil || len(keys) != 2 || string(keys[0]) != strings.Repeat("b", 16) || string(keys[1]) != strings.Repeat("a", 32) {
		t.Fatalf("from the file: %q, %v", keys, err)
	}
	bad := key(7, 'c')
	if err := os.WriteFile(path, []byte(a+"\n"+bad+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := (Cluster{GossipKeyFile: path}).GossipKeyring(); err == nil || !strings.Contains(err.Error(), "line 2: a key of 7 bytes") || strings.Contains(err.Error(), bad) {
		t.Fatalf("a bad line: %v", err)
	}
	if err := os.WriteFile(path, []byte("# nothing\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := (Cluster{GossipKeyFile: path}).GossipKeyring(); err == nil || !strings.Contains(err.Error(), "holds no key") {
		t.Fatalf("an empty file: %v", err)
	}
	if _, err := (Cluster{GossipKeyFile: filepath.Join(dir, "nope")}).GossipKeyring(); err == nil || !strings.Contains(err.Error(), "cluster.gossip_key_file") {
		t.Fatalf("a missing file: %v", err)
	}
}
