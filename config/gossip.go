package config

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"strings"
)

// GossipKeyring is the gossip keys, decoded, first the one that
// encrypts: cluster.gossip_keys, or the lines of cluster.gossip_key_file
// (blank lines and lines starting with # left out). nil: the gossip is
// not encrypted. Errors name the key's place, never its value.
func (c Cluster) GossipKeyring() ([][]byte, error) {
	if c.GossipKeyFile == "" {
		var keys [][]byte
		for i, s := range c.GossipKeys {
			k, err := DecodeGossipKey(s)
			if err != nil {
				return nil, fmt.Errorf("cluster.gossip_keys[%d]: %v", i, err)
			}
			keys = append(keys, k)
		}
		return keys, nil
	}
	data, err := os.ReadFile(c.GossipKeyFile)
	if err != nil {
		return nil, fmt.Errorf("cluster.gossip_key_file: %w", err)
	}
	var keys [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		k, err := DecodeGossipKey(s)
		if err != nil {
			return nil, fmt.Errorf("cluster.gossip_key_file %s, line %d: %v", c.GossipKeyFile, line, err)
		}
		keys = append(keys, k)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cluster.gossip_key_file %s: %w", c.GossipKeyFile, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("cluster.gossip_key_file %s holds no key", c.GossipKeyFile)
	}
	return keys, nil
}

// DecodeGossipKey decodes one base64 gossip key and checks it is an AES
// key's length. Its error never holds the key.
func DecodeGossipKey(s string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("not a base64 key (make one with: openssl rand -base64 32)")
	}
	if n := len(k); n != 16 && n != 24 && n != 32 {
		return nil, fmt.Errorf("a key of %d bytes; an AES key is 16, 24 or 32 bytes (make one with: openssl rand -base64 32)", n)
	}
	return k, nil
}

// validateMeshSecurity checks the gossip keys and remoting's TLS.
func (v *validator) validateMeshSecurity(c Cluster) {
	if len(c.GossipKeys) > 0 && c.GossipKeyFile != "" {
		v.add("cluster.gossip_key_file", "set either cluster.gossip_keys or cluster.gossip_key_file, not both")
	}
	seen := map[string]int{}
	for i, s := range c.GossipKeys {
		path := fmt.Sprintf("cluster.gossip_keys[%d]", i)
		k, err := DecodeGossipKey(s)
		if err != nil {
			v.add(path, "%v", err)
			continue
		}
		if j, dup := seen[string(k)]; dup {
			v.add(path, "the same key as cluster.gossip_keys[%d]", j)
			continue
		}
		seen[string(k)] = i
	}
	t := c.RemoteTLS
	if !t.Enabled() {
		return
	}
	const path = "cluster.remote_tls"
	if c.Remote == "" {
		// Nothing would use it: refused rather than ignored, since an
		// operator who set it expects node-to-node traffic protected.
		v.add(path, "is set but cluster.remote is empty, so actor remoting is off and nothing would use it; set cluster.remote or remove cluster.remote_tls")
	}
	if _, err := t.TLSVersion(); err != nil {
		v.add(path+".min_version", "%v", err)
	}
	if _, err := t.Suites(); err != nil {
		v.add(path+".cipher_suites", "%v", err)
	}
	if t.CertFile == "" || t.KeyFile == "" {
		v.add(path, "needs cert_file and key_file: every node presents its certificate, serving and dialling")
	}
	if t.CAFile == "" {
		v.add(path+".ca_file", "needs the CA that signs every node's certificate: both ends check the other's")
	}
	if t.ClientAuth != "" && t.ClientAuth != "required" {
		v.add(path+".client_auth", "remoting always requires the peer's certificate; leave it empty or set required, got %q", t.ClientAuth)
	}
	if t.InsecureSkipVerify {
		v.add(path+".insecure_skip_verify", "not allowed: both ends of remoting check the other's certificate against ca_file")
	}
}
