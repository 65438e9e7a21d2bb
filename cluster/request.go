package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// routerName is the actor every node with remoting runs to take messages
// from other nodes to the actors it owns.
const routerName = "meshka-router"

// ErrUnreachable is Request's error for an actor owned by a node this node
// has no way to send to (remoting off on either side).
var ErrUnreachable = errors.New("cluster: the owning node cannot be reached")

// ErrGone is Request's error when the actor stopped before it answered
// (it was relinquished, or its node is stopping): ask again.
var ErrGone = errors.New("cluster: the actor stopped before it answered")

// Request sends msg to the actor of kind and identity on whichever node
// owns it and waits for the reply until ctx ends; see Ask.
func (m *Mesh) Request(ctx context.Context, kind, identity string, msg any) (any, error) {
	r, err := m.Ask(kind, identity, msg)
	if err != nil {
		return nil, err
	}
	return r.Wait(ctx)
}

// Ask sends msg to the actor of kind and identity on whichever node owns
// it, activating it there, and returns at once; the actor's one reply (it
// answers with Context.Respond, or later with a Send to the sender it
// kept) comes through the returned Reply. A message that may go to another
// node must be a protobuf message; on this node it is passed as is. An
// owner that does not own the actor in its own view refuses with
// ErrNotOwner; the caller asks again once the views agree. Messages asked
// from one goroutine of one actor arrive in the order asked.
func (m *Mesh) Ask(kind, identity string, msg any) (*Reply, error) {
	target, out, err := m.route(kind, identity, msg)
	if err != nil {
		return nil, err
	}
	r := newReply(m.system, kind, identity)
	m.system.Root.RequestWithCustomSender(target, out, r.pid)
	return r, nil
}

// Tell sends msg to the actor of kind and identity on whichever node owns
// it, expecting no reply. Messages from one goroutine to one actor arrive
// in the order sent.
func (m *Mesh) Tell(kind, identity string, msg any) error {
	target, out, err := m.route(kind, identity, msg)
	if err != nil {
		return err
	}
	m.system.Root.Send(target, out)
	return nil
}

// route finds where msg goes: the activation itself when this node owns
// it, else the owner's router, wrapped.
func (m *Mesh) route(kind, identity string, msg any) (*actor.PID, any, error) {
	owner, ok := m.Owner(kind, identity)
	if !ok {
		return nil, nil, fmt.Errorf("%w: %s %q has no live owner", ErrNotOwner, kind, identity)
	}
	if owner.Name == m.members.Name() {
		pid, err := m.PID(kind, identity)
		return pid, msg, err
	}
	if m.remote == nil || owner.Remote == "" {
		return nil, nil, fmt.Errorf("%w: %s %q is node %d's", ErrUnreachable, kind, identity, owner.NodeID)
	}
	pm, ok := msg.(proto.Message)
	if !ok {
		return nil, nil, fmt.Errorf("cluster: a %T cannot go to another node", msg)
	}
	inner, err := anypb.New(pm)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: %T: %w", msg, err)
	}
	return actor.NewPID(owner.Remote, routerName), &Deliver{Kind: kind, Identity: identity, Message: inner}, nil
}

// router takes Deliver messages from other nodes to the actors this node
// owns, keeping the original sender so replies go straight back.
func (m *Mesh) router(c actor.Context) {
	d, ok := c.Message().(*Deliver)
	if !ok {
		return
	}
	refuse := func(notOwner bool, reason string) {
		if c.Sender() != nil {
			c.Respond(&Refused{NotOwner: notOwner, Reason: reason})
		}
	}
	inner, err := d.Message.UnmarshalNew()
	if err != nil {
		refuse(false, "undecodable message: "+err.Error())
		return
	}
	pid, err := m.PID(d.Kind, d.Identity)
	if err != nil {
		refuse(errors.Is(err, ErrNotOwner), err.Error())
		return
	}
	if c.Sender() == nil {
		c.Send(pid, inner)
		return
	}
	c.RequestWithCustomSender(pid, inner, c.Sender())
}

// Reply is the answer to come to one Ask. Wait for it once, or Close it
// when the answer is no longer wanted.
type Reply struct {
	system         *actor.ActorSystem
	pid            *actor.PID
	ch             chan any
	kind, identity string
}

func newReply(system *actor.ActorSystem, kind, identity string) *Reply {
	r := &Reply{system: system, ch: make(chan any, 1), kind: kind, identity: identity}
	r.pid, _ = system.ProcessRegistry.Add(r, "reply$"+system.ProcessRegistry.NextId())
	return r
}

// Wait returns the actor's reply, or the error that stands for it: the
// owner refused (ErrNotOwner), the actor stopped first (ErrGone), or ctx
// ended first. It closes r.
func (r *Reply) Wait(ctx context.Context) (any, error) {
	defer r.Close()
	select {
	case v := <-r.ch:
		return r.result(v)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// C delivers the raw reply, for a caller that waits on several things at
// once; Result turns it into Wait's answer. Close r after.
func (r *Reply) C() <-chan any { return r.ch }

// Result is Wait's answer for v, a value received from C.
func (r *Reply) Result(v any) (any, error) { return r.result(v) }

func (r *Reply) result(v any) (any, error) {
	switch v := v.(type) {
	case *Refused:
		if v.NotOwner {
			return nil, fmt.Errorf("%w: %s", ErrNotOwner, v.Reason)
		}
		return nil, fmt.Errorf("cluster: %s %q refused: %s", r.kind, r.identity, v.Reason)
	case *actor.DeadLetterResponse:
		return nil, fmt.Errorf("%w: %s %q", ErrGone, r.kind, r.identity)
	}
	return v, nil
}

// Close stops r taking an answer; one that comes later goes nowhere.
func (r *Reply) Close() { r.system.ProcessRegistry.Remove(r.pid) }

// SendUserMessage keeps the first answer; a second one has no asker.
func (r *Reply) SendUserMessage(_ *actor.PID, message any) {
	select {
	case r.ch <- actor.UnwrapEnvelopeMessage(message):
	default:
	}
}

// SendSystemMessage and Stop make Reply a protoactor process.
func (r *Reply) SendSystemMessage(*actor.PID, any) {}
func (r *Reply) Stop(*actor.PID)                   {}
