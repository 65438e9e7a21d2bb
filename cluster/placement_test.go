package cluster

import (
	"fmt"
	"testing"
)

func members(ids ...int32) []Member {
	ms := make([]Member, len(ids))
	for i, id := range ids {
		ms[i] = Member{Name: fmt.Sprintf("m%d", id), NodeID: id}
	}
	return ms
}

func partitions(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("partition\x00default/orders/%d", i)
	}
	return ids
}

func owners(ids []string, ms []Member) map[string]int32 {
	out := map[string]int32{}
	for _, id := range ids {
		out[id] = ms[owner(id, ms)].NodeID
	}
	return out
}

// Every node computes the same owner whatever order it lists the members
// in, and an empty cluster owns nothing.
func TestOwnerIgnoresMemberOrder(t *testing.T) {
	ids := partitions(64)
	a := owners(ids, members(0, 1, 2))
	b := owners(ids, members(2, 0, 1))
	for _, id := range ids {
		if a[id] != b[id] {
			t.Fatalf("%q: owner %d or %d by member order", id, a[id], b[id])
		}
	}
	if owner("x", nil) != -1 {
		t.Fatal("an empty member list owns an identity")
	}
}

func spreadTopic(identity string) (string, int, bool) {
	var topic string
	var p int
	if _, err := fmt.Sscanf(identity, "%s %d", &topic, &p); err != nil {
		return "", 0, false
	}
	return topic, p, true
}

// 64 partitions over 3 nodes: 21, 21 and 22, as a Kafka cluster spreads
// leadership; a topic's first partition is not always on one node; a
// node that restarts gets its partitions back.
func TestSpreadPartitionsEvenly(t *testing.T) {
	three := newView(members(0, 1, 2), 1)
	count := map[int32]int{}
	firsts := map[int32]bool{}
	for topic := 0; topic < 20; topic++ {
		for p := 0; p < 64; p++ {
			m, _ := place(three, "partition", fmt.Sprintf("t%d %d", topic, p), spreadTopic)
			if topic == 0 {
				count[m.NodeID]++
			}
			if p == 0 {
				firsts[m.NodeID] = true
			}
		}
	}
	for id := int32(0); id < 3; id++ {
		if count[id] < 21 || count[id] > 22 {
			t.Errorf("node %d leads %d of 64 partitions, want 21 or 22: %v", id, count[id], count)
		}
	}
	if len(firsts) != 3 {
		t.Errorf("partition 0 of 20 topics lands only on nodes %v", firsts)
	}
	two := newView(members(0, 2), 2)
	for p := 0; p < 64; p++ {
		id := fmt.Sprintf("t0 %d", p)
		before, _ := place(three, "partition", id, spreadTopic)
		during, _ := place(two, "partition", id, spreadTopic)
		after, _ := place(newView(members(2, 1, 0), 3), "partition", id, spreadTopic)
		if during.NodeID == 1 {
			t.Fatalf("%s placed on node 1, which left", id)
		}
		if after.NodeID != before.NodeID {
			t.Fatalf("%s: node %d before node 1 left, node %d after it came back", id, before.NodeID, after.NodeID)
		}
	}
	if _, ok := place(newView(nil, 4), "partition", "t0 0", spreadTopic); ok {
		t.Fatal("an empty view placed a partition")
	}
	// Identities the spreader does not know fall back to rendezvous.
	if m, ok := place(three, "partition", "not a partition", spreadTopic); !ok || m.NodeID != three.Members[owner("partition\x00not a partition", three.Members)].NodeID {
		t.Fatalf("an identity with no set placed on %+v", m)
	}
}

// A node leaving gives away only its own identities; a node joining takes
// some from each and moves nothing else; a node restarting with its id
// gets back exactly what it had.
func TestOwnerMovesOnlyWhatMust(t *testing.T) {
	ids := partitions(300)
	three := owners(ids, members(0, 1, 2))
	two := owners(ids, members(0, 2))
	for _, id := range ids {
		if three[id] != 1 && two[id] != three[id] {
			t.Fatalf("%q moved from node %d to %d when node 1 left", id, three[id], two[id])
		}
	}
	four := owners(ids, members(0, 1, 2, 3))
	taken := map[int32]int{}
	for _, id := range ids {
		if four[id] != three[id] {
			if four[id] != 3 {
				t.Fatalf("%q moved from node %d to %d when node 3 joined", id, three[id], four[id])
			}
			taken[three[id]]++
		}
	}
	if len(taken) != 3 {
		t.Errorf("node 3 took identities from %v, want from each of 0, 1, 2", taken)
	}
	back := owners(ids, members(0, 1, 2))
	for _, id := range ids {
		if back[id] != three[id] {
			t.Fatalf("%q: owner %d after node 1 came back, %d before it left", id, back[id], three[id])
		}
	}
}

func TestViewByID(t *testing.T) {
	v := newView(members(4, 0, 2), 1)
	if m, ok := v.ByID(2); !ok || m.NodeID != 2 {
		t.Fatalf("ByID(2) = %+v, %v", m, ok)
	}
	if _, ok := v.ByID(3); ok {
		t.Fatal("ByID(3) found a member")
	}
	if v.Members[0].NodeID != 0 || v.Members[2].NodeID != 4 {
		t.Fatalf("view not sorted by node id: %+v", v.Members)
	}
}

// The owner of a partition is asked for every partition of every Produce
// and Fetch.
func BenchmarkPlacePartition(b *testing.B) {
	v := newView(members(0, 1, 2), 1)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		place(v, "partition", fmt.Sprintf("t0 %d", i%64), spreadTopic)
	}
}
