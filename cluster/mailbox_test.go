package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// A request waiting in the mailbox of an activation that stops is
// answered ErrGone at once; with protoactor's own mailbox it gets no
// answer and its sender waits until it gives up.
func TestMailboxAnswersWhatAStoppedActivationDropped(t *testing.T) {
	m, err := Start(Config{
		Gossip: gossipConfig(0, nil),
		Kinds: map[string]*actor.Props{"answer": actor.PropsFromProducer(func() actor.Actor { return &answerer{} },
			actor.WithMailbox(Mailbox(16)))},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := m.Request(ctx, "answer", "a", wrapperspb.String("first")); err != nil {
		t.Fatal(err)
	}
	pid, err := m.PID("answer", "a")
	if err != nil {
		t.Fatal(err)
	}
	proc, ok := m.System().ProcessRegistry.Get(pid)
	if !ok {
		t.Fatal("the activation is not running")
	}
	// Held while the two queue: the activation stops on the first
	// (answerer stops on Relinquish) with the request still waiting.
	proc.SendSystemMessage(pid, &actor.SuspendMailbox{})
	m.System().Root.Send(pid, &Relinquish{})
	reply, err := m.Ask("answer", "a", wrapperspb.String("behind"))
	if err != nil {
		t.Fatal(err)
	}
	proc.SendSystemMessage(pid, &actor.ResumeMailbox{})
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if v, err := reply.Wait(wctx); !errors.Is(err, ErrGone) {
		t.Fatalf("the request behind the stop: %v, %v; want ErrGone", v, err)
	}
	// The next request activates the identity anew.
	if v, err := m.Request(ctx, "answer", "a", wrapperspb.String("again")); err != nil || v.(*wrapperspb.StringValue).Value != "0:again" {
		t.Fatalf("after the stop: %v, %v", v, err)
	}
}

// posted tells, once, that a StringValue was posted to the mailbox it
// watches.
type posted struct{ ch chan struct{} }

func (p *posted) MailboxStarted()     {}
func (p *posted) MailboxEmpty()       {}
func (p *posted) MessageReceived(any) {}
func (p *posted) MessagePosted(m any) {
	if _, ok := actor.UnwrapEnvelopeMessage(m).(*wrapperspb.StringValue); ok {
		select {
		case p.ch <- struct{}{}:
		default:
		}
	}
}

// The answer for a request dropped by a stopped activation reaches an
// asker on another node, through remoting, as ErrGone.
func TestRemotingMailboxAnswersAcrossNodes(t *testing.T) {
	skipUnderRace(t)
	queued := &posted{ch: make(chan struct{}, 1)}
	start := func(id int32, join []string) *Mesh {
		m, err := Start(Config{
			Gossip: gossipConfig(id, join),
			Remote: "127.0.0.1:0",
			Kinds: map[string]*actor.Props{"answer": actor.PropsFromProducer(func() actor.Actor { return &answerer{node: id} },
				actor.WithMailbox(func() actor.Mailbox { return actor.Bounded(16, &dropAnswerer{}, queued)() }))},
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m.Stop)
		return m
	}
	a := start(0, nil)
	b := start(1, []string{a.Members().Self().Gossip})
	for _, m := range []*Mesh{a, b} {
		waitMembers(t, m.Members(), 0, 1)
	}
	identity := ""
	for i := 0; identity == ""; i++ {
		if o, _ := a.Owner("answer", fmt.Sprint("id-", i)); o.NodeID == 0 {
			identity = fmt.Sprint("id-", i)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pid, err := a.PID("answer", identity)
	if err != nil {
		t.Fatal(err)
	}
	proc, ok := a.System().ProcessRegistry.Get(pid)
	if !ok {
		t.Fatal("the activation is not running")
	}
	proc.SendSystemMessage(pid, &actor.SuspendMailbox{})
	a.System().Root.Send(pid, &Relinquish{})
	reply, err := b.Ask("answer", identity, wrapperspb.String("from b"))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-queued.ch: // node a's router put it in the mailbox
	case <-ctx.Done():
		t.Fatal("the request from node b never reached the mailbox")
	}
	proc.SendSystemMessage(pid, &actor.ResumeMailbox{})
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if v, err := reply.Wait(wctx); !errors.Is(err, ErrGone) {
		t.Fatalf("node b's request behind the stop: %v, %v; want ErrGone", v, err)
	}
}
