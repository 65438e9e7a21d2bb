package group

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// staticPair forms a Stable group of static member "pod-0" (the leader)
// and dynamic member b, and returns their ids and the generation.
func staticPair(t *testing.T, h *harness) (s, b string, gen int32) {
	t.Helper()
	inst := str("pod-0")
	rs := only[*kmsg.JoinGroupResponse](t, h.join(joinReq(5, "", inst, rangeProto("t1")), "cs", "s"), "s")
	if rs.ErrorCode != 0 || !strings.HasPrefix(rs.MemberID, "pod-0-") {
		t.Fatalf("static member's first join (no MEMBER_ID_REQUIRED round): %+v", rs)
	}
	s = rs.MemberID
	none(t, h.join(joinReq(3, "", nil, rangeProto("t2")), "cb", "b"), "b")
	out := h.join(joinReq(5, s, inst, rangeProto("t1")), "cs", "s")
	rs, rb := only[*kmsg.JoinGroupResponse](t, out, "s"), only[*kmsg.JoinGroupResponse](t, out, "b")
	if rs.LeaderID != s || rb.Generation != rs.Generation {
		t.Fatalf("join: %+v / %+v", rs, rb)
	}
	b, gen = rb.MemberID, rb.Generation
	none(t, h.sync(gen, b, "sync-b"), "sync-b")
	h.sync(gen, s, "sync-s",
		kmsg.SyncGroupRequestGroupAssignment{MemberID: s, MemberAssignment: []byte("to-s")},
		kmsg.SyncGroupRequestGroupAssignment{MemberID: b, MemberAssignment: []byte("to-b")})
	if h.g.State() != Stable {
		t.Fatalf("state %s", h.g.State())
	}
	return s, b, gen
}

func TestStaticMemberRestartKeepsAssignment(t *testing.T) {
	h := newHarness(t, Config{})
	inst := str("pod-0")
	s, b, gen := staticPair(t, h)

	h.advance(3 * time.Second)
	r := only[*kmsg.JoinGroupResponse](t, h.join(joinReq(5, "", inst, rangeProto("t1")), "cs", "s2"), "s2")
	if r.ErrorCode != 0 || r.Generation != gen || r.MemberID == s || !strings.HasPrefix(r.MemberID, "pod-0-") {
		t.Fatalf("restarted static member's join: %+v", r)
	}
	// Before v9 a returning leader is named leader with no members, the
	// answer clients recognise as "keep the current assignment".
	if r.LeaderID != r.MemberID || len(r.Members) != 0 || r.SkipAssignment {
		t.Fatalf("restarted leader (v5): leader %q, member %q, %d members, skip %v", r.LeaderID, r.MemberID, len(r.Members), r.SkipAssignment)
	}
	if h.g.State() != Stable || h.g.Generation() != gen {
		t.Fatalf("rebalanced: %s generation %d", h.g.State(), h.g.Generation())
	}
	if code := h.heartbeat(gen, b, nil); code != 0 {
		t.Fatalf("other member told to rejoin: %d", code)
	}
	s2 := r.MemberID
	if sr := only[*kmsg.SyncGroupResponse](t, h.sync(gen, s2, "sync-s2"), "sync-s2"); sr.ErrorCode != 0 || string(sr.MemberAssignment) != "to-s" {
		t.Fatalf("sync of the restarted member: %+v", sr)
	}

	// The old process is fenced wherever it shows its instance id.
	if code := h.heartbeat(gen, s, inst); code != codeFencedInstance {
		t.Fatalf("old member's heartbeat: %d", code)
	}
	old := kmsg.NewPtrSyncGroupRequest()
	old.Version, old.Group, old.Generation, old.MemberID, old.InstanceID = 3, "g", gen, s, inst
	if sr := only[*kmsg.SyncGroupResponse](t, h.g.Sync(h.now, old, "old"), "old"); sr.ErrorCode != codeFencedInstance {
		t.Fatalf("old member's sync: %+v", sr)
	}
	if code := h.g.CheckCommit(h.now, gen, s, inst, false); code != codeFencedInstance {
		t.Fatalf("old member's commit: %d", code)
	}
	if code := h.heartbeat(gen, s, nil); code != codeUnknownMember {
		t.Fatalf("old member id without instance id: %d", code)
	}
	if code := h.heartbeat(gen, s2, inst); code != 0 {
		t.Fatalf("new member's heartbeat: %d", code)
	}
}

// From v9 a returning leader gets the members and SkipAssignment (KIP-814):
// it leads again without assigning, and nobody rebalances.
func TestStaticLeaderRestartV9SkipsAssignment(t *testing.T) {
	h := newHarness(t, Config{})
	_, b, gen := staticPair(t, h)
	r := only[*kmsg.JoinGroupResponse](t, h.join(joinReq(9, "", str("pod-0"), rangeProto("t1")), "cs", "s2"), "s2")
	if r.ErrorCode != 0 || r.Generation != gen || r.LeaderID != r.MemberID || !r.SkipAssignment || len(r.Members) != 2 {
		t.Fatalf("restarted leader (v9): %+v", r)
	}
	if h.g.State() != Stable || h.g.Generation() != gen {
		t.Fatalf("rebalanced: %s generation %d", h.g.State(), h.g.Generation())
	}
	if code := h.heartbeat(gen, b, nil); code != 0 {
		t.Fatalf("other member told to rejoin: %d", code)
	}
}

