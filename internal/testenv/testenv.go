// Package testenv runs meshka in process in front of an in-process kfake
// cluster for tests and benchmarks, with upstream traffic counted.
package testenv

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/embedded"
	"github.com/meshka/meshka/internal/countnet"
	"github.com/meshka/meshka/node"
	"github.com/meshka/meshka/schema/validate"
)

// Env is one upstream cluster and one meshka node in front of it.
type Env struct {
	log      *slog.Logger // the node's; Logger() unless StartLogged
	Upstream *kfake.Cluster
	Node     *node.Node
	// UpstreamSent counts every byte the upstream brokers wrote to any
	// client: meshka's streams, and direct clients in comparisons.
	UpstreamSent *atomic.Int64
	Config       config.Config
	schemas      validate.Source // node.Options.SchemaSource
}

// Option adjusts the configuration before the node starts.
type Option func(*config.Config)

// Start runs a 3-broker upstream and a node on a free port; both stop at
// test cleanup.
func Start(tb testing.TB, opts ...Option) *Env {
	tb.Helper()
	return StartWith(tb, nil, opts...)
}

// StartWith is Start with extra options for the upstream cluster, such as
// kfake.SeedTopics for topics that must exist before the node starts.
func StartWith(tb testing.TB, upstreamOpts []kfake.Opt, opts ...Option) *Env {
	tb.Helper()
	return start(tb, nil, upstreamOpts, nil, opts)
}

// StartWatching is Start with every connection the upstream brokers accept
// passed through watch, which returns the connection to use: a test can
// follow what meshka sends upstream before upstream handles it.
func StartWatching(tb testing.TB, watch func(net.Conn) net.Conn, opts ...Option) *Env {
	tb.Helper()
	return start(tb, nil, nil, watch, opts)
}

// StartLogged is Start with the node logging to log, for tests of what
// meshka logs.
func StartLogged(tb testing.TB, log *slog.Logger, opts ...Option) *Env {
	tb.Helper()
	return start(tb, log, nil, nil, opts)
}

// StartWithSchemas is Start with the node finding the schemas its topics
// rules name in src.
func StartWithSchemas(tb testing.TB, src validate.Source, opts ...Option) *Env {
	tb.Helper()
	return startSchemas(tb, nil, nil, nil, src, opts)
}

func start(tb testing.TB, startLog *slog.Logger, upstreamOpts []kfake.Opt, watch func(net.Conn) net.Conn, opts []Option) *Env {
	tb.Helper()
	return startSchemas(tb, startLog, upstreamOpts, watch, nil, opts)
}

