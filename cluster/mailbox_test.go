package cluster

import (
	"context"
	"errors"
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
