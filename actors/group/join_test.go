package group

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestTwoMembersJoinOneGeneration(t *testing.T) {
	h := newHarness(t, Config{})
	ra := only[*kmsg.JoinGroupResponse](t, h.join(joinReq(7, "", nil, rangeProto("t1")), "client-a", "a"), "a")
	rb := only[*kmsg.JoinGroupResponse](t, h.join(joinReq(7, "", nil, rangeProto("t2")), "client-b", "b"), "b")
	if ra.ErrorCode != codeMemberIDRequired || !strings.HasPrefix(ra.MemberID, "client-a-") || ra.Generation != -1 {
		t.Fatalf("first join: %+v", ra)
	}
	a, b := ra.MemberID, rb.MemberID
	if a == b {
		t.Fatal("two clients got the same member id")
	}

	out := h.join(joinReq(7, a, nil, rangeProto("t1")), "client-a", "a")
	none(t, out, "a") // b's member id is still expected back
	if h.g.State() != PreparingRebalance {
		t.Fatalf("state %s, want PreparingRebalance", h.g.State())
	}
	out = h.join(joinReq(7, b, nil, rangeProto("t2")), "client-b", "b")
	ja := only[*kmsg.JoinGroupResponse](t, out, "a")
	jb := only[*kmsg.JoinGroupResponse](t, out, "b")
	for _, r := range []*kmsg.JoinGroupResponse{ja, jb} {
		if r.ErrorCode != 0 || r.Generation != 1 || r.LeaderID != a || *r.Protocol != "range" || *r.ProtocolType != "consumer" {
			t.Fatalf("join response %+v", r)
		}
	}
	if ja.MemberID != a || jb.MemberID != b {
		t.Fatalf("member ids %q %q, want %q %q", ja.MemberID, jb.MemberID, a, b)
	}
	if len(jb.Members) != 0 {
		t.Fatalf("follower got %d members", len(jb.Members))
	}
	if len(ja.Members) != 2 || ja.Members[0].MemberID != a || ja.Members[1].MemberID != b {
		t.Fatalf("leader's members: %+v", ja.Members)
	}
	var meta kmsg.ConsumerMemberMetadata
	if err := meta.ReadFrom(ja.Members[1].ProtocolMetadata); err != nil || meta.Topics[0] != "t2" {
		t.Fatalf("b's metadata as the leader sees it: %v %v", meta.Topics, err)
	}
	if h.g.State() != CompletingRebalance {
		t.Fatalf("state %s, want CompletingRebalance", h.g.State())
	}

	// The follower syncs first and waits for the leader's assignment.
	none(t, h.sync(1, b, "sb"), "sb")
	out = h.sync(1, a, "sa", kmsg.SyncGroupRequestGroupAssignment{MemberID: b, MemberAssignment: []byte("b-parts")})
	if r := only[*kmsg.SyncGroupResponse](t, out, "sb"); r.ErrorCode != 0 || string(r.MemberAssignment) != "b-parts" || *r.Protocol != "range" {
		t.Fatalf("follower sync: %+v", r)
	}
	if r := only[*kmsg.SyncGroupResponse](t, out, "sa"); r.ErrorCode != 0 || len(r.MemberAssignment) != 0 {
		t.Fatalf("leader left itself out, so gets an empty assignment: %+v", r)
	}
	if h.g.State() != Stable {
		t.Fatalf("state %s, want Stable", h.g.State())
	}
	if r := only[*kmsg.SyncGroupResponse](t, h.sync(1, b, "sb2"), "sb2"); string(r.MemberAssignment) != "b-parts" {
		t.Fatalf("sync in Stable: %+v", r)
	}
}

