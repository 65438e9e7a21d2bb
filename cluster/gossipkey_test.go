package cluster

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func withKeys(keys ...[]byte) gossipOpt { return func(c *GossipConfig) { c.Keys = keys } }

func gossipKey(fill byte) []byte { return bytes.Repeat([]byte{fill}, 32) }

// Three nodes with one key form a cluster; each leaves and the others
// see it go, as without encryption.
func TestMembershipEncryptedGossip(t *testing.T) {
	k := gossipKey('k')
	a := startGossip(t, 0, nil, withKeys(k))
	b := startGossip(t, 1, []string{a.Self().Gossip}, withKeys(k))
	c := startGossip(t, 2, []string{a.Self().Gossip}, withKeys(k))
	for _, m := range []*Membership{a, b, c} {
		waitMembers(t, m, 0, 1, 2)
	}
	c.Leave(time.Second)
	waitMembers(t, a, 0, 1)
	waitMembers(t, b, 0, 1)
}

// A node with another key, with none, or with a key where the cluster
// gossips in the clear is refused: its start fails with ErrRefused
// naming cluster.gossip_keys, and the cluster's views keep their members.
func TestMembershipRefusesAWrongKey(t *testing.T) {
	k := gossipKey('k')
	a := startGossip(t, 0, nil, withKeys(k))
	b := startGossip(t, 1, []string{a.Self().Gossip}, withKeys(k))
	waitMembers(t, a, 0, 1)
	waitMembers(t, b, 0, 1)
	clear := startGossip(t, 5, nil)

	for _, tc := range []struct {
		name string
		seed *Membership
		opts []gossipOpt
		want string
	}{
		{"another key", a, []gossipOpt{withKeys(gossipKey('x'))}, "share no gossip key"},
		{"the right key second but another first", a, []gossipOpt{withKeys(gossipKey('x'), k)}, "share no gossip key"},
		{"no key", a, nil, "this node has no gossip key"},
		{"a key where the cluster has none", clear, []gossipOpt{withKeys(k)}, "share no gossip key (or they gossip in the clear)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := JoinMembership(gossipConfig(2, []string{tc.seed.Self().Gossip}, tc.opts...))
			if err == nil {
				m.Crash()
				t.Fatal("the node joined")
			}
			if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "cluster.gossip_keys") {
				t.Fatalf("join: %v; want ErrRefused saying %q and naming cluster.gossip_keys", err, tc.want)
			}
		})
	}
	// The refused nodes never were members: the views are as they were.
	for _, m := range []*Membership{a, b} {
		if v := m.View(); !sameIDs(v, []int32{0, 1}) {
			t.Fatalf("node %d sees %v after the refusals, want [0 1]", m.Self().NodeID, ids(v))
		}
	}
	if v := clear.View(); !sameIDs(v, []int32{5}) {
		t.Fatalf("the cluster in the clear sees %v, want [5]", ids(v))
	}
}

// A key is replaced in three rolling steps, each node restarted in turn
// (here: a new start of each node joining the other): [old] → [old, new]
// → [new, old] → [new]. At every step the restarted node joins nodes of
// the step before, and the two keep one view.
func TestMembershipGossipKeyRotation(t *testing.T) {
	old, new := gossipKey('o'), gossipKey('n')
	nodes := [2]*Membership{startGossip(t, 0, nil, withKeys(old))}
	nodes[1] = startGossip(t, 1, []string{nodes[0].Self().Gossip}, withKeys(old))
	waitMembers(t, nodes[0], 0, 1)
	for _, step := range [][][]byte{{old, new}, {new, old}, {new}} {
		for i := range nodes {
			other := nodes[1-i]
			nodes[i].Leave(time.Second)
			waitMembers(t, other, other.Self().NodeID)
			nodes[i] = startGossip(t, int32(i), []string{other.Self().Gossip}, withKeys(step...))
			waitMembers(t, nodes[0], 0, 1)
			waitMembers(t, nodes[1], 0, 1)
		}
	}
	// Now an [old] node is refused: the cluster has let the old key go.
	_, err := JoinMembership(gossipConfig(2, []string{nodes[0].Self().Gossip}, withKeys(old)))
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("a node with the retired key: %v, want ErrRefused", err)
	}
}
