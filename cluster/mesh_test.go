package cluster

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

func TestParseNode(t *testing.T) {
	n, err := ParseNode(3, "broker.example:9095")
	if err != nil || n != (Node{ID: 3, Host: "broker.example", Port: 9095}) {
		t.Fatalf("ParseNode = %+v, %v", n, err)
	}
	for _, bad := range []string{"no-port", "host:", "host:65536", "host:-1", "host:x"} {
		if _, err := ParseNode(0, bad); err == nil {
			t.Errorf("ParseNode(%q) accepted", bad)
		}
	}
}

// A one-member registry names this node for everything, the node Metadata
// must list as every partition's leader.
func TestRegistryOneMember(t *testing.T) {
	self := Node{ID: 7, Host: "h", Port: 1}
	r := NewRegistry(self, nil)
	if got := r.Nodes(); len(got) != 1 || got[0] != self {
		t.Fatalf("Nodes = %+v", got)
	}
	if r.Owner("partition", "t/0") != self || r.Self() != self {
		t.Fatal("owner is not this node")
	}
}

// echo answers every string it is sent with the identity it was activated
// under, so the test sees which activation got the message.
type echo struct{ got chan<- string }

func (e *echo) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case string:
		e.got <- ctx.Self().Id + ":" + m
	case *Relinquish:
		ctx.Stop(ctx.Self())
	}
}

// Send activates an actor per identity on first use, delivers in order, and
// reuses the activation afterwards; Stop stops them.
func TestMeshSendActivatesByIdentity(t *testing.T) {
	got := make(chan string, 16)
	m := startMesh(t, 0, nil, got)
	for _, msg := range []string{"a1", "a2"} {
		if err := m.Send("echo", "a", msg); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Send("echo", "b", "b1"); err != nil {
		t.Fatal(err)
	}
	// by identity, the activations' PID ids and the messages in arrival order
	pids, msgs := map[byte]map[string]bool{}, map[byte]string{}
	for i := 0; i < 3; i++ {
		select {
		case s := <-got:
			at := strings.LastIndexByte(s, ':')
			pid, msg := s[:at], s[at+1:]
			if pids[msg[0]] == nil {
				pids[msg[0]] = map[string]bool{}
			}
			pids[msg[0]][pid] = true
			msgs[msg[0]] += msg
		case <-time.After(30 * time.Second):
			t.Fatalf("only %d of 3 messages arrived: %v", i, msgs)
		}
	}
	if msgs['a'] != "a1a2" || msgs['b'] != "b1" || len(pids['a']) != 1 || len(pids['b']) != 1 {
		t.Fatalf("messages by identity %q from activations %v; want a1a2 from one, b1 from one", msgs, pids)
	}
	pa, _ := m.PID("echo", "a")
	pb, _ := m.PID("echo", "b")
	if pa.Id == pb.Id {
		t.Fatalf("identities a and b share activation %s", pa.Id)
	}
	if _, err := Start(Config{Gossip: gossipConfig(0, nil, atBind("nohostport"))}); err == nil {
		t.Fatal("a bind with no port was accepted")
	}
}

// startMesh starts a mesh without actor remoting: protoactor's
// remote.Start sets grpc's process-wide logger, which races with another
// remote serving in the same process (TestMeshGossipsItsRemote has one).
func startMesh(t *testing.T, id int32, join []string, got chan<- string) *Mesh {
	t.Helper()
	m, err := Start(Config{
		Gossip: gossipConfig(id, join),
		Kinds:  map[string]*actor.Props{"echo": actor.PropsFromProducer(func() actor.Actor { return &echo{got: got} })},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return m
}

// Three meshes: an identity is active only on the node the placement
// names, every other node refuses it with ErrNotOwner, and the registry
// of every node names that owner; when the owner leaves, its activations
// stop and the new owner takes the identity.
func TestMeshActivatesOnTheOwnerOnly(t *testing.T) {
	got := make(chan string, 64)
	a := startMesh(t, 0, nil, got)
	b := startMesh(t, 1, []string{a.Members().Self().Gossip}, got)
	c := startMesh(t, 2, []string{a.Members().Self().Gossip}, got)
	meshes := []*Mesh{a, b, c}
	for _, m := range meshes {
		waitMembers(t, m.Members(), 0, 1, 2)
	}
	for i := 0; i < 30; i++ {
		identity := fmt.Sprintf("id-%d", i)
		o, _ := a.Owner("echo", identity)
		sent := 0
		for _, m := range meshes {
			reg := NewRegistry(Node{ID: m.Members().Self().NodeID}, m)
			if n := reg.Owner("echo", identity); n.ID != o.NodeID {
				t.Fatalf("%s: node %d's registry names node %d, the placement node %d", identity, m.Members().Self().NodeID, n.ID, o.NodeID)
			}
			err := m.Send("echo", identity, "x")
			switch mine := m.Members().Self().NodeID == o.NodeID; {
			case mine && err != nil:
				t.Fatalf("%s: owner node %d: %v", identity, o.NodeID, err)
			case !mine && !errors.Is(err, ErrNotOwner):
				t.Fatalf("%s: node %d is not the owner, Send = %v", identity, m.Members().Self().NodeID, err)
			case mine:
				sent++
			}
		}
		if sent != 1 {
			t.Fatalf("%s sent on %d nodes", identity, sent)
		}
		select {
		case <-got:
		case <-t.Context().Done():
			t.Fatal("no activation answered")
		}
	}

	// An identity of b's: active there, stopped when b leaves, then
	// taken by a survivor.
	var identity string
	for i := 0; ; i++ {
		identity = fmt.Sprintf("moving-%d", i)
		if o, _ := a.Owner("echo", identity); o.NodeID == 1 {
			break
		}
	}
	pid, err := b.PID("echo", identity)
	if err != nil {
		t.Fatal(err)
	}
	b.Leave(time.Second)
	if err := b.Send("echo", identity, "late"); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("after leaving, node 1 still takes %s: %v", identity, err)
	}
	if err := b.System().Root.StopFuture(pid).Wait(); err != nil {
		t.Fatalf("node 1's activation of %s: %v", identity, err)
	}
	waitMembers(t, a.Members(), 0, 2)
	waitMembers(t, c.Members(), 0, 2)
	o, _ := a.Owner("echo", identity)
	var owner *Mesh
	for _, m := range []*Mesh{a, c} {
		if m.Members().Self().NodeID == o.NodeID {
			owner = m
		}
	}
	if owner == nil {
		t.Fatalf("%s placed on node %d after node 1 left", identity, o.NodeID)
	}
	if err := owner.Send("echo", identity, "moved"); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if !strings.HasSuffix(s, ":moved") {
			t.Fatalf("got %q, want the moved message", s)
		}
	case <-t.Context().Done():
		t.Fatal("the new owner's activation did not answer")
	}
}

// With remoting on, the node gossips the address remoting really bound,
// not the port 0 it was given.
func TestMeshGossipsItsRemote(t *testing.T) {
	m, err := Start(Config{Gossip: gossipConfig(0, nil), Remote: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	self, _ := m.Members().View().ByID(0)
	if !strings.HasPrefix(self.Remote, "127.0.0.1:") || strings.HasSuffix(self.Remote, ":0") {
		t.Fatalf("gossiped remote %q, want 127.0.0.1 and the bound port", self.Remote)
	}
}
