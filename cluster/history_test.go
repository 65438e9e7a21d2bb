package cluster

import (
	"fmt"
	"testing"
	"time"
)

// identityOwnedBy is an identity of kind "lease" that the view of ms
// places on node id.
func identityOwnedBy(t *testing.T, ms []Member, id int32) string {
	t.Helper()
	v := newView(ms, 1)
	for i := range 1000 {
		identity := fmt.Sprintf("x/%d", i)
		if o, _ := place(v, "lease", identity, nil); o.NodeID == id {
			return identity
		}
	}
	t.Fatalf("no identity for node %d", id)
	return ""
}

// A node that formed the cluster alone has owned what it kept since ever;
// what it took over from a joining or departing node it owns since that
// view; what another node owns, it does not own at all (now).
func TestOwnedSince(t *testing.T) {
	self := &Membership{self: Member{Name: "m0"}}
	m := &Mesh{members: self}
	t0 := time.Now().Add(-30 * time.Second)
	m.remember(newView(members(0), 1), t0)
	both := members(0, 1)
	stays := identityOwnedBy(t, both, 0)
	moves := identityOwnedBy(t, both, 1)
	if got := m.OwnedSince("lease", moves); !got.IsZero() {
		t.Fatalf("the founder alone: owned since %v, want ever", got)
	}
	m.remember(newView(both, 2), t0.Add(10*time.Second))
	if got := m.OwnedSince("lease", stays); !got.IsZero() {
		t.Fatalf("kept across the join: owned since %v, want ever", got)
	}
	if got := m.OwnedSince("lease", moves); time.Since(got) > time.Second {
		t.Fatalf("owned by the other node: since %v, want now", got)
	}
	back := t0.Add(20 * time.Second)
	m.remember(newView(members(0), 3), back)
	if got := m.OwnedSince("lease", moves); !got.Equal(back) {
		t.Fatalf("taken back when node 1 left: since %v, want %v", got, back)
	}

	// A node that joined others owns nothing since ever.
	joiner := &Mesh{members: &Membership{self: Member{Name: "m1"}}}
	joined := t0.Add(5 * time.Second)
	joiner.remember(newView(both, 1), joined)
	if got := joiner.OwnedSince("lease", moves); !got.Equal(joined) {
		t.Fatalf("a joining node: owned since %v, want its first view's %v", got, joined)
	}

	// Forgotten views: never the zero time again, and bounded.
	for i := range historyMax + 10 {
		m.remember(newView(members(0), uint64(10+i)), time.Now())
	}
	if len(m.history) > historyMax {
		t.Fatalf("%d views kept", len(m.history))
	}
	if got := m.OwnedSince("lease", stays); got.IsZero() {
		t.Fatal("after views were forgotten: owned since ever")
	}
}