func TestThirdMemberTriggersRebalance(t *testing.T) {
	h := newHarness(t, Config{})
	ids, gen := h.form("a", "b")
	out := h.join(joinReq(3, "", nil, rangeProto("t1")), "c", "c") // v3: no MEMBER_ID_REQUIRED round
	none(t, out, "c")
	if h.g.State() != PreparingRebalance {
		t.Fatalf("state %s", h.g.State())
	}
	if code := h.heartbeat(gen, ids[1], nil); code != codeRebalanceInProgress {
		t.Fatalf("heartbeat during rebalance: %d", code)
	}
	none(t, h.join(joinReq(9, ids[1], nil, rangeProto("t1")), "b", "b"), "b")
	out = h.join(joinReq(9, ids[0], nil, rangeProto("t1")), "a", "a")
	ra, rb, rc := only[*kmsg.JoinGroupResponse](t, out, "a"), only[*kmsg.JoinGroupResponse](t, out, "b"), only[*kmsg.JoinGroupResponse](t, out, "c")
	if ra.Generation != gen+1 || rb.Generation != gen+1 || rc.Generation != gen+1 {
		t.Fatalf("generations %d %d %d, want %d", ra.Generation, rb.Generation, rc.Generation, gen+1)
	}
	if ra.LeaderID != ids[0] || rc.LeaderID != ids[0] {
		t.Fatalf("leader %q, want the old leader %q", ra.LeaderID, ids[0])
	}
	if len(ra.Members) != 3 || len(rc.Members) != 0 || !strings.HasPrefix(rc.MemberID, "c-") {
		t.Fatalf("members: leader %d, c %d, c's id %q", len(ra.Members), len(rc.Members), rc.MemberID)
	}
	// The leader assigns only c: b's assignment of the last generation
	// must not survive.
	h.sync(gen+1, ids[0], "sa", kmsg.SyncGroupRequestGroupAssignment{MemberID: rc.MemberID, MemberAssignment: []byte("c-parts")})
	if r := only[*kmsg.SyncGroupResponse](t, h.sync(gen+1, ids[1], "sb"), "sb"); r.ErrorCode != 0 || len(r.MemberAssignment) != 0 {
		t.Fatalf("b left out by the leader: %+v", r)
	}
}

func TestSessionExpiryRemovesMember(t *testing.T) {
	h := newHarness(t, Config{})
	ids, gen := h.form("a", "b")
	start := h.now
	h.advance(6 * time.Second)
	if code := h.heartbeat(gen, ids[0], nil); code != 0 {
		t.Fatalf("heartbeat: %d", code)
	}
	at, ok := h.g.NextDeadline()
	if !ok || !at.Equal(start.Add(10*time.Second)) {
		t.Fatalf("next deadline %v %v, want b's session end", at, ok)
	}
	h.advance(4*time.Second - time.Millisecond)
	if h.g.State() != Stable {
		t.Fatal("b removed before its session ended")
	}
	h.advance(time.Millisecond)
	if h.g.State() != PreparingRebalance {
		t.Fatalf("state %s after b's session ended", h.g.State())
	}
	if code := h.heartbeat(gen, ids[1], nil); code != codeUnknownMember {
		t.Fatalf("expired member's heartbeat: %d", code)
	}
	if code := h.heartbeat(gen, ids[0], nil); code != codeRebalanceInProgress {
		t.Fatalf("survivor's heartbeat: %d", code)
	}
	r := only[*kmsg.JoinGroupResponse](t, h.join(joinReq(9, ids[0], nil, rangeProto("t1")), "a", "a"), "a")
	if r.Generation != gen+1 || len(r.Members) != 1 || r.LeaderID != ids[0] {
		t.Fatalf("rejoin: %+v", r)
	}
}

func TestRebalanceTimeoutRemovesAbsentMember(t *testing.T) {
	h := newHarness(t, Config{})
	ids, gen := h.form("a", "b")
	none(t, h.join(joinReq(9, ids[0], nil, rangeProto("t1")), "a", "a"), "a") // the leader asks for a rebalance
	var out []Reply
	for range 5 { // b stays alive but never rejoins
		out = h.advance(5 * time.Second)
		none(t, out, "a")
		if code := h.heartbeat(gen, ids[1], nil); code != codeRebalanceInProgress {
			t.Fatalf("b's heartbeat: %d", code)
		}
	}
	at, _ := h.g.NextDeadline()
	out = h.advance(at.Sub(h.now))
	r := only[*kmsg.JoinGroupResponse](t, out, "a")
	if r.Generation != gen+1 || len(r.Members) != 1 || r.Members[0].MemberID != ids[0] {
		t.Fatalf("join after the rebalance timeout: %+v", r)
	}
	if code := h.heartbeat(gen+1, ids[1], nil); code != codeUnknownMember {
		t.Fatalf("b after it was dropped: %d", code)
	}
}

