package mesh

import (
	"github.com/prometheus/client_golang/prometheus"

	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/meshka/meshka/config"
)

// Binding is a protocol other than Kafka served by a node, turning its
// frames into records through the node's Mesh. A node builds it from its
// registered Factory, starts it after the Kafka listener, and stops it
// before the Mesh closes.
//
// Start and Stop are called once each, from one goroutine, Stop only after
// Start returned nil; a Start that fails must leave nothing running.
// Health may be called from any goroutine at any time after Start, and
// must not block.
type Binding interface {
	// Start returns once the binding serves (its listener is bound, say),
	// or fails. ctx bounds the start only: what the binding runs must
	// outlive it, until Stop.
	Start(ctx context.Context) error
	// Stop stops serving and returns once every goroutine the binding
	// started has ended. Work in progress may finish while ctx lasts;
	// once ctx ends, the binding drops what is left, still waits for its
	// goroutines (which must then end promptly), and returns ctx's error.
	Stop(ctx context.Context) error
	// Health says whether the binding serves, for probes and operators.
	Health() Health
}

// Health is a binding's report on itself.
type Health struct {
	OK     bool
	Detail string // e.g. "listening on 127.0.0.1:7070, 3 connections"
}

// BindingEnv is what a node gives the bindings it builds.
type BindingEnv struct {
	Name   string // the name the binding is configured under
	NodeID int32
	Mesh   *Mesh // the node's; open from the factory's call until after Stop
	// Logger is the node's, with binding=<name>.
	Logger *slog.Logger
	// Metrics is the node's metrics registry, whose families the admin
	// listener serves at /metrics: a binding registers its own
	// collectors here (named meshka_<binding>_… by convention); each gets
	// the label binding=<name>. Nil when the node keeps no metrics.
	Metrics prometheus.Registerer
}

// BindingConfig is a binding's own section of the node's configuration,
// bindings.<name>: Decode it into a struct of the binding's own, strictly,
// and report what the binding finds wrong with Errorf, both with the
// file's lines and columns.
type BindingConfig = config.Section

// Factory builds a binding from its section. It checks the section and
// must start nothing: a node builds every configured binding, reporting
// every problem of every section, before it starts any.
type Factory func(env BindingEnv, cfg BindingConfig) (Binding, error)

var (
	registryMu sync.RWMutex
	registry   = map[string]Factory{}
)

// RegisterBinding makes a binding available under name to every node of
// the process that the configuration tells to start it (bindings.<name>).
// Call it from an init function or from main before a node starts. It
// panics when name is empty, already registered, or f is nil, as
// database/sql.Register does: two bindings under one name is a bug of the
// program, not of its configuration.
func RegisterBinding(name string, f Factory) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if name == "" {
		panic("mesh: RegisterBinding with an empty name")
	}
	if f == nil {
		panic(fmt.Sprintf("mesh: RegisterBinding %q with a nil factory", name))
	}
	if _, dup := registry[name]; dup {
		panic(fmt.Sprintf("mesh: RegisterBinding called twice for binding %q", name))
	}
	registry[name] = f
}

// Bindings lists the registered bindings' names, sorted.
func Bindings() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	names := make([]string, 0, len(registry))
	for name := range registry {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// LookupBinding is the factory registered under name.
func LookupBinding(name string) (Factory, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	f, ok := registry[name]
	return f, ok
}