// Changed metadata alone does not rebalance (Kafka compares the protocol it
// would select, not the bytes); the new metadata is kept for the next one.
func TestStaticMemberRestartWithNewMetadataKeepsGeneration(t *testing.T) {
	h := newHarness(t, Config{})
	_, _, gen := staticPair(t, h)
	r := only[*kmsg.JoinGroupResponse](t, h.join(joinReq(5, "", str("pod-0"), rangeProto("t1", "t3")), "cs", "s2"), "s2")
	if r.ErrorCode != 0 || r.Generation != gen || h.g.State() != Stable {
		t.Fatalf("restart with new metadata: %+v, state %s", r, h.g.State())
	}
	meta, _ := h.g.members[r.MemberID].metadata("range")
	if want, _ := (&member{protocols: []kmsg.JoinGroupRequestProtocol{rangeProto("t1", "t3")}}).metadata("range"); string(meta) != string(want) {
		t.Fatal("the restarted member's new metadata was not kept")
	}
}

// A restart that changes the protocol the group would select rebalances.
func TestStaticMemberRestartChangingProtocolRebalances(t *testing.T) {
	h := newHarness(t, Config{})
	both := func(topic string) []kmsg.JoinGroupRequestProtocol {
		rr := rangeProto(topic)
		rr.Name = "roundrobin"
		return []kmsg.JoinGroupRequestProtocol{rangeProto(topic), rr}
	}
	inst := str("pod-0")
	rs := only[*kmsg.JoinGroupResponse](t, h.join(joinReq(5, "", inst, both("t1")...), "cs", "s"), "s")
	s := rs.MemberID
	none(t, h.join(joinReq(3, "", nil, both("t1")...), "cb", "b"), "b")
	out := h.join(joinReq(5, s, inst, both("t1")...), "cs", "s")
	rb := only[*kmsg.JoinGroupResponse](t, out, "b")
	gen := rb.Generation
	h.sync(gen, rb.MemberID, "sync-b")
	h.sync(gen, s, "sync-s")
	if h.g.State() != Stable || *rb.Protocol != "range" {
		t.Fatalf("state %s protocol %s", h.g.State(), *rb.Protocol)
	}
	only := both("t1")[1:] // roundrobin alone
	none(t, h.join(joinReq(5, "", inst, only...), "cs", "s2"), "s2")
	if h.g.State() != PreparingRebalance {
		t.Fatalf("state %s, want a rebalance for the protocol change", h.g.State())
	}
}

func TestStaticMemberOutlivesRebalanceUntilSessionEnds(t *testing.T) {
	h := newHarness(t, Config{})
	inst := str("pod-0")
	s, b, gen := staticPair(t, h)
	none(t, h.join(joinReq(5, b, nil, rangeProto("t2", "t3")), "cb", "b"), "b")
	for range 5 {
		h.advance(5 * time.Second)
		if code := h.heartbeat(gen, s, inst); code != codeRebalanceInProgress {
			t.Fatalf("static member's heartbeat: %d", code)
		}
	}
	out := h.advance(5 * time.Second) // the rebalance timeout: s never rejoined
	r := only[*kmsg.JoinGroupResponse](t, out, "b")
	if r.Generation != gen+1 || r.LeaderID != b || len(r.Members) != 2 {
		t.Fatalf("b leads a group still holding the static member: %+v", r)
	}
	if code := h.heartbeat(gen, s, inst); code != codeIllegalGeneration {
		t.Fatalf("static member on the old generation: %d", code)
	}
	h.advance(5 * time.Second) // s last heard from 10s ago
	if h.g.State() != PreparingRebalance {
		t.Fatalf("state %s after the static member's session ended", h.g.State())
	}
	if code := h.heartbeat(gen+1, s, inst); code != codeUnknownMember {
		t.Fatalf("expired static member: %d", code)
	}
}

func TestLeaderKeptWhenItRejoins(t *testing.T) {
	h := newHarness(t, Config{})
	inst := str("pod-0")
	s, b, gen := staticPair(t, h)
	none(t, h.join(joinReq(5, b, nil, rangeProto("t2", "t3")), "cb", "b"), "b")
	for range 5 { // s stays alive but does not rejoin: b takes the lead
		h.advance(5 * time.Second)
		h.heartbeat(gen, s, inst)
	}
	out := h.advance(5 * time.Second)
	if r := only[*kmsg.JoinGroupResponse](t, out, "b"); r.LeaderID != b || r.Generation != gen+1 {
		t.Fatalf("b's join: %+v", r)
	}
	// s, the older member, is back; b stays leader because it rejoined.
	none(t, h.join(joinReq(5, s, inst, rangeProto("t1", "t4")), "cs", "s"), "s")
	out = h.join(joinReq(5, b, nil, rangeProto("t2", "t3")), "cb", "b")
	rs, rb := only[*kmsg.JoinGroupResponse](t, out, "s"), only[*kmsg.JoinGroupResponse](t, out, "b")
	if rs.Generation != gen+2 || rs.LeaderID != b || rb.LeaderID != b || len(rb.Members) != 2 || len(rs.Members) != 0 {
		t.Fatalf("after s rejoined: %+v / %+v", rs, rb)
	}
}
