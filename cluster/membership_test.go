package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// logSink keeps what a node logged, for tests that check what it said.
type logSink struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *logSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

type gossipOpt func(*GossipConfig)

func withLog(w io.Writer) gossipOpt {
	return func(c *GossipConfig) { c.Logger = slog.New(slog.NewTextHandler(w, nil)) }
}

func inCluster(name string) gossipOpt { return func(c *GossipConfig) { c.Self.Cluster = name } }

func atBind(addr string) gossipOpt { return func(c *GossipConfig) { c.Bind = addr } }

// gossipConfig is a node on loopback with fast failure detection: probes
// every 100 ms, dead after 500 ms of silence.
func gossipConfig(id int32, join []string, opts ...gossipOpt) GossipConfig {
	c := GossipConfig{
		Self:             Member{Cluster: "test", NodeID: id, Kafka: fmt.Sprintf("127.0.0.1:%d", 19000+id)},
		Bind:             "127.0.0.1:0",
		Join:             join,
		ProbeInterval:    100 * time.Millisecond,
		SuspicionTimeout: 500 * time.Millisecond,
		Logger:           slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, o := range opts {
		o(&c)
	}
	return c
}

func startGossip(t *testing.T, id int32, join []string, opts ...gossipOpt) *Membership {
	t.Helper()
	m, err := JoinMembership(gossipConfig(id, join, opts...))
	if err != nil {
		t.Fatalf("node %d: %v", id, err)
	}
	t.Cleanup(m.Crash)
	return m
}

// waitMembers waits, bounded by the test's context, until m's view holds
// exactly the node ids want.
func waitMembers(t *testing.T, m *Membership, want ...int32) *View {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for {
		v := m.View()
		if sameIDs(v, want) {
			return v
		}
		select {
		case <-ctx.Done():
			t.Fatalf("node %d sees %v, want node ids %v", m.Self().NodeID, ids(v), want)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func ids(v *View) []int32 {
	var out []int32
	for _, m := range v.Members {
		out = append(out, m.NodeID)
	}
	return out
}

func sameIDs(v *View, want []int32) bool {
	got := ids(v)
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

// Three nodes join through one seed; every node sees all three with the
// metadata each gossiped; a graceful leave and a crash each take one away
// on the survivors.
func TestMembershipJoinLeaveCrash(t *testing.T) {
	a := startGossip(t, 0, nil)
	b := startGossip(t, 1, []string{a.Self().Gossip})
	c := startGossip(t, 2, []string{a.Self().Gossip})
	for _, m := range []*Membership{a, b, c} {
		v := waitMembers(t, m, 0, 1, 2)
		for _, mem := range v.Members {
			if mem.Kafka != fmt.Sprintf("127.0.0.1:%d", 19000+mem.NodeID) || mem.Cluster != "test" || mem.Gossip == "" {
				t.Fatalf("node %d sees member %+v", m.Self().NodeID, mem)
			}
		}
	}
	b.Leave(time.Second)
	waitMembers(t, a, 0, 2)
	waitMembers(t, c, 0, 2)
	if v := b.View(); !sameIDs(v, []int32{0, 2}) {
		t.Fatalf("the node that left still places on itself: %v", ids(v))
	}
	c.Crash()
	waitMembers(t, a, 0)
}

// A node whose id another live node has is refused: its start fails with
// ErrRefused naming the id, and the cluster never lists it.
func TestMembershipRefusesATakenNodeID(t *testing.T) {
	var seedLog logSink
	a := startGossip(t, 5, nil, withLog(&seedLog))
	_, err := JoinMembership(gossipConfig(5, []string{a.Self().Gossip}))
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "node.id 5 is used by both") {
		t.Fatalf("a second node 5 joined with %v, want ErrRefused naming node.id 5", err)
	}
	if v := a.View(); !sameIDs(v, []int32{5}) {
		t.Fatalf("the seed lists %v after refusing a second node 5", ids(v))
	}
	// The seed checks the newcomer after answering it, so its line may
	// come after the newcomer's start has failed.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for !strings.Contains(seedLog.String(), "node.id 5 is used by both") {
		select {
		case <-ctx.Done():
			t.Fatalf("the seed did not log the refusal: %s", seedLog.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// A node of another cluster is refused on both sides.
func TestMembershipRefusesAnotherCluster(t *testing.T) {
	a := startGossip(t, 0, nil)
	_, err := JoinMembership(gossipConfig(1, []string{a.Self().Gossip}, inCluster("other")))
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), `belongs to cluster "test", this node to "other"`) {
		t.Fatalf("join from cluster other: %v", err)
	}
	if v := a.View(); !sameIDs(v, []int32{0}) {
		t.Fatalf("the seed lists %v after refusing another cluster's node", ids(v))
	}
}

// freeAddr is a loopback address nothing listens on, for now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// A node whose seed is not up yet starts alone and keeps trying; once the
// seed comes up, they form one cluster.
func TestMembershipRetriesADeadSeed(t *testing.T) {
	seed := freeAddr(t)
	b := startGossip(t, 1, []string{seed})
	if v := b.View(); !sameIDs(v, []int32{1}) {
		t.Fatalf("with no seed up the node sees %v, want itself", ids(v))
	}
	a := startGossip(t, 0, nil, atBind(seed))
	waitMembers(t, a, 0, 1)
	waitMembers(t, b, 0, 1)
}

// A node killed and started again at its address with its id, before the
// others declared it dead, replaces its earlier start at once: no refusal
// and never two entries for one id.
func TestMembershipRestartReplacesTheEarlierStart(t *testing.T) {
	a := startGossip(t, 0, nil, func(c *GossipConfig) { c.SuspicionTimeout = 30 * time.Second })
	addr := freeAddr(t)
	b := startGossip(t, 1, []string{a.Self().Gossip}, atBind(addr))
	waitMembers(t, a, 0, 1)
	first := b.Self().Name
	b.Crash()
	b2 := startGossip(t, 1, []string{a.Self().Gossip}, atBind(addr))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for {
		v := a.View()
		if m, ok := v.ByID(1); ok && m.Name == b2.Self().Name && len(v.Members) == 2 {
			break
		}
		if len(v.Members) > 2 {
			t.Fatalf("two entries for node 1: %+v", v.Members)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("seed still lists %+v, want node 1's new start %s (was %s)", v.Members, b2.Self().Name, first)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// While a node leaves, what it advertises to Kafka clients leaves it out
// at once, and its own view, by which its actors are placed, keeps it
// until the leave is out; both leave it out afterwards.
func TestMembershipAdvertisesWithoutALeavingNode(t *testing.T) {
	a := startGossip(t, 0, nil)
	b := startGossip(t, 1, []string{a.Self().Gossip})
	waitMembers(t, a, 0, 1)
	waitMembers(t, b, 0, 1)
	if !sameIDs(b.Advertised(), []int32{0, 1}) {
		t.Fatalf("before leaving, node 1 advertises %v", ids(b.Advertised()))
	}
	// The leave's first step, as stop takes it.
	b.mu.Lock()
	b.goingAt = true
	b.advertise()
	b.mu.Unlock()
	if !sameIDs(b.Advertised(), []int32{0}) || !sameIDs(b.View(), []int32{0, 1}) {
		t.Fatalf("leaving, node 1 advertises %v and places by %v; want [0] and [0 1]", ids(b.Advertised()), ids(b.View()))
	}
	b.Leave(time.Second)
	waitMembers(t, a, 0)
	if !sameIDs(b.Advertised(), []int32{0}) || !sameIDs(b.View(), []int32{0}) {
		t.Fatalf("after leaving, node 1 advertises %v and places by %v", ids(b.Advertised()), ids(b.View()))
	}
	if !sameIDs(a.Advertised(), []int32{0}) {
		t.Fatalf("node 0 advertises %v", ids(a.Advertised()))
	}
}
