package cluster

import (
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
	r := NewRegistry(self)
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

func (e echo) Receive(ctx actor.Context) {
	if s, ok := ctx.Message().(string); ok {
		e.got <- ctx.Self().Id + ":" + s
	}
}

// Send activates an actor per identity on first use, delivers in order, and
// reuses the activation afterwards; Stop stops them.
func TestMeshSendActivatesByIdentity(t *testing.T) {
	got := make(chan string, 16)
	m, err := Start(Config{
		Name:  "test",
		Bind:  "127.0.0.1:0",
		Kinds: map[string]*actor.Props{"echo": actor.PropsFromProducer(func() actor.Actor { return echo{got} })},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
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
	if _, err := Start(Config{Name: "test", Bind: "nohostport"}); err == nil {
		t.Fatal("a bind with no port was accepted")
	}
}
