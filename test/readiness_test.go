package test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/meshka/meshka/auth"
	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/embedded"
	"github.com/meshka/meshka/internal/testcert"
	"github.com/meshka/meshka/internal/testenv"
	"github.com/meshka/meshka/node"
)

// adminGet GETs an admin path and returns the status and the JSON body.
func adminGet(t *testing.T, n *node.Node, path string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get("http://" + n.AdminAddr().String() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("GET %s: %s is not JSON: %v", path, b, err)
	}
	return resp.StatusCode, body
}

// /readyz answers 503 with the reason while upstream is down, 200 once it
// answers, 503 again when it stops and 200 when it is back; /healthz
// answers 200 throughout.
func TestReadiness(t *testing.T) {
	ctx := timeout(t, 90*time.Second)
	ports := freePorts(t, 3)
	var brokers []string
	for _, p := range ports {
		brokers = append(brokers, net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	}
	cfg := config.Default()
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Node.Listen = "127.0.0.1:0"
	cfg.Cluster.Bind = "127.0.0.1:0"
	cfg.Upstream.Brokers = brokers
	cfg.Upstream.RequestTimeout = config.Duration(2 * time.Second)
	cfg.Kafka.ShutdownTimeout = config.Duration(5 * time.Second)
	n, err := node.Start(cfg, node.Options{Logger: testenv.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(ctx) })

	ready := func(want int) map[string]any {
		t.Helper()
		var body map[string]any
		waitFor(t, ctx, "/readyz to answer "+strconv.Itoa(want), func() bool {
			var code int
			code, body = adminGet(t, n, "/readyz")
			return code == want
		})
		if code, _ := adminGet(t, n, "/healthz"); code != http.StatusOK {
			t.Errorf("/healthz answered %d", code)
		}
		return body
	}
	hasReason := func(body map[string]any, s string) bool {
		reasons, _ := json.Marshal(body["reasons"])
		return strings.Contains(string(reasons), s)
	}

	if body := ready(http.StatusServiceUnavailable); !hasReason(body, "upstream") {
		t.Errorf("not ready before upstream started, for %v", body)
	}
	up, err := embedded.Start(embedded.Config{Brokers: 3, Partitions: 1}, kfake.Ports(ports...))
	if err != nil {
		t.Fatal(err)
	}
	if body := ready(http.StatusOK); body["ready"] != true {
		t.Errorf("ready: %v", body)
	}
	up.Close()
	if body := ready(http.StatusServiceUnavailable); !hasReason(body, "upstream") {
		t.Errorf("not ready once upstream stopped, for %v", body)
	}
	up, err = embedded.Start(embedded.Config{Brokers: 3, Partitions: 1}, kfake.Ports(ports...))
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	ready(http.StatusOK)
}

// A real Prometheus server (Debian's prometheus package) scrapes a node's
// /metrics, and its query API returns meshka's series.
func TestPrometheusScrapes(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("prometheus is not installed (Debian's prometheus package); .ci/run installs it")
		}
		t.Skip("prometheus is not installed")
	}
	ctx := timeout(t, 90*time.Second)
	env := testenv.Start(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(conf, []byte(`global:
  scrape_interval: 1s
scrape_configs:
  - job_name: meshka
    static_configs:
      - targets: ["`+env.Node.AdminAddr().String()+`"]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	web := freePorts(t, 1)[0]
	cmd := exec.CommandContext(ctx, bin, "--config.file="+conf, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:"+strconv.Itoa(web))
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus:\n%s", logs.String())
		}
	})
	query := "http://127.0.0.1:" + strconv.Itoa(web) + "/api/v1/query?query=meshka_build_info"
	var last string
	waitFor(t, ctx, "Prometheus to return meshka_build_info", func() bool {
		resp, err := http.Get(query)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		last = string(b)
		var r struct {
			Status string
			Data   struct {
				Result []struct {
					Metric map[string]string
				}
			}
		}
		return json.Unmarshal(b, &r) == nil && r.Status == "success" && len(r.Data.Result) == 1 &&
			r.Data.Result[0].Metric["job"] == "meshka" && r.Data.Result[0].Metric["version"] != ""
	})
	t.Logf("Prometheus answered %s", last)
}

// With admin.allow_anonymous off, every endpoint but the probes asks for
// a user of security.users, and the reload for a super user.
func TestAdminAuthentication(t *testing.T) {
	cred, err := auth.NewCredential(auth.ScramSHA256, "ops", "ops-secret", 4096)
	if err != nil {
		t.Fatal(err)
	}
	other, err := auth.NewCredential(auth.ScramSHA256, "dev", "dev-secret", 4096)
	if err != nil {
		t.Fatal(err)
	}
	env := testenv.Start(t, func(c *config.Config) {
		c.Admin.AllowAnonymous = false
		c.Security.Users = []config.User{{Name: "ops", ScramSHA256: cred}, {Name: "dev", ScramSHA256: other}}
		c.Security.SuperUsers = []string{"User:ops"}
	})
	base := "http://" + env.Node.AdminAddr().String()
	do := func(method, path, user, password string) int {
		t.Helper()
		req, err := http.NewRequest(method, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if user != "" {
			req.SetBasicAuth(user, password)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		method, path, user, password string
		want                         int
	}{
		{"GET", "/healthz", "", "", http.StatusOK},
		{"GET", "/readyz", "", "", http.StatusOK},
		{"GET", "/metrics", "", "", http.StatusUnauthorized},
		{"GET", "/metrics", "ops", "wrong", http.StatusUnauthorized},
		{"GET", "/metrics", "dev", "dev-secret", http.StatusOK},
		{"GET", "/api/status", "", "", http.StatusUnauthorized},
		{"GET", "/api/status", "dev", "dev-secret", http.StatusOK},
		{"GET", "/", "", "", http.StatusUnauthorized},
		{"POST", "/api/reload", "dev", "dev-secret", http.StatusForbidden},
		// A super user may; this node was started without a file, so
		// there is nothing to read again.
		{"POST", "/api/reload", "ops", "ops-secret", http.StatusNotImplemented},
	} {
		if got := do(c.method, c.path, c.user, c.password); got != c.want {
			t.Errorf("%s %s as %q: %d, want %d", c.method, c.path, c.user, got, c.want)
		}
	}
}

// With admin.tls, the admin listener serves HTTPS, and a node asks the
// others for the status over HTTPS, checking their certificates against
// admin.tls.ca_file.
func TestAdminTLS(t *testing.T) {
	ca, err := testcert.NewCA(t.TempDir(), "admin-ca")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.Peer("admin", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	c := testenv.StartCluster(t, 2, func(cfg *config.Config) {
		cfg.Admin.TLS = &config.TLS{CertFile: pair.CertFile, KeyFile: pair.KeyFile, CAFile: ca.CAFile}
	})
	c.WaitMembers(t, 2)
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := cl.Get("https://" + c.Nodes[0].AdminAddr().String() + "/api/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Nodes       []struct{ ID int32 }
		Unreachable []struct{ Error string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if len(st.Nodes) != 2 || len(st.Unreachable) != 0 {
		t.Errorf("status over HTTPS: %+v", st)
	}
}

// A flood of idle connections to the admin port is bounded: past the
// bound the node closes new ones at once, and once the flood ends the
// probes answer again; the node itself never stops answering Kafka.
func TestAdminConnectionBound(t *testing.T) {
	env := testenv.Start(t)
	addr := env.Node.AdminAddr().String()
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range 300 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	// The 300th was refused: closed by the node without an answer.
	last := held[len(held)-1]
	last.SetReadDeadline(time.Now().Add(5 * time.Second))
	var ne net.Error
	if _, err := last.Read(make([]byte, 1)); err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("a connection past the admin listener's bound was kept open (%v)", err)
	}
	if err := env.Client(t).Ping(timeout(t, 10*time.Second)); err != nil {
		t.Errorf("the Kafka listener during the flood: %v", err)
	}
	for _, c := range held {
		c.Close()
	}
	held = nil
	waitFor(t, timeout(t, 10*time.Second), "/healthz after the flood", func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}
