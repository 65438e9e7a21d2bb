package group

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestSyncAndHeartbeatErrors(t *testing.T) {
	h := newHarness(t, Config{})
	if code := h.heartbeat(0, "nobody", nil); code != codeUnknownMember {
		t.Fatalf("heartbeat to a group that does not exist: %d", code)
	}
	ids, gen := h.form("a", "b")
	a, b := ids[0], ids[1]
	syncCode := func(req *kmsg.SyncGroupRequest) int16 {
		t.Helper()
		return only[*kmsg.SyncGroupResponse](t, h.g.Sync(h.now, req, "x"), "x").ErrorCode
	}
	req := func(gen int32, member string) *kmsg.SyncGroupRequest {
		r := kmsg.NewPtrSyncGroupRequest()
		r.Version, r.Group, r.Generation, r.MemberID = 5, "g", gen, member
		return r
	}
	if code := syncCode(req(gen, "nobody")); code != codeUnknownMember {
		t.Fatalf("sync, unknown member: %d", code)
	}
	if code := syncCode(req(gen+1, b)); code != codeIllegalGeneration {
		t.Fatalf("sync, wrong generation: %d", code)
	}
	wrongProto := req(gen, b)
	wrongProto.Protocol = str("roundrobin")
	if code := syncCode(wrongProto); code != codeInconsistentProtocol {
		t.Fatalf("sync, other protocol: %d", code)
	}
	wrongType := req(gen, b)
	wrongType.ProtocolType = str("connect")
	if code := syncCode(wrongType); code != codeInconsistentProtocol {
		t.Fatalf("sync, other protocol type: %d", code)
	}
	if code := h.heartbeat(gen, "nobody", nil); code != codeUnknownMember {
		t.Fatalf("heartbeat, unknown member: %d", code)
	}
	if code := h.heartbeat(gen-1, a, nil); code != codeIllegalGeneration {
		t.Fatalf("heartbeat, old generation: %d", code)
	}
	if code := h.heartbeat(gen, a, str("not-static")); code != codeUnknownMember {
		t.Fatalf("heartbeat naming an unknown instance id: %d", code)
	}

	none(t, h.join(joinReq(3, "", nil, rangeProto("t1")), "c", "c"), "c")
	if code := syncCode(req(gen, b)); code != codeRebalanceInProgress {
		t.Fatalf("sync while preparing a rebalance: %d", code)
	}
	h.join(joinReq(9, a, nil, rangeProto("t1")), "a", "a")
	out := h.join(joinReq(9, b, nil, rangeProto("t1")), "b", "b")
	gen = only[*kmsg.JoinGroupResponse](t, out, "b").Generation
	if code := h.heartbeat(gen, b, nil); code != 0 {
		t.Fatalf("heartbeat between join and sync (Kafka answers 0): %d", code)
	}
	none(t, h.sync(gen, b, "sb"), "sb")

	// A member arriving while b waits for its assignment cancels it.
	out = h.join(joinReq(3, "", nil, rangeProto("t1")), "d", "d")
	if r := only[*kmsg.SyncGroupResponse](t, out, "sb"); r.ErrorCode != codeRebalanceInProgress {
		t.Fatalf("parked sync when the rebalance restarted: %+v", r)
	}
}

func TestMemberThatNeverSyncsIsRemoved(t *testing.T) {
	h := newHarness(t, Config{})
	ids, _ := h.form("a")
	none(t, h.join(joinReq(3, "", nil, rangeProto("t1")), "c", "c"), "c")
	out := h.join(joinReq(9, ids[0], nil, rangeProto("t1")), "a", "a")
	gen := only[*kmsg.JoinGroupResponse](t, out, "a").Generation
	c := only[*kmsg.JoinGroupResponse](t, out, "c").MemberID
	if r := only[*kmsg.SyncGroupResponse](t, h.sync(gen, ids[0], "sa"), "sa"); r.ErrorCode != 0 {
		t.Fatalf("leader sync: %+v", r)
	}
	for range 5 { // c heartbeats but never fetches its assignment
		h.advance(5 * time.Second)
		if code := h.heartbeat(gen, c, nil); code != 0 {
			t.Fatalf("c's heartbeat: %d", code)
		}
		if code := h.heartbeat(gen, ids[0], nil); code != 0 {
			t.Fatalf("a's heartbeat: %d", code)
		}
	}
	h.advance(5 * time.Second) // the rebalance timeout since the join completed
	if h.g.State() != PreparingRebalance {
		t.Fatalf("state %s", h.g.State())
	}
	if code := h.heartbeat(gen, c, nil); code != codeUnknownMember {
		t.Fatalf("c after it was dropped: %d", code)
	}
}
