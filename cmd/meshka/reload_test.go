package main

import (
	"bytes"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
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

// SIGHUP's work: the file read and checked whole, and the keys that
// changed sorted into those applied and those that take a restart; a bad
// file changes nothing and says why.
func TestReload(t *testing.T) {
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
	level := new(slog.LevelVar)
	log := slog.New(slog.NewTextHandler(&logged, nil))
	r := &reloader{c: c, level: level, log: log, cur: config.Default()}

	rep, err := r.reload()
	if err != nil || !rep.Applied {
		t.Fatalf("reload: %+v, %v", rep, err)
	}
	if !slices.Contains(rep.Changed, "security.acls.rules") || !slices.Contains(rep.Changed, "security.super_users") || len(rep.Restart) != 0 {
		t.Errorf("report: %+v", rep)
	}
	if !r.cur.Security.ACLs.Enabled || len(r.cur.Security.ACLs.Rules) != 1 {
		t.Fatalf("reloaded security: %+v", r.cur.Security)
	}
	if !strings.Contains(logged.String(), "configuration reloaded") || !strings.Contains(logged.String(), "acl_rules_added=1") {
		t.Errorf("log: %s", logged.String())
	}
	cfg, err := loadChecked(c, path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := acl.FromConfig(cfg.Security)
	if err != nil {
		t.Fatal(err)
	}
	host := netip.MustParseAddr("127.0.0.1")
	if !p.Authorize("User:alice", host, acl.Write, acl.Topic, "orders-eu") || p.Authorize("User:alice", host, acl.Write, acl.Topic, "b") {
		t.Error("the reloaded rules are not the file's")
	}

	// A level and a key that takes a restart.
	changed := aclFile + "log:\n  level: debug\nkafka:\n  max_frame_bytes: 1MiB\n"
	if err := os.WriteFile(path, []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err = r.reload()
	if err != nil || !slices.Equal(rep.Changed, []string{"log.level"}) || !slices.Equal(rep.Restart, []string{"kafka.max_frame_bytes"}) {
		t.Errorf("report: %+v, %v", rep, err)
	}
	if level.Level() != slog.LevelDebug {
		t.Errorf("level %v after the reload, want debug", level.Level())
	}

	bad := strings.Replace(changed, "operations: [write]", "operations: [scribble]", 1)
	bad = strings.Replace(bad, "level: debug", "level: error", 1)
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	logged.Reset()
	if rep, err := r.reload(); err == nil || rep.Applied {
		t.Errorf("a bad file reloaded: %+v", rep)
	}
	if len(r.cur.Security.ACLs.Rules) != 1 || r.cur.Security.ACLs.Rules[0].Operations[0] != "write" || level.Level() != slog.LevelDebug {
		t.Errorf("a bad file changed what is in force: %+v, level %v", r.cur.Security, level.Level())
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