func startSchemas(tb testing.TB, startLog *slog.Logger, upstreamOpts []kfake.Opt, watch func(net.Conn) net.Conn, schemas validate.Source, opts []Option) *Env {
	tb.Helper()
	sent := new(atomic.Int64)
	up, err := embedded.Start(embedded.Config{Brokers: 3, Partitions: 3}, append(upstreamOpts, kfake.ListenFn(countnet.ListenFn(sent, watch)))...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(up.Close)
	cfg := config.Default()
	cfg.Node.Listen = "127.0.0.1:0"
	cfg.Cluster.Bind = "127.0.0.1:0"
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Upstream.Brokers = up.ListenAddrs()
	cfg.Kafka.ShutdownTimeout = config.Duration(5 * time.Second)
	for _, o := range opts {
		o(&cfg)
	}
	e := &Env{Upstream: up, UpstreamSent: sent, Config: cfg, log: startLog, schemas: schemas}
	if e.log == nil {
		e.log = Logger()
	}
	e.startNode(tb)
	tb.Cleanup(func() { e.stopNode(tb) })
	return e
}

func (e *Env) startNode(tb testing.TB) {
	tb.Helper()
	n, err := node.Start(e.Config, node.Options{Logger: e.log, SchemaSource: e.schemas})
	if err != nil {
		tb.Fatal(err)
	}
	e.Node = n
}

// stopNode drains the node as SIGTERM does. A drain that does not finish
// within its bound fails the test: some request was never answered.
func (e *Env) stopNode(tb testing.TB) {
	tb.Helper()
	if e.Node == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Node.Shutdown(ctx); err != nil {
		tb.Errorf("meshka node did not drain: %v", err)
	}
	e.Node = nil
}

// RestartNode stops the node (draining as on SIGTERM) and starts a new one
// on the same address in front of the same upstream, as an operator's
// restart would. Clients reconnect to the same address.
func (e *Env) RestartNode(tb testing.TB) {
	tb.Helper()
	addr := e.Addr()
	e.stopNode(tb)
	e.Config.Node.Listen = addr
	e.startNode(tb)
}

// Addr is the node's Kafka address.
func (e *Env) Addr() string { return e.Node.Addr().String() }

// Client is a franz-go client of the node; it closes at test cleanup.
func (e *Env) Client(tb testing.TB, opts ...kgo.Opt) *kgo.Client {
	return newClient(tb, []string{e.Addr()}, opts)
}

// DirectClient is a franz-go client of the upstream, bypassing meshka.
func (e *Env) DirectClient(tb testing.TB, opts ...kgo.Opt) *kgo.Client {
	return newClient(tb, e.Upstream.ListenAddrs(), opts)
}

func newClient(tb testing.TB, seeds []string, opts []kgo.Opt) *kgo.Client {
	tb.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...)}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(cl.Close)
	return cl
}

// Logger logs meshka at warn to stderr, or at debug when MESHKA_TEST_DEBUG
// is set, so test output shows only what matters.
func Logger() *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("MESHKA_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// CoverFlags are the go build flags that make a binary a test builds and
// runs count toward the test's coverage: when the test runs with coverage,
// the binary is instrumented the same way. Nil without coverage. Run the
// tests with RunCovered, which gathers what such binaries counted.
func CoverFlags() []string {
	mode := testing.CoverMode()
	if mode == "" {
		return nil
	}
	return []string{"-cover", "-covermode=" + mode, "-coverpkg=github.com/meshka/meshka/..."}
}

// RunCovered is m.Run for a TestMain whose tests run binaries built with
// CoverFlags. go test reads only the test binary's own counters, so the
// binaries write theirs to a directory of their own (GOCOVERDIR, which
// they inherit), and once the tests have ended these are added, as text,
// to the test's coverage profile. Without coverage it is m.Run.
func RunCovered(m *testing.M) int {
	if testing.CoverMode() == "" {
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "meshka-cover")
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := os.Setenv("GOCOVERDIR", dir); err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		return 1
	}
	code := m.Run()
	if err := addCoverage(dir); err != nil {
		fmt.Fprintln(os.Stderr, "testenv: the coverage of the binaries the tests ran:", err)
		return 1
	}
	return code
}

// addCoverage appends the counters the binaries wrote to dir to the test's
// coverage profile (-test.coverprofile), when it writes one.
func addCoverage(dir string) error {
	f := flag.Lookup("test.coverprofile")
	if f == nil || f.Value.String() == "" {
		return nil
	}
	profile := f.Value.String()
	if out := flag.Lookup("test.outputdir"); out != nil && out.Value.String() != "" && !filepath.IsAbs(profile) {
		profile = filepath.Join(out.Value.String(), profile)
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) == 0 {
		return err // no binary ran
	}
	text := filepath.Join(dir, "binaries.txt")
	if out, err := exec.Command("go", "tool", "covdata", "textfmt", "-i="+dir, "-o="+text).CombinedOutput(); err != nil {
		return fmt.Errorf("go tool covdata: %v\n%s", err, out)
	}
	data, err := os.ReadFile(text)
	if err != nil {
		return err
	}
	// Both start with the same "mode:" line; the blocks follow it.
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		data = data[i+1:]
	}
	out, err := os.OpenFile(profile, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := out.Write(data); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
