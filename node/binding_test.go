package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/embedded"
	"github.com/meshka/meshka/mesh"
)

// probe is a binding that records what the node does with it.
type probe struct {
	env mesh.BindingEnv
	cfg probeConfig
}

type probeConfig struct {
	FailStart bool `yaml:"fail_start"`
	// Produce is a topic the binding writes one record to as it stops,
	// which works only while the node's Mesh still serves.
	Produce string `yaml:"produce"`
}

var _ mesh.Binding = (*probe)(nil)

// events is what the probes did, in order, for the test running.
var events struct {
	mu   sync.Mutex
	list []string
}

func event(format string, args ...any) {
	events.mu.Lock()
	defer events.mu.Unlock()
	events.list = append(events.list, fmt.Sprintf(format, args...))
}

func takeEvents() []string {
	events.mu.Lock()
	defer events.mu.Unlock()
	list := events.list
	events.list = nil
	return list
}

func init() {
	for _, name := range []string{"probe-a", "probe-b", "probe-c"} {
		mesh.RegisterBinding(name, func(env mesh.BindingEnv, cfg mesh.BindingConfig) (mesh.Binding, error) {
			p := &probe{env: env}
			if err := cfg.Decode(&p.cfg); err != nil {
				return nil, err
			}
			if env.Mesh == nil || env.Logger == nil || env.Name != name {
				return nil, fmt.Errorf("env %+v", env)
			}
			return p, nil
		})
	}
}

func (p *probe) Start(ctx context.Context) error {
	event("start %s on node %d", p.env.Name, p.env.NodeID)
	if p.cfg.FailStart {
		return errors.New("refused")
	}
	return nil
}

func (p *probe) Stop(ctx context.Context) error {
	_, deadline := ctx.Deadline()
	event("stop %s deadline %v ended %v", p.env.Name, deadline, ctx.Err() != nil)
	if p.cfg.Produce == "" {
		return nil
	}
	pr := p.env.Mesh.NewProducer(mesh.ProducerOptions{})
	defer pr.Close(ctx)
	_, err := pr.ProduceSync(ctx, mesh.Record{Topic: p.cfg.Produce, Partition: -1, Key: []byte(p.env.Name), Value: []byte("stopping")})
	event("produced %s: %v", p.env.Name, err)
	return err
}

func (p *probe) Health() mesh.Health { return mesh.Health{OK: true, Detail: p.env.Name} }

// parsed is testConfig with the bindings of a YAML text, read as from a
// file named m.yaml.
func parsed(t *testing.T, yaml string) config.Config {
	t.Helper()
	file, err := config.Parse("m.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("the test's configuration: %v", err)
	}
	cfg := testConfig()
	cfg.Bindings = file.Bindings
	return cfg
}

