package group

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// harness drives a Group with a fake clock.
type harness struct {
	t   *testing.T
	g   *Group
	now time.Time
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	return &harness{t: t, g: NewGroup("g", cfg), now: time.Unix(1_700_000_000, 0)}
}

// advance moves the clock and runs Tick, as the actor's timer would.
func (h *harness) advance(d time.Duration) []Reply {
	h.now = h.now.Add(d)
	return h.g.Tick(h.now)
}

func (h *harness) join(req *kmsg.JoinGroupRequest, client string, to Waiter) []Reply {
	return h.g.Join(h.now, req, client, "/10.0.0.1", to)
}

func (h *harness) sync(gen int32, member string, to Waiter, assign ...kmsg.SyncGroupRequestGroupAssignment) []Reply {
	r := kmsg.NewPtrSyncGroupRequest()
	r.Version = 5
	r.Group = "g"
	r.Generation = gen
	r.MemberID = member
	r.GroupAssignment = assign
	return h.g.Sync(h.now, r, to)
}

func (h *harness) heartbeat(gen int32, member string, instance *string) int16 {
	h.t.Helper()
	r := kmsg.NewPtrHeartbeatRequest()
	r.Version = 4
	r.Group = "g"
	r.Generation = gen
	r.MemberID = member
	r.InstanceID = instance
	return only[*kmsg.HeartbeatResponse](h.t, h.g.Heartbeat(h.now, r, "hb"), "hb").ErrorCode
}

// form builds a Stable group of dynamic members, one per client id, each
// going through the MEMBER_ID_REQUIRED round; the leader assigns "to-<id>".
// It returns the member ids in join order and the generation.
func (h *harness) form(clients ...string) ([]string, int32) {
	h.t.Helper()
	ids := make([]string, len(clients))
	for i, c := range clients {
		r := only[*kmsg.JoinGroupResponse](h.t, h.join(joinReq(9, "", nil, rangeProto("t1")), c, c), c)
		if r.ErrorCode != codeMemberIDRequired {
			h.t.Fatalf("first join of %s: error %d, want MEMBER_ID_REQUIRED", c, r.ErrorCode)
		}
		ids[i] = r.MemberID
	}
	var out []Reply
	for i, c := range clients {
		out = h.join(joinReq(9, ids[i], nil, rangeProto("t1")), c, c)
	}
	var gen int32
	var leader string
	for i, c := range clients {
		r := only[*kmsg.JoinGroupResponse](h.t, out, c)
		if r.ErrorCode != 0 || r.MemberID != ids[i] {
			h.t.Fatalf("join of %s: error %d member %q", c, r.ErrorCode, r.MemberID)
		}
		gen, leader = r.Generation, r.LeaderID
	}
	var assign []kmsg.SyncGroupRequestGroupAssignment
	for _, id := range ids {
		assign = append(assign, kmsg.SyncGroupRequestGroupAssignment{MemberID: id, MemberAssignment: []byte("to-" + id)})
	}
	for _, id := range ids {
		if id == leader {
			continue
		}
		if rs := h.sync(gen, id, "sync-"+id); len(rs) != 0 {
			h.t.Fatalf("follower sync answered before the leader's: %v", rs)
		}
	}
	out = h.sync(gen, leader, "sync-"+leader, assign...)
	for _, id := range ids {
		if r := only[*kmsg.SyncGroupResponse](h.t, out, "sync-"+id); r.ErrorCode != 0 || string(r.MemberAssignment) != "to-"+id {
			h.t.Fatalf("sync of %s: error %d assignment %q", id, r.ErrorCode, r.MemberAssignment)
		}
	}
	if h.g.State() != Stable {
		h.t.Fatalf("state %s after forming, want Stable", h.g.State())
	}
	return ids, gen
}

func joinReq(v int16, member string, instance *string, protos ...kmsg.JoinGroupRequestProtocol) *kmsg.JoinGroupRequest {
	r := kmsg.NewPtrJoinGroupRequest()
	r.Version = v
	r.Group = "g"
	r.SessionTimeoutMillis = 10_000
	r.RebalanceTimeoutMillis = 30_000
	r.MemberID = member
	r.InstanceID = instance
	r.ProtocolType = "consumer"
	r.Protocols = protos
	return r
}

func consumerMeta(topics ...string) []byte {
	m := kmsg.ConsumerMemberMetadata{Version: 3, Topics: topics, Generation: -1}
	return m.AppendTo(nil)
}

func rangeProto(topics ...string) kmsg.JoinGroupRequestProtocol {
	return kmsg.JoinGroupRequestProtocol{Name: "range", Metadata: consumerMeta(topics...)}
}

func protocol(name string, topics ...string) kmsg.JoinGroupRequestProtocol {
	return kmsg.JoinGroupRequestProtocol{Name: name, Metadata: consumerMeta(topics...)}
}

// only returns the one reply addressed to to, failing unless there is
// exactly one and it has type T.
func only[T kmsg.Response](t *testing.T, rs []Reply, to Waiter) T {
	t.Helper()
	var found []Reply
	for _, r := range rs {
		if r.To == to {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d replies to %v, want 1 (all: %d)", len(found), to, len(rs))
	}
	v, ok := found[0].Resp.(T)
	if !ok {
		t.Fatalf("reply to %v is %T", to, found[0].Resp)
	}
	return v
}

func none(t *testing.T, rs []Reply, to Waiter) {
	t.Helper()
	for _, r := range rs {
		if r.To == to {
			t.Fatalf("unexpected reply to %v: %+v", to, r.Resp)
		}
	}
}

func str(s string) *string { return &s }

const (
	codeUnknownMember        int16 = 25
	codeIllegalGeneration    int16 = 22
	codeInconsistentProtocol int16 = 23
	codeRebalanceInProgress  int16 = 27
	codeInvalidSession       int16 = 26
	codeNotCoordinator       int16 = 16
	codeNonEmptyGroup        int16 = 68
	codeFencedInstance       int16 = 82
	codeMemberIDRequired     int16 = 79
	codeMaxSize              int16 = 81
	codeSubscribedToTopic    int16 = 86
)
