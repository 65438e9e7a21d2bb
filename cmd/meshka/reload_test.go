package main

import (
	"bytes"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshka/meshka/acl"
	"github.com/meshka/meshka/config"
)

const aclFile = `security:
  super_users: ["User:admin"]
  acls:
    enabled: true
    rules:
      - principal: "User:alice"
        resource: topic
        name: "orders-"
        pattern: prefixed
        operations: [write]
`

// SIGHUP's work: the file read and checked whole, its ACLs compiled; a
// bad file changes nothing and says why.
func TestReloadACLs(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "meshka.yaml")
	if err := os.WriteFile(path, []byte(aclFile), 0o600); err != nil {
		t.Fatal(err)
	}
	c := runCommand()
	if _, _, ok := c.start([]string{"--config", path}, io.Discard, io.Discard); !ok {
		t.Fatal("flags not taken")
	}
	var logged bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logged, nil))

	sec := reload(c, config.Security{}, nil, log)
	if !sec.ACLs.Enabled || len(sec.ACLs.Rules) != 1 {
		t.Fatalf("reloaded security: %+v", sec)
	}
	if !strings.Contains(logged.String(), "ACLs reloaded") || !strings.Contains(logged.String(), "added=1") {
		t.Errorf("log: %s", logged.String())
	}
	_, p, err := loadSecurity(c, path)
	if err != nil {
		t.Fatal(err)
	}
	host := netip.MustParseAddr("127.0.0.1")
	if !p.Authorize("User:alice", host, acl.Write, acl.Topic, "orders-eu") || p.Authorize("User:alice", host, acl.Write, acl.Topic, "b") {
		t.Error("the reloaded rules are not the file's")
	}

	bad := strings.Replace(aclFile, "operations: [write]", "operations: [scribble]", 1)
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	logged.Reset()
	if again := reload(c, sec, nil, log); len(again.ACLs.Rules) != 1 || again.ACLs.Rules[0].Operations[0] != "write" {
		t.Errorf("a bad file changed the security in force: %+v", again)
	}
	if out := logged.String(); !strings.Contains(out, "not reloaded") || !strings.Contains(out, "scribble") {
		t.Errorf("a bad file's reload logged: %s", out)
	}
}

func TestRuleChanges(t *testing.T) {
	a := config.ACLRule{Principal: "User:a", Resource: "topic", Name: "x", Operations: []string{"read"}}
	b := config.ACLRule{Principal: "User:b", Resource: "topic", Name: "x", Operations: []string{"read"}}
	if added, removed := ruleChanges([]config.ACLRule{a, a}, []config.ACLRule{a, b}); added != 1 || removed != 1 {
		t.Errorf("added %d, removed %d; want 1, 1", added, removed)
	}
}