func TestMemberIDRequired(t *testing.T) {
	h := newHarness(t, Config{})
	r := only[*kmsg.JoinGroupResponse](t, h.join(joinReq(4, "", nil, rangeProto("t1")), "cl", "a"), "a")
	if r.ErrorCode != codeMemberIDRequired || !strings.HasPrefix(r.MemberID, "cl-") {
		t.Fatalf("first join: %+v", r)
	}
	if h.g.State() != Empty {
		t.Fatalf("state %s, want Empty", h.g.State())
	}
	r2 := only[*kmsg.JoinGroupResponse](t, h.join(joinReq(4, r.MemberID, nil, rangeProto("t1")), "cl", "a"), "a")
	if r2.ErrorCode != 0 || r2.MemberID != r.MemberID || r2.Generation != 1 || r2.LeaderID != r.MemberID {
		t.Fatalf("second join: %+v", r2)
	}

	// An id handed out but not used within the session timeout lapses.
	r3 := only[*kmsg.JoinGroupResponse](t, h.join(joinReq(4, "", nil, rangeProto("t1")), "late", "l"), "l")
	if at, ok := h.g.NextDeadline(); !ok || !at.Equal(h.now.Add(10*time.Second)) {
		t.Fatalf("next deadline %v %v", at, ok)
	}
	h.advance(10 * time.Second)
	r4 := only[*kmsg.JoinGroupResponse](t, h.join(joinReq(4, r3.MemberID, nil, rangeProto("t1")), "late", "l"), "l")
	if r4.ErrorCode != codeUnknownMember || r4.MemberID != r3.MemberID || r4.Generation != -1 {
		t.Fatalf("join with a lapsed id: %+v", r4)
	}
}

func TestJoinValidation(t *testing.T) {
	h := newHarness(t, Config{MaxSize: 2})
	bad := joinReq(5, "", nil, rangeProto("t1"))
	bad.SessionTimeoutMillis = 1000
	if r := only[*kmsg.JoinGroupResponse](t, h.join(bad, "x", "x"), "x"); r.ErrorCode != codeInvalidSession {
		t.Fatalf("short session: %+v", r)
	}
	noGroup := joinReq(5, "", nil, rangeProto("t1"))
	noGroup.Group = ""
	if r := only[*kmsg.JoinGroupResponse](t, h.join(noGroup, "x", "x"), "x"); r.ErrorCode != 24 {
		t.Fatalf("empty group id: %+v", r)
	}
	if r := only[*kmsg.JoinGroupResponse](t, h.join(joinReq(5, "someone", nil, rangeProto("t1")), "x", "x"), "x"); r.ErrorCode != codeUnknownMember || r.MemberID != "someone" {
		t.Fatalf("unknown member id: %+v", r)
	}
	if h.g.State() != Dead {
		t.Fatalf("refused joins created the group: %s", h.g.State())
	}
	h.form("a", "b")
	if r := only[*kmsg.JoinGroupResponse](t, h.join(joinReq(5, "", nil, rangeProto("t1")), "c", "c"), "c"); r.ErrorCode != codeMaxSize {
		t.Fatalf("third member of a group of at most 2: %+v", r)
	}
}

func TestInconsistentProtocols(t *testing.T) {
	h := newHarness(t, Config{})
	noType := joinReq(3, "", nil, rangeProto("t1"))
	noType.ProtocolType = ""
	if r := only[*kmsg.JoinGroupResponse](t, h.join(noType, "x", "x"), "x"); r.ErrorCode != codeInconsistentProtocol {
		t.Fatalf("no protocol type: %+v", r)
	}
	a := only[*kmsg.JoinGroupResponse](t, h.join(joinReq(3, "", nil, protocol("roundrobin"), protocol("range")), "a", "a"), "a")
	if a.ErrorCode != 0 || *a.Protocol != "roundrobin" {
		t.Fatalf("a alone: %+v", a)
	}
	connect := joinReq(3, "", nil, protocol("range"))
	connect.ProtocolType = "connect"
	if r := only[*kmsg.JoinGroupResponse](t, h.join(connect, "b", "b"), "b"); r.ErrorCode != codeInconsistentProtocol {
		t.Fatalf("other protocol type: %+v", r)
	}
	if r := only[*kmsg.JoinGroupResponse](t, h.join(joinReq(3, "", nil, protocol("sticky")), "b", "b"), "b"); r.ErrorCode != codeInconsistentProtocol {
		t.Fatalf("no common protocol: %+v", r)
	}
	if h.g.State() != CompletingRebalance {
		t.Fatalf("refused joins disturbed the group: %s", h.g.State())
	}
	// b and c prefer range, a prefers roundrobin: range wins two votes to one.
	none(t, h.join(joinReq(3, "", nil, protocol("range"), protocol("roundrobin")), "b", "b"), "b")
	none(t, h.join(joinReq(3, "", nil, protocol("sticky"), protocol("range"), protocol("roundrobin")), "c", "c"), "c")
	out := h.join(joinReq(3, a.MemberID, nil, protocol("roundrobin"), protocol("range")), "a", "a")
	for _, w := range []string{"a", "b", "c"} {
		if r := only[*kmsg.JoinGroupResponse](t, out, w); r.ErrorCode != 0 || *r.Protocol != "range" || r.Generation != 2 {
			t.Fatalf("%s: %+v", w, r)
		}
	}
}
