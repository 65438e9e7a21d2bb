package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/meshka/meshka/admin"
)

// statusServer is an admin listener answering /api/status with st, asking
// for Basic credentials user:password when user is set.
func statusServer(t *testing.T, st admin.ClusterStatus, user, password string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/api/status" || r.URL.RawQuery != "" {
			http.Error(w, "unexpected "+r.Method+" "+r.URL.String(), http.StatusNotFound)
			return
		}
		if u, p, _ := r.BasicAuth(); user != "" && (u != user || p != password) {
			w.Header().Set("WWW-Authenticate", `Basic realm="meshka admin"`)
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(map[string]string{"error": "credentials of a user of security.users required"})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(st)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// statusNode is a ready node of the canned answers.
func statusNode(id int32, kafka string) admin.NodeStatus {
	return admin.NodeStatus{
		ID: id, Kafka: kafka, Admin: "10.0.0.1:9644", Ready: true,
		Upstream:    admin.UpstreamStatus{Up: true, Brokers: []string{"kafka-1:9092"}},
		Members:     []int32{0, 1, 2},
		Partitions:  []admin.Partition{{Topic: "orders", Partition: 0}, {Topic: "orders", Partition: 3}},
		Groups:      []string{"billing"},
		Connections: map[string]int{"kafka": 7, "mqtt": 2},
		Cache:       admin.CacheStatus{Bytes: 1258291, Limit: 1 << 30, Hits: 3, Misses: 1, HitRatio: 0.75},
	}
}

func runStatus(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb strings.Builder
	code = run(append([]string{"status"}, args...), &out, &errb)
	return out.String(), errb.String(), code
}

// Every node ready and answering: the table, exit status 0.
func TestStatusAllReady(t *testing.T) {
	t.Setenv(adminUserEnv, "")
	n1 := statusNode(1, "10.0.0.2:9092")
	n1.Partitions, n1.Groups, n1.Connections = nil, nil, nil
	n1.Cache = admin.CacheStatus{Bytes: 0}
	addr := statusServer(t, admin.ClusterStatus{Node: 0, Nodes: []admin.NodeStatus{statusNode(0, "10.0.0.1:9092"), n1}}, "", "")
	stdout, stderr, code := runStatus(t, "--admin", addr)
	want := "" +
		"NODE  READY  UPSTREAM  KAFKA          CONNECTIONS  PARTITIONS  GROUPS  CACHE    HIT RATIO  REASON\n" +
		"0     yes    up        10.0.0.1:9092  9            2           1       1.2 MiB  75.0%\n" +
		"1     yes    up        10.0.0.2:9092  0            0           0       0 B      -\n"
	if code != 0 || stderr != "" || stdout != want {
		t.Errorf("meshka status: exit %d, stderr %q, stdout:\n%s\nwant exit 0 and:\n%s", code, stderr, stdout, want)
	}
}

// A node not ready and a peer that did not answer: the first reason on
// the node's line, a line for the peer, exit status 1.
func TestStatusNotReady(t *testing.T) {
	t.Setenv(adminUserEnv, "")
	n1 := statusNode(1, "10.0.0.2:9092")
	n1.Ready = false
	n1.Upstream = admin.UpstreamStatus{Up: false, Error: "dial tcp: connection refused"}
	n1.Reasons = []string{"mesh: not joined", "upstream: no broker of kafka-1:9092 answers"}
	st := admin.ClusterStatus{Node: 0, Nodes: []admin.NodeStatus{statusNode(0, "10.0.0.1:9092"), n1},
		Unreachable: []admin.Peer{{ID: 2, Admin: "10.0.0.3:9644", Error: "context deadline exceeded"}, {ID: 3, Error: "it serves no admin listener"}}}
	stdout, stderr, code := runStatus(t, "--admin", statusServer(t, st, "", ""))
	want := "" +
		"NODE  READY  UPSTREAM  KAFKA          CONNECTIONS  PARTITIONS  GROUPS  CACHE    HIT RATIO  REASON\n" +
		"0     yes    up        10.0.0.1:9092  9            2           1       1.2 MiB  75.0%\n" +
		"1     no     down      10.0.0.2:9092  9            2           1       1.2 MiB  75.0%      mesh: not joined (and 1 more)\n" +
		"node 2 unreachable (10.0.0.3:9644): context deadline exceeded\n" +
		"node 3 unreachable (no admin address): it serves no admin listener\n"
	if code != 1 || stderr != "" || stdout != want {
		t.Errorf("meshka status: exit %d, stderr %q, stdout:\n%s\nwant exit 1 and:\n%s", code, stderr, stdout, want)
	}

	// Every node ready, one peer silent: still 1.
	st.Nodes = st.Nodes[:1]
	st.Unreachable = st.Unreachable[:1]
	if _, _, code := runStatus(t, "--admin", statusServer(t, st, "", "")); code != 1 {
		t.Errorf("with a peer unreachable: exit %d, want 1", code)
	}
}

// With admin.allow_anonymous false, the credentials come from
// MESHKA_ADMIN_USER and MESHKA_ADMIN_PASSWORD.
func TestStatusCredentials(t *testing.T) {
	addr := statusServer(t, admin.ClusterStatus{Nodes: []admin.NodeStatus{statusNode(0, "10.0.0.1:9092")}}, "ops", "s3cret")

	t.Setenv(adminUserEnv, "")
	t.Setenv(adminPasswordEnv, "")
	stdout, stderr, code := runStatus(t, "--admin", addr)
	if code != 1 || stdout != "" || !strings.Contains(stderr, "401") || !strings.Contains(stderr, "MESHKA_ADMIN_USER and MESHKA_ADMIN_PASSWORD") {
		t.Errorf("without credentials: exit %d, stdout %q, stderr %q; want 1 naming the variables", code, stdout, stderr)
	}

	t.Setenv(adminUserEnv, "ops")
	t.Setenv(adminPasswordEnv, "wrong")
	stdout, stderr, code = runStatus(t, "--admin", addr)
	if code != 1 || stdout != "" || !strings.Contains(stderr, `user "ops"`) || strings.Contains(stderr, "wrong") {
		t.Errorf("with a wrong password: exit %d, stdout %q, stderr %q; want 1 naming the user, not the password", code, stdout, stderr)
	}

	t.Setenv(adminPasswordEnv, "s3cret")
	stdout, stderr, code = runStatus(t, "--admin", addr)
	if code != 0 || stderr != "" || !strings.Contains(stdout, "\n0     yes") {
		t.Errorf("with credentials: exit %d, stderr %q, stdout:\n%s", code, stderr, stdout)
	}
}

// An admin address nothing listens at, or that answers something else:
// a message on stderr, exit status 1. A bad command line: 2.
func TestStatusErrors(t *testing.T) {
	t.Setenv(adminUserEnv, "")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	stdout, stderr, code := runStatus(t, "--admin", closed)
	if want := "meshka status: cannot reach the admin listener at " + closed + ": "; code != 1 || stdout != "" || !strings.HasPrefix(stderr, want) || strings.Count(stderr, "\n") != 1 {
		t.Errorf("nothing listening: exit %d, stdout %q, stderr %q; want 1 and one line starting %q", code, stdout, stderr, want)
	}

	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/status" {
			w.Write([]byte("<html>not meshka</html>"))
			return
		}
		http.Error(w, "no such page", http.StatusNotFound)
	}))
	defer broken.Close()
	stdout, stderr, code = runStatus(t, "--admin", strings.TrimPrefix(broken.URL, "http://"))
	if code != 1 || stdout != "" || !strings.Contains(stderr, "not a meshka status answer") {
		t.Errorf("a non-JSON answer: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	for _, tc := range []struct {
		args  []string
		first string
	}{
		{[]string{"extra"}, `meshka status: unexpected argument "extra"`},
		{[]string{"--admin", "nowhere"}, `meshka status: --admin "nowhere": want HOST:PORT, the admin.listen (or admin.advertise) of a node`},
		{[]string{"--admin", ":9644"}, `meshka status: --admin ":9644": want HOST:PORT, the admin.listen (or admin.advertise) of a node`},
		{[]string{"--admin"}, "meshka status: flag --admin needs a value: --admin HOST:PORT"},
		{[]string{"--watch", "1s"}, "meshka status: unknown flag --watch"},
	} {
		stdout, stderr, code := runStatus(t, tc.args...)
		if first, _, _ := strings.Cut(stderr, "\n"); code != 2 || stdout != "" || first != tc.first || !strings.Contains(stderr, "Usage: meshka status [flags]") {
			t.Errorf("meshka status %s: exit %d, stdout %q, stderr %q; want 2 and %q with the usage", strings.Join(tc.args, " "), code, stdout, stderr, tc.first)
		}
	}

	// The help, on stdout.
	for _, args := range [][]string{{"status", "--help"}, {"help", "status"}} {
		var out, errb strings.Builder
		if code := run(args, &out, &errb); code != 0 || errb.Len() > 0 || !strings.HasPrefix(out.String(), "Usage: meshka status [flags]") ||
			!strings.Contains(out.String(), "--admin HOST:PORT") || !strings.Contains(out.String(), "(default: 127.0.0.1:9644)") || !strings.Contains(out.String(), "MESHKA_ADMIN_PASSWORD") {
			t.Errorf("meshka %s: exit %d, stderr %q, stdout:\n%s", strings.Join(args, " "), code, errb.String(), out.String())
		}
	}
}

func TestStatusHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1258291: "1.2 MiB", 3 << 30: "3.0 GiB", 5 << 40: "5.0 TiB", 2048 << 40: "2048.0 TiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
