package cluster

import (
	"hash/fnv"
	"sort"
)

// Placement is where actors live: a pure function of the live members,
// so every node that sees the same members places every identity on the
// same node, and the registry (what Metadata and FindCoordinator say) and
// the activations can never disagree on one node.
//
// It is rendezvous hashing: each member scores the identity, the highest
// score owns it. A member joining takes about 1/n of the identities, from
// every other member alike; a member leaving gives only its own away; and
// since members score by node id, not by their per-start member name, a
// node that restarts with its id gets back exactly the identities it had.

// Spreader says that an identity is the index-th of a set, such as a
// topic's partitions, whose identities are to be spread evenly over the
// members rather than left to chance: with plain rendezvous hashing the 64
// partitions of a topic fall 14/23/27 on three nodes, while a Kafka
// cluster gives each broker the same share, and clients spread their load
// by leader. A set is ranked by rendezvous hashing of its name, and its
// index-th identity goes to the member ranked index mod n: shares differ
// by at most one. The cost is in changes: when a member joins or leaves,
// most of a set moves, not 1/n of it (a moved partition's cache refills
// from upstream and its clients are sent to the new leader once). A node
// restarting with its id gets back exactly what it had.
type Spreader func(identity string) (set string, index int, ok bool)

// place is the owner of kind's identity among v's members.
func place(v *View, kind, identity string, spread Spreader) (Member, bool) {
	if len(v.Members) == 0 {
		return Member{}, false
	}
	if spread != nil {
		if set, index, ok := spread(identity); ok && index >= 0 {
			ranked := v.ranked(kind + "\x00" + set)
			return ranked[index%len(ranked)], true
		}
	}
	return v.Members[owner(kind+"\x00"+identity, v.Members)], true
}

// ranked is rank(key, v.Members), computed once per view: every Produce
// and Fetch asks the owner of each partition it names, and the view
// changes only when the members do.
func (v *View) ranked(key string) []Member {
	if r, ok := v.ranks.Load(key); ok {
		return r.([]Member)
	}
	r := rank(key, v.Members)
	v.ranks.Store(key, r)
	return r
}

// rank orders members by their score for key, highest first.
func rank(key string, members []Member) []Member {
	h := fnv.New64a()
	h.Write([]byte(key))
	k := h.Sum64()
	type scored struct {
		m Member
		s uint64
	}
	ss := make([]scored, len(members))
	for i, m := range members {
		ss[i] = scored{m, score(k, m.NodeID)}
	}
	sort.Slice(ss, func(i, j int) bool {
		if ss[i].s != ss[j].s {
			return ss[i].s > ss[j].s
		}
		return ss[i].m.NodeID < ss[j].m.NodeID
	})
	out := make([]Member, len(ss))
	for i := range ss {
		out[i] = ss[i].m
	}
	return out
}

// owner returns the index in members of the owner of identity, or -1 when
// members is empty.
func owner(identity string, members []Member) int {
	h := fnv.New64a()
	h.Write([]byte(identity))
	key := h.Sum64()
	best, bestScore := -1, uint64(0)
	for i, m := range members {
		s := score(key, m.NodeID)
		if best < 0 || s > bestScore || s == bestScore && m.NodeID < members[best].NodeID {
			best, bestScore = i, s
		}
	}
	return best
}

// score mixes an identity's hash with a node id so that neighbouring ids
// and identities that differ in one character score independently.
func score(key uint64, id int32) uint64 {
	return mix(key ^ mix(uint64(uint32(id))+0x9e3779b97f4a7c15))
}

// mix is splitmix64's finaliser: every input bit reaches every output bit.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
