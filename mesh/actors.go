package mesh

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/meshka/meshka/actors/hosted"
	"github.com/meshka/meshka/cluster"
)

// Actor is one of a binding's cluster-wide actors: there is one per
// identity in the cluster, on the node that owns the identity (placed
// over the members as partitions and groups are), made at its first call
// and moved when the members change. Its memory is a cache: what must
// outlive a move or a node's loss goes upstream, in a Table say, and the
// actor's next incarnation reads it back.
type Actor interface {
	// Receive answers one call. Calls come one at a time, in the order
	// the actor's node took them; ctx ends at the caller's deadline or
	// when the actor stops.
	Receive(ctx context.Context, call []byte) ([]byte, error)
	// Stop is the actor's last call, after its last Receive: it moved
	// (StopMoved: its next call makes it anew on its new node), it had
	// no call for IdleAfter (StopIdle), or the binding or the node is
	// stopping (StopClosing).
	Stop(reason StopReason)
}

// An Actor may also have a Done() bool method: after each call, when Done
// says true, the actor stops (StopIdle) and frees its place on the node
// (ActorsOptions.MaxActive); a later call makes it anew. An actor with
// nothing left to hold (its entity deleted, or never there) says so
// rather than waiting out IdleAfter.

// StopReason says why an Actor stops.
type StopReason = hosted.StopReason

// Why an Actor stops.
const (
	StopMoved   = hosted.Moved
	StopIdle    = hosted.Idle
	StopClosing = hosted.Closing
)

// ActorsOptions define a binding's kind of actors.
type ActorsOptions struct {
	// Kind names the kind in the cluster ("http-consumer" say); it holds
	// no '/'. Every node that may own one of its actors must serve the
	// kind: a call to an actor whose owner does not answers
	// ErrNoActors.
	Kind string
	// New makes the actor of an identity at its first call on a node. It
	// must not block: an actor loads what it needs in its first Receive.
	New func(identity string) (Actor, error)
	// Queue bounds the calls waiting for one actor (64 when 0); a call
	// past it answers ErrActorBusy.
	Queue int
	// IdleAfter is how long an actor lives without a call (10 minutes
	// when 0).
	IdleAfter time.Duration
	// MaxActive bounds the kind's actors running on this node at once: a
	// call that would start one more here answers ErrTooManyActors.
	// 0: no bound.
	MaxActive int
}

// ErrNoActors is Call's error when the node owning the identity serves
// no actors of the kind (its binding is not configured there).
var ErrNoActors = errors.New("the owning node serves no actors of this kind")

// ErrActorBusy is Call's error when the actor's queue of calls is full.
var ErrActorBusy = errors.New("the actor's queue of calls is full")

// ErrTooManyActors is Call's error when the actor is not running and the
// node owning it runs as many actors of the kind as its MaxActive allows.
var ErrTooManyActors = errors.New("the owning node runs as many actors of this kind as it may")

// ActorError is Call's error when the actor's Receive returned one; it
// crossed nodes as its message alone.
type ActorError struct{ Message string }

func (e *ActorError) Error() string { return e.Message }

// callTimeout bounds a call whose context has no deadline.
const callTimeout = 30 * time.Second

// Actors is a binding's kind of actors as this node serves it, and the
// way to call them from this node. Safe for concurrent use.
type Actors struct {
	m    *Mesh
	kind string
}

// Actors serves the kind o defines on this node, until Close or the
// Mesh's Close.
func (m *Mesh) Actors(o ActorsOptions) (*Actors, error) {
	if m.hosted == nil {
		return nil, errors.New("mesh: actors: this node hosts no binding actors")
	}
	if o.New == nil {
		return nil, fmt.Errorf("mesh: actors %q: no New", o.Kind)
	}
	newActor := o.New
	err := m.hosted.Register(o.Kind, hosted.Factory{Queue: o.Queue, IdleAfter: o.IdleAfter, MaxActive: o.MaxActive,
		New: func(id string) (hosted.Handler, error) { return newActor(id) }})
	if err != nil {
		return nil, fmt.Errorf("mesh: actors: %w", err)
	}
	return &Actors{m: m, kind: o.Kind}, nil
}

// Kind is the kind's name.
func (a *Actors) Kind() string { return a.kind }

// Call calls the actor of identity, wherever it is, and waits for its
// answer until ctx ends (30 s when ctx has no deadline). While the actor
// moves (its owner refuses, or it stopped before it ran the call), Call
// asks again after a pause. An error the actor returned is an
// *ActorError.
func (a *Actors) Call(ctx context.Context, identity string, call []byte) ([]byte, error) {
	if identity == "" {
		return nil, fmt.Errorf("mesh: actors %q: an empty identity", a.kind)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, callTimeout)
		defer cancel()
	}
	id := hosted.Identity(a.kind, identity)
	for {
		if a.m.ctx.Err() != nil {
			return nil, ErrClosed
		}
		dl, _ := ctx.Deadline()
		msg := &hosted.Call{Body: call, TimeoutMillis: max(time.Until(dl).Milliseconds(), 1)}
		v, err := a.m.cluster.Request(ctx, hosted.Kind, id, msg)
		if err == nil {
			ans, ok := v.(*hosted.Answer)
			if !ok {
				return nil, fmt.Errorf("mesh: actors %q: answered %T", a.kind, v)
			}
			switch ans.Code {
			case hosted.Code_OK:
				return ans.Body, nil
			case hosted.Code_FAILED:
				return nil, &ActorError{Message: ans.Error}
			case hosted.Code_NO_KIND:
				return nil, fmt.Errorf("mesh: actors %q: %w", a.kind, ErrNoActors)
			case hosted.Code_BUSY:
				return nil, fmt.Errorf("mesh: actors %q: %w", a.kind, ErrActorBusy)
			case hosted.Code_TIMEOUT:
				return nil, fmt.Errorf("mesh: actors %q: %w", a.kind, context.DeadlineExceeded)
			case hosted.Code_FULL:
				return nil, fmt.Errorf("mesh: actors %q: %w", a.kind, ErrTooManyActors)
			}
			err = errors.New(ans.Error) // MOVED
		} else if !errors.Is(err, cluster.ErrNotOwner) && !errors.Is(err, cluster.ErrGone) && !errors.Is(err, cluster.ErrUnreachable) {
			return nil, fmt.Errorf("mesh: actors %q: %w", a.kind, err)
		}
		pause(ctx, retryWait)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("mesh: actors %q: %w (last: %v)", a.kind, ctx.Err(), err)
		}
	}
}

// Close stops serving the kind on this node: its actors here stop
// (StopClosing) and Close waits for them until ctx ends. Calls from other
// nodes to the actors this node owns then answer ErrNoActors.
func (a *Actors) Close(ctx context.Context) error {
	return a.m.hosted.Unregister(ctx, a.kind)
}