func checkEvents(t *testing.T, want ...string) {
	t.Helper()
	if got := takeEvents(); !slices.Equal(got, want) {
		t.Fatalf("the bindings saw\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A name no binding is registered under fails Start, at its place in the
// file and naming the registered ones, before anything starts.
func TestStartUnknownBinding(t *testing.T) {
	takeEvents()
	cfg := parsed(t, "bindings:\n  probe-a:\n  nosuch: {}\n")
	n, err := Start(cfg, quiet)
	if err == nil {
		n.Shutdown(context.Background())
		t.Fatal("Start with an unknown binding succeeded")
	}
	var errs config.Errors
	want := `m.yaml:3:3: bindings.nosuch: no binding "nosuch" is registered; registered: probe-a, probe-b, probe-c`
	if !errors.As(err, &errs) || err.Error() != want {
		t.Fatalf("Start = %v (%T)\nwant %s", err, err, want)
	}
	checkEvents(t)
}

// Every problem in every binding's section fails Start, each at its line
// and column, before any binding starts.
func TestStartRefusesBindingSections(t *testing.T) {
	takeEvents()
	cfg := parsed(t, "bindings:\n  probe-a:\n    fail_strat: true\n  probe-b:\n    produce: [x]\n  probe-c: {}\n")
	n, err := Start(cfg, quiet)
	if err == nil {
		n.Shutdown(context.Background())
		t.Fatal("Start with bad sections succeeded")
	}
	want := "m.yaml:3:5: bindings.probe-a.fail_strat: unknown key \"fail_strat\" (did you mean \"fail_start\"?)\n" +
		"m.yaml:5:14: bindings.probe-b.produce: expected a string, got a list"
	var errs config.Errors
	if !errors.As(err, &errs) || err.Error() != want {
		t.Fatalf("Start = %v\nwant %s", err, want)
	}
	checkEvents(t)
}

// A binding that fails to start fails Start with its name; the bindings
// started before it are stopped, the ones after it never start, and the
// node serves nothing.
func TestStartStopsStartedBindingsWhenOneFails(t *testing.T) {
	takeEvents()
	cfg := parsed(t, "bindings:\n  probe-a:\n  probe-b: {fail_start: true}\n  probe-c:\n")
	cfg.Node.ID = 4
	n, err := Start(cfg, quiet)
	if err == nil {
		n.Shutdown(context.Background())
		t.Fatal("Start with a failing binding succeeded")
	}
	if want := `binding "probe-b": start: refused`; err.Error() != want {
		t.Fatalf("Start = %v, want %s", err, want)
	}
	checkEvents(t, "start probe-a on node 4", "start probe-b on node 4", "stop probe-a deadline true ended false")
}

// Shutdown stops the bindings, last started first, within its context and
// while the Mesh still serves them: what they write as they stop is
// written. Until then the node reports their health.
func TestShutdownStopsBindings(t *testing.T) {
	takeEvents()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	up, err := embedded.Start(embedded.Config{Brokers: 1, Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	direct, err := kgo.NewClient(kgo.SeedBrokers(up.ListenAddrs()...), kgo.ConsumeTopics("stopping"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	if _, err := kadm.NewClient(direct).CreateTopic(ctx, 2, 1, nil, "stopping"); err != nil {
		t.Fatal(err)
	}
	cfg := parsed(t, "bindings:\n  probe-b: {produce: stopping}\n  probe-a: {produce: stopping}\n")
	cfg.Upstream.Brokers = up.ListenAddrs()
	n, err := Start(cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	checkEvents(t, "start probe-a on node 0", "start probe-b on node 0")
	health := n.BindingHealth()
	if len(health) != 2 || health["probe-a"] != (mesh.Health{OK: true, Detail: "probe-a"}) || !health["probe-b"].OK {
		t.Fatalf("BindingHealth = %v", health)
	}
	if b, ok := n.Binding("probe-b"); !ok || b.(*probe).env.Name != "probe-b" {
		t.Fatalf("Binding(probe-b) = %v, %v", b, ok)
	}
	if _, ok := n.Binding("probe-c"); ok {
		t.Fatal("Binding finds a binding not configured")
	}

	if err := n.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	checkEvents(t, "stop probe-b deadline true ended false", "produced probe-b: <nil>",
		"stop probe-a deadline true ended false", "produced probe-a: <nil>")
	if h := n.BindingHealth(); len(h) != 0 {
		t.Errorf("BindingHealth after Shutdown = %v", h)
	}
	keys := map[string]bool{}
	for len(keys) < 2 {
		fs := direct.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) { keys[string(r.Key)] = true })
	}
	if !keys["probe-a"] || !keys["probe-b"] {
		t.Fatalf("upstream has records of %v", keys)
	}
}

// Crash stops the bindings too, with a context already ended.
func TestCrashStopsBindings(t *testing.T) {
	takeEvents()
	n, err := Start(parsed(t, "bindings:\n  probe-c:\n"), quiet)
	if err != nil {
		t.Fatal(err)
	}
	n.Crash()
	checkEvents(t, "start probe-c on node 0", "stop probe-c deadline false ended true")
}
