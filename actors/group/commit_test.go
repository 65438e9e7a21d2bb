package group

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestCheckCommit(t *testing.T) {
	h := newHarness(t, Config{})
	if code := h.g.CheckCommit(h.now, 3, "old-member", nil, false); code != codeIllegalGeneration {
		t.Fatalf("member commit to a group this node does not have: %d", code)
	}
	if h.g.State() != Dead {
		t.Fatalf("a refused commit created the group: %s", h.g.State())
	}
	if code := h.g.CheckCommit(h.now, -1, "", nil, false); code != 0 {
		t.Fatalf("standalone commit to a new group: %d", code)
	}
	if s := h.g.Summary(); s.State != "Empty" || s.ProtocolType != "" || s.Group != "g" {
		t.Fatalf("group after a standalone commit: %+v", s)
	}

	ids, gen := h.form("a", "b")
	a := ids[0]
	cases := []struct {
		name     string
		gen      int32
		member   string
		instance *string
		want     int16
	}{
		{"standalone while members own the offsets", -1, "", nil, codeUnknownMember},
		{"member of the generation", gen, a, nil, 0},
		{"old generation", gen - 1, a, nil, codeIllegalGeneration},
		{"unknown member", gen, "ghost", nil, codeUnknownMember},
		{"unknown instance id", gen, a, str("pod-9"), codeUnknownMember},
	}
	for _, c := range cases {
		if code := h.g.CheckCommit(h.now, c.gen, c.member, c.instance, false); code != c.want {
			t.Errorf("%s: %d, want %d", c.name, code, c.want)
		}
	}
	// A transactional commit naming no member (TxnOffsetCommit before v3,
	// or a producer outside the group) is Kafka's exception to that.
	if code := h.g.CheckCommit(h.now, -1, "", nil, true); code != 0 {
		t.Errorf("transactional commit with no member while members own the offsets: %d, want 0", code)
	}
	if code := h.g.CheckCommit(h.now, gen, "ghost", nil, true); code != codeUnknownMember {
		t.Errorf("transactional commit naming an unknown member: %d, want %d", code, codeUnknownMember)
	}

	none(t, h.join(joinReq(3, "", nil, rangeProto("t1")), "c", "c"), "c")
	if code := h.g.CheckCommit(h.now, gen, a, nil, false); code != 0 {
		t.Fatalf("commit while preparing a rebalance (Kafka accepts it): %d", code)
	}
	h.join(joinReq(9, a, nil, rangeProto("t1")), "a", "a")
	out := h.join(joinReq(9, ids[1], nil, rangeProto("t1")), "b", "b")
	gen = only[*kmsg.JoinGroupResponse](t, out, "b").Generation
	if code := h.g.CheckCommit(h.now, gen, a, nil, false); code != codeRebalanceInProgress {
		t.Fatalf("commit before the new assignment: %d", code)
	}

	for _, id := range ids {
		leaveV0(h, id)
	}
	c := only[*kmsg.JoinGroupResponse](t, out, "c").MemberID
	leaveV0(h, c)
	if h.g.State() != Empty {
		t.Fatalf("state %s", h.g.State())
	}
	if code := h.g.CheckCommit(h.now, -1, a, nil, false); code != 0 {
		t.Fatalf("generation -1 to an Empty group: %d", code)
	}
	if code := h.g.CheckCommit(h.now, gen, a, nil, false); code != codeUnknownMember {
		t.Fatalf("former member to an Empty group: %d", code)
	}
}

func TestCheckOffsetDelete(t *testing.T) {
	h := newHarness(t, Config{})
	topics := []string{"t1", "t2", "t3"}
	check := func(want ...int16) {
		t.Helper()
		res := h.g.CheckOffsetDelete(topics)
		for i, tp := range topics {
			if res[tp] != want[i] {
				t.Fatalf("%s: %d, want %d (all %v)", tp, res[tp], want[i], res)
			}
		}
	}
	check(0, 0, 0)
	a := only[*kmsg.JoinGroupResponse](t, h.join(joinReq(3, "", nil, rangeProto("t1")), "a", "a"), "a").MemberID
	none(t, h.join(joinReq(3, "", nil, rangeProto("t2")), "b", "b"), "b")
	h.join(joinReq(3, a, nil, rangeProto("t1")), "a", "a")
	check(codeSubscribedToTopic, codeSubscribedToTopic, 0)

	garbage := joinReq(3, "", nil, kmsg.JoinGroupRequestProtocol{Name: "range", Metadata: []byte{0, 1, 0xff}})
	h.join(garbage, "c", "c")
	check(codeSubscribedToTopic, codeSubscribedToTopic, codeSubscribedToTopic)

	other := newHarness(t, Config{})
	connect := joinReq(3, "", nil, kmsg.JoinGroupRequestProtocol{Name: "default", Metadata: []byte("x")})
	connect.ProtocolType = "connect"
	other.join(connect, "w", "w")
	if res := other.g.CheckOffsetDelete([]string{"t1"}); res["t1"] != codeNonEmptyGroup {
		t.Fatalf("group of another protocol with members: %v", res)
	}
}
