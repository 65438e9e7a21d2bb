// Package hosted is the actor kind that hosts bindings' own actors: a
// binding names a kind of its own and how to make one of its actors, and
// the mesh places one actor per identity of that kind on a node of the
// cluster, as it places partitions and groups, activating it with the
// first call. The binding's actor is a Handler: it takes one call at a
// time, in its own goroutine, so a slow call does not hold up protoactor's
// dispatcher, and its queue of calls is bounded.
package hosted

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Kind is the actor kind that hosts every binding's actors. An
// activation's identity is Identity(kind, id).
const Kind = "hosted"

// Identity is the cluster identity of the actor id of a binding's kind.
func Identity(kind, id string) string { return kind + "/" + id }

// splitIdentity is Identity's inverse.
func splitIdentity(identity string) (kind, id string, ok bool) {
	return strings.Cut(identity, "/")
}

// StopReason says why a Handler stops.
type StopReason int8

const (
	// Moved: its node no longer owns it; the next call activates it on
	// the node that does.
	Moved StopReason = iota
	// Idle: no call came for the kind's IdleAfter.
	Idle
	// Closing: its node, or the binding's kind on it, is stopping.
	Closing
)

func (r StopReason) String() string {
	switch r {
	case Moved:
		return "moved"
	case Idle:
		return "idle"
	default:
		return "closing"
	}
}

// Handler is one actor of a binding's kind.
type Handler interface {
	// Receive answers one call. Calls come one at a time, in the order
	// the mesh took them; ctx ends at the caller's timeout or when the
	// actor stops.
	Receive(ctx context.Context, body []byte) ([]byte, error)
	// Stop is the actor's last call, after the last Receive has returned.
	Stop(reason StopReason)
}

// Doner is a Handler that may be done before it is idle: after each
// call, a Done that says true stops it (Idle), freeing its place on the
// node (Factory.MaxActive), and the next call makes it anew.
type Doner interface {
	Done() bool
}

// Factory says how a kind's actors are made and bounded.
type Factory struct {
	// New makes the actor of id, at its activation's first call; it must
	// not block (load state in the first Receive). An error answers that
	// call FAILED; the next call tries again.
	New func(id string) (Handler, error)
	// Queue bounds the calls waiting for the actor (Queue when 0);
	// calls past it are answered BUSY.
	Queue int
	// IdleAfter is how long an actor lives without a call (IdleAfter
	// when 0).
	IdleAfter time.Duration
	// MaxActive bounds the kind's actors running on the node at once; a
	// call that would activate one more is answered FULL. 0: no bound.
	MaxActive int
}

// Defaults of a Factory.
const (
	DefaultQueue     = 64
	DefaultIdleAfter = 10 * time.Minute
)

// ErrClosed is Register's error once the registry is closed.
var ErrClosed = errors.New("hosted: the registry is closed")

// Registry is one node's kinds of binding actors and their running
// workers. The node's hosted actors look kinds up in it; the mesh API
// registers them. Safe for concurrent use.
type Registry struct {
	mu      sync.Mutex
	kinds   map[string]Factory
	workers map[string]map[*worker]struct{} // by kind
	closed  bool
	wg      sync.WaitGroup // the workers' goroutines
}

// NewRegistry is an empty registry.
func NewRegistry() *Registry {
	return &Registry{kinds: map[string]Factory{}, workers: map[string]map[*worker]struct{}{}}
}

// Register makes kind's actors servable on this node.
func (r *Registry) Register(kind string, f Factory) error {
	if kind == "" || strings.Contains(kind, "/") {
		return fmt.Errorf("hosted: kind %q: must be non-empty and without /", kind)
	}
	if f.New == nil {
		return fmt.Errorf("hosted: kind %q: no New", kind)
	}
	if f.Queue <= 0 {
		f.Queue = DefaultQueue
	}
	if f.IdleAfter <= 0 {
		f.IdleAfter = DefaultIdleAfter
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	if _, dup := r.kinds[kind]; dup {
		return fmt.Errorf("hosted: kind %q is registered already", kind)
	}
	r.kinds[kind] = f
	return nil
}

// Unregister stops serving kind on this node: its running actors stop
// (Closing) and it waits for them until ctx ends. Calls then answer
// NO_KIND.
func (r *Registry) Unregister(ctx context.Context, kind string) error {
	r.mu.Lock()
	delete(r.kinds, kind)
	ws := r.workers[kind]
	delete(r.workers, kind)
	r.mu.Unlock()
	return stopAll(ctx, ws)
}

// Close unregisters every kind and waits for every worker until ctx
// ends.
func (r *Registry) Close(ctx context.Context) error {
	r.mu.Lock()
	r.closed = true
	all := map[*worker]struct{}{}
	for kind, ws := range r.workers {
		for w := range ws {
			all[w] = struct{}{}
		}
		delete(r.workers, kind)
	}
	clear(r.kinds)
	r.mu.Unlock()
	err := stopAll(ctx, all)
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		if err == nil {
			err = ctx.Err()
		}
	}
	return err
}

func stopAll(ctx context.Context, ws map[*worker]struct{}) error {
	for w := range ws {
		w.stop(Closing)
	}
	for w := range ws {
		select {
		case <-w.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// start runs a new worker for the actor id of kind, or says why not. It
// runs no call before prev (the activation's previous worker, or nil) is
// done, so two handlers of one id on a node never overlap.
func (r *Registry) start(kind, id string, prev *worker, onDone func(*worker)) (*worker, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, ok := r.kinds[kind]
	if !ok || r.closed {
		return nil, errNoKind
	}
	if f.MaxActive > 0 && len(r.workers[kind]) >= f.MaxActive {
		return nil, errFull
	}
	h, err := f.New(id)
	if err != nil {
		return nil, err
	}
	w := newWorker(h, f, prev, func(w *worker) {
		r.mu.Lock()
		delete(r.workers[kind], w)
		r.mu.Unlock()
		onDone(w)
	})
	if r.workers[kind] == nil {
		r.workers[kind] = map[*worker]struct{}{}
	}
	r.workers[kind][w] = struct{}{}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		w.run()
	}()
	return w, nil
}

var (
	errNoKind = errors.New("hosted: kind not served on this node")
	errFull   = errors.New("hosted: the node runs as many actors of the kind as it may")
)
