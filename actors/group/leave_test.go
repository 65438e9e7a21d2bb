package group

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func leaveV0(h *harness, member string) *kmsg.LeaveGroupResponse {
	h.t.Helper()
	r := kmsg.NewPtrLeaveGroupRequest()
	r.Version, r.Group, r.MemberID = 0, "g", member
	return only[*kmsg.LeaveGroupResponse](h.t, h.g.Leave(h.now, r, "leave"), "leave")
}

func TestLeaveV0(t *testing.T) {
	h := newHarness(t, Config{})
	ids, gen := h.form("a", "b")
	if r := leaveV0(h, "nobody"); r.ErrorCode != codeUnknownMember {
		t.Fatalf("unknown member leaving: %+v", r)
	}
	if r := leaveV0(h, ids[1]); r.ErrorCode != 0 || len(r.Members) != 0 {
		t.Fatalf("leave: %+v", r)
	}
	if h.g.State() != PreparingRebalance {
		t.Fatalf("state %s after a member left", h.g.State())
	}
	r := only[*kmsg.JoinGroupResponse](t, h.join(joinReq(9, ids[0], nil, rangeProto("t1")), "a", "a"), "a")
	if r.Generation != gen+1 || len(r.Members) != 1 {
		t.Fatalf("rejoin after the leave: %+v", r)
	}
	if r := leaveV0(h, ids[0]); r.ErrorCode != 0 {
		t.Fatalf("last member leaving: %+v", r)
	}
	if h.g.State() != Empty || h.g.Generation() != gen+2 {
		t.Fatalf("after the last member left: %s generation %d, want Empty %d", h.g.State(), h.g.Generation(), gen+2)
	}
}

func TestLeaveBatchV3(t *testing.T) {
	h := newHarness(t, Config{})
	s, b, gen := staticPair(t, h)
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Version, req.Group = 3, "g"
	req.Members = []kmsg.LeaveGroupRequestMember{
		{MemberID: "someone-else", InstanceID: str("pod-0")},
		{MemberID: b},
		{InstanceID: str("pod-0")},
		{MemberID: "ghost"},
	}
	out := h.g.Leave(h.now, req, "leave")
	r := only[*kmsg.LeaveGroupResponse](t, out, "leave")
	want := []int16{codeFencedInstance, 0, 0, codeUnknownMember}
	if r.ErrorCode != 0 || len(r.Members) != len(want) {
		t.Fatalf("batch leave: %+v", r)
	}
	for i, w := range want {
		if r.Members[i].ErrorCode != w || r.Members[i].MemberID != req.Members[i].MemberID {
			t.Fatalf("member %d: %+v, want error %d", i, r.Members[i], w)
		}
	}
	if *r.Members[2].InstanceID != "pod-0" {
		t.Fatal("instance id not echoed")
	}
	if h.g.State() != Empty || h.g.Generation() != gen+1 {
		t.Fatalf("after everyone left: %s generation %d", h.g.State(), h.g.Generation())
	}
	if code := h.heartbeat(gen, s, str("pod-0")); code != codeUnknownMember {
		t.Fatalf("static member after leaving by instance id: %d", code)
	}
}
