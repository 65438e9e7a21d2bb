//go:build unix

package main

import (
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"
)

// meshka status against a running meshka run whose admin listener asks
// for credentials: refused without them, the node's line with them (the
// node ready, upstream up, at the Kafka address it logged), and a clear
// failure once the node has stopped.
func TestStatusOfRunningNode(t *testing.T) {
	bin := meshkaBin(t)
	ctx := testContext(t)
	up := startUpstream(t, 1, 1)

	var users, errb strings.Builder
	if code := userAdd([]string{"ops"}, strings.NewReader("status-secret\n"), &users, &errb); code != 0 {
		t.Fatalf("meshka user add: exit %d: %s", code, errb.String())
	}
	cfg := writeConfig(t, "log:\n  format: json\nadmin:\n  listen: 127.0.0.1:0\n  allow_anonymous: false\nsecurity:\n  users:\n"+
		indent(users.String(), "    "))
	p := startMeshka(t, bin, "run", "--config", cfg, "--listen", "127.0.0.1:0", "--cluster-bind", "127.0.0.1:0", "--upstream", strings.Join(up.ListenAddrs(), ","))
	var adminLine struct{ Listen string }
	if err := json.Unmarshal([]byte(p.waitFor(ctx, `"msg":"admin listener started"`)), &adminLine); err != nil || adminLine.Listen == "" {
		t.Fatalf("no admin listen address: %v", err)
	}
	kafka := listenAddr(t, p.waitFor(ctx, `"msg":"meshka node started"`))

	t.Setenv(adminUserEnv, "")
	t.Setenv(adminPasswordEnv, "")
	r := runMeshka(t, ctx, bin, "status", "--admin", adminLine.Listen)
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "401 Unauthorized") || !strings.Contains(r.stderr, "MESHKA_ADMIN_USER") {
		t.Errorf("status without credentials: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}

	// The node may take a moment to call itself ready (upstream's first
	// answer); the line is read once it does.
	t.Setenv(adminUserEnv, "ops")
	t.Setenv(adminPasswordEnv, "status-secret")
	deadline := time.Now().Add(30 * time.Second)
	for {
		r = runMeshka(t, ctx, bin, "status", "--admin", adminLine.Listen)
		if r.code == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if r.code != 0 || r.stderr != "" || len(lines) != 2 {
		t.Fatalf("status of a ready node: exit %d, stderr %q, stdout:\n%s", r.code, r.stderr, r.stdout)
	}
	if !strings.HasPrefix(lines[0], "NODE  READY  UPSTREAM  KAFKA") {
		t.Errorf("header %q", lines[0])
	}
	// NODE READY UPSTREAM KAFKA CONNECTIONS PARTITIONS GROUPS CACHE (2 fields) HIT RATIO
	if f := strings.Fields(lines[1]); len(f) != 10 || f[0] != "0" || f[1] != "yes" || f[2] != "up" || f[3] != kafka || f[9] != "-" {
		t.Errorf("node line %q, want node 0 ready, upstream up, at %s, no cache reads yet", lines[1], kafka)
	}

	if code := p.exit(ctx, syscall.SIGTERM); code != 0 {
		t.Fatalf("run exited %d on SIGTERM", code)
	}
	r = runMeshka(t, ctx, bin, "status", "--admin", adminLine.Listen)
	if r.code != 1 || r.stdout != "" || !strings.HasPrefix(r.stderr, "meshka status: cannot reach the admin listener at "+adminLine.Listen) {
		t.Errorf("status of a stopped node: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// indent puts prefix before every line of s.
func indent(s, prefix string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		b.WriteString(prefix + line)
	}
	return b.String()
}
