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
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/meshka/meshka/internal/race"
)

// skipUnderRace skips a test of remoting between nodes in one process
// under the race detector (see package race); make test runs it again
// without.
func skipUnderRace(t *testing.T) {
	if race.Enabled {
		t.Skip("remoting between nodes in one process: run without -race (make test does)")
	}
}

// answerer replies to a StringValue with the node and identity that
// answered it.
type answerer struct{ node int32 }

func (a *answerer) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *wrapperspb.StringValue:
		c.Respond(wrapperspb.String(fmt.Sprintf("%d:%s", a.node, m.Value)))
	case *Relinquish:
		c.Stop(c.Self())
	case proto.Message:
		if c.Sender() != nil {
			c.Respond(wrapperspb.String("other"))
		}
	}
}

func startRemoteMesh(t *testing.T, id int32, join []string) *Mesh {
	t.Helper()
	m, err := Start(Config{
		Gossip: gossipConfig(id, join),
		Remote: "127.0.0.1:0",
		Kinds:  map[string]*actor.Props{"answer": actor.PropsFromProducer(func() actor.Actor { return &answerer{node: id} })},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return m
}

// A request from any node reaches the actor on its owner, through the
// owner's router when that is another node, and the reply comes back.
func TestRemotingRequestReachesTheOwnerOnAnyNode(t *testing.T) {
	skipUnderRace(t)
	a := startRemoteMesh(t, 0, nil)
	b := startRemoteMesh(t, 1, []string{a.Members().Self().Gossip})
	for _, m := range []*Mesh{a, b} {
		waitMembers(t, m.Members(), 0, 1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 0; i < 20; i++ {
		identity := fmt.Sprintf("id-%d", i)
		o, _ := a.Owner("answer", identity)
		for _, m := range []*Mesh{a, b} {
			v, err := m.Request(ctx, "answer", identity, wrapperspb.String(identity))
			if err != nil {
				t.Fatalf("%s from node %d: %v", identity, m.Members().Self().NodeID, err)
			}
			want := fmt.Sprintf("%d:%s", o.NodeID, identity)
			if got := v.(*wrapperspb.StringValue).Value; got != want {
				t.Fatalf("%s from node %d: answered %q, want %q", identity, m.Members().Self().NodeID, got, want)
			}
		}
	}
	// A message that is not a protobuf one stays on its node.
	for i := 0; i < 20; i++ {
		identity := fmt.Sprintf("id-%d", i)
		if o, _ := a.Owner("answer", identity); o.NodeID == 1 {
			if _, err := a.Request(ctx, "answer", identity, "not protobuf"); err == nil {
				t.Fatal("a Go string went to another node")
			}
			break
		}
	}
}

// On one node a request is answered by the actor, a stopped actor's
// request fails with ErrGone rather than hanging, an identity another
// node owns fails with ErrNotOwner, and a reply nobody waits for any more
// goes nowhere.
func TestRequestOnOneNode(t *testing.T) {
	m := startRemoteMeshOff(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := m.Request(ctx, "answer", "a", wrapperspb.String("x"))
	if err != nil || v.(*wrapperspb.StringValue).Value != "0:x" {
		t.Fatalf("Request = %v, %v", v, err)
	}
	pid, err := m.PID("answer", "a")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.System().Root.StopFuture(pid).Wait(); err != nil {
		t.Fatal(err)
	}
	r := newReply(m.system, "answer", "a")
	m.system.Root.RequestWithCustomSender(pid, wrapperspb.String("y"), r.pid)
	if _, err := r.Wait(ctx); !errors.Is(err, ErrGone) {
		t.Fatalf("request to a stopped actor: %v, want ErrGone", err)
	}
	short, stop := context.WithTimeout(ctx, 50*time.Millisecond)
	defer stop()
	if _, err := m.Request(short, "answer", "b", "no answer to a string"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unanswered request: %v", err)
	}
	m.Leave(time.Second)
	if _, err := m.Request(ctx, "answer", "c", wrapperspb.String("z")); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("request after leaving: %v, want ErrNotOwner", err)
	}
}

func startRemoteMeshOff(t testing.TB) *Mesh {
	t.Helper()
	m, err := Start(Config{
		Gossip: gossipConfig(0, nil),
		Kinds:  map[string]*actor.Props{"answer": actor.PropsFromProducer(func() actor.Actor { return &answerer{node: 0} })},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return m
}

// Whatever a Deliver from another node holds, the router answers it: the
// actor's reply when it names a kind here and a message that decodes, a
// refusal otherwise; never a panic, never silence.
func FuzzRouterDeliver(f *testing.F) {
	m := startRemoteMeshOff(f)
	inner, _ := anypb.New(wrapperspb.String("x"))
	for _, d := range []*Deliver{
		{Kind: "answer", Identity: "a", Message: inner},
		{Kind: "nosuchkind", Identity: "a", Message: inner},
		{Kind: "answer", Identity: "a"},
		{Kind: "answer", Identity: "a", Message: &anypb.Any{TypeUrl: "type.googleapis.com/google.protobuf.StringValue", Value: []byte{0xff}}},
		{Kind: "answer", Identity: "a", Message: &anypb.Any{TypeUrl: "nosuch.Type"}},
	} {
		b, _ := proto.Marshal(d)
		f.Add(b)
	}
	router := actor.NewPID(m.system.Address(), routerName)
	f.Fuzz(func(t *testing.T, data []byte) {
		var d Deliver
		if proto.Unmarshal(data, &d) != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r := newReply(m.system, d.Kind, d.Identity)
		m.system.Root.RequestWithCustomSender(router, &d, r.pid)
		if _, err := r.Wait(ctx); errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("no answer to %v", &d)
		}
	})
}
