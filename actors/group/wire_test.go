package group

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kmsg"
	"google.golang.org/protobuf/proto"

	"github.com/meshka/meshka/cluster"
	"github.com/meshka/meshka/internal/race"
)

const codeCoordinatorNotAvailable int16 = 15

// Every message, passed as a pointer (the asker is on the actor's node)
// or through its protobuf encoding (it is not), is answered as the group
// decides.
func TestEveryMessageAnswered(t *testing.T) {
	for _, serialise := range []bool{false, true} {
		t.Run(fmt.Sprintf("serialised=%v", serialise), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			a := startActor(t, ctx, Config{Logger: quiet()}, serialise)
			exerciseEveryMessage(a, "g")
			exerciseParkedJoin(a)
		})
	}
}

// The same, from a node that does not own the group: every message and
// answer crosses nodes through the owner's router and actor remoting, and
// a parked JoinGroup is answered later to the asker on the other node.
func TestRemotingGroupOnAnotherNode(t *testing.T) {
	if race.Enabled {
		t.Skip("remoting between nodes in one process: run without -race (make test does)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := Config{Logger: quiet()}
	na := startMesh(t, cfg, 0, true)
	nb := startMesh(t, cfg, 1, true, na.Members().Self().Gossip)
	for _, m := range []*cluster.Mesh{na, nb} {
		for len(m.Members().View().Members) != 2 {
			if ctx.Err() != nil {
				t.Fatalf("node %d sees %d members, want 2", m.Members().Self().NodeID, len(m.Members().View().Members))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	var groupID string
	for i := 0; groupID == ""; i++ {
		id := fmt.Sprintf("g-%d", i)
		if o, _ := na.Owner(Kind, Identity("up", id)); o.NodeID == 1 {
			groupID = id
		}
	}
	a := &actorTester{t: t, ctx: ctx, mesh: na, identity: Identity("up", groupID)}
	exerciseEveryMessage(a, groupID)
	exerciseParkedJoin(a)
	if na.Active(Kind, a.identity) || !nb.Active(Kind, a.identity) {
		t.Errorf("the group's actor is active on node 0: %v, node 1: %v; want only on node 1, its owner", na.Active(Kind, a.identity), nb.Active(Kind, a.identity))
	}
}

// exerciseEveryMessage takes a new group through each of the nine
// messages: one member joins, syncs and heartbeats; commits, offset
// deletes, descriptions, summaries and deletes are checked while it is in
// the group; it leaves and the group is deleted.
func exerciseEveryMessage(a *actorTester, groupID string) {
	t := a.t
	t.Helper()
	join := func(member string) *kmsg.JoinGroupResponse {
		t.Helper()
		req := joinReq(9, member, nil, rangeProto("t1"))
		return kafkaAnswer[*JoinResponse, *kmsg.JoinGroupResponse](a, a.askKafka(req, NewJoin(req, "client-a", "/10.0.0.9")))
	}
	first := join("")
	if first.ErrorCode != codeMemberIDRequired || first.MemberID == "" {
		t.Fatalf("first join: error %d member %q, want MEMBER_ID_REQUIRED and an id", first.ErrorCode, first.MemberID)
	}
	id := first.MemberID
	if r := join(id); r.ErrorCode != 0 || r.Generation != 1 || r.LeaderID != id || len(r.Members) != 1 || r.Protocol == nil || *r.Protocol != "range" {
		t.Fatalf("join with the id: %+v", r)
	}

	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Version, sync.Group, sync.Generation, sync.MemberID = 5, "g", 1, id
	sync.ProtocolType, sync.Protocol = str("consumer"), str("range")
	sync.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: id, MemberAssignment: []byte("to-a")}}
	if r := kafkaAnswer[*SyncResponse, *kmsg.SyncGroupResponse](a, a.askKafka(sync, NewSync(sync))); r.ErrorCode != 0 || string(r.MemberAssignment) != "to-a" {
		t.Fatalf("leader's sync: %+v", r)
	}

	for _, c := range []struct {
		gen  int32
		want int16
	}{{1, 0}, {2, codeIllegalGeneration}} {
		hb := kmsg.NewPtrHeartbeatRequest()
		hb.Version, hb.Group, hb.Generation, hb.MemberID = 4, "g", c.gen, id
		if r := kafkaAnswer[*HeartbeatResponse, *kmsg.HeartbeatResponse](a, a.askKafka(hb, NewHeartbeat(hb))); r.ErrorCode != c.want {
			t.Fatalf("heartbeat of generation %d: error %d, want %d", c.gen, r.ErrorCode, c.want)
		}
	}

	for _, c := range []struct {
		name string
		msg  *CheckCommitRequest
		want int16
	}{
		{"the member's", &CheckCommitRequest{Generation: 1, MemberId: id}, 0},
		{"an old generation's", &CheckCommitRequest{Generation: 7, MemberId: id}, codeIllegalGeneration},
		{"an unknown instance's", &CheckCommitRequest{Generation: 1, MemberId: id, InstanceId: str("nobody")}, codeUnknownMember},
		{"a standalone", &CheckCommitRequest{Generation: -1}, codeUnknownMember},
		{"a standalone transactional", &CheckCommitRequest{Generation: -1, Transactional: true}, 0},
	} {
		if r := answer[*CheckCommitResponse](a, a.ask(c.msg)); int16(r.ErrorCode) != c.want {
			t.Fatalf("%s commit: error %d, want %d", c.name, r.ErrorCode, c.want)
		}
	}

	od := answer[*CheckOffsetDeleteResponse](a, a.ask(&CheckOffsetDeleteRequest{Topics: []string{"t1", "t2"}}))
	if want := map[string]int32{"t1": int32(codeSubscribedToTopic), "t2": 0}; !maps.Equal(od.ErrorCodes, want) {
		t.Fatalf("offset delete: %v, want %v", od.ErrorCodes, want)
	}

	for _, v := range []int16{0, 5} {
		d := a.describe(v)
		if d.ErrorCode != 0 || d.Group != groupID || d.State != "Stable" || d.ProtocolType != "consumer" || d.Protocol != "range" || len(d.Members) != 1 {
			t.Fatalf("describe v%d: %+v", v, d)
		}
		m := d.Members[0]
		if m.MemberID != id || m.ClientID != "client-a" || m.ClientHost != "/10.0.0.9" ||
			string(m.MemberAssignment) != "to-a" || !bytes.Equal(m.ProtocolMetadata, consumerMeta("t1")) {
			t.Fatalf("describe v%d member: %+v", v, m)
		}
	}

	summary := func() *SummaryResponse { t.Helper(); return answer[*SummaryResponse](a, a.ask(&SummaryRequest{})) }
	remove := func() int16 { t.Helper(); return int16(answer[*DeleteResponse](a, a.ask(&DeleteRequest{})).ErrorCode) }
	if s := summary(); s.Group != groupID || s.State != "Stable" || s.ProtocolType != "consumer" {
		t.Fatalf("summary with a member: %v", s)
	}
	if code := remove(); code != codeNonEmptyGroup {
		t.Fatalf("delete with a member: error %d, want NON_EMPTY_GROUP", code)
	}

	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Version, leave.Group = 5, "g"
	leave.Members = []kmsg.LeaveGroupRequestMember{{MemberID: id}}
	if r := kafkaAnswer[*LeaveResponse, *kmsg.LeaveGroupResponse](a, a.askKafka(leave, NewLeave(leave))); r.ErrorCode != 0 || len(r.Members) != 1 || r.Members[0].ErrorCode != 0 {
		t.Fatalf("leave: %+v", r)
	}
	if code := remove(); code != 0 {
		t.Fatalf("delete once empty: error %d", code)
	}
	if s := summary(); s.State != "Dead" || s.ProtocolType != "" {
		t.Fatalf("summary once deleted: %v", s)
	}
}

// exerciseParkedJoin has a member's JoinGroup wait in the actor until the
// other member the group handed an id to joins too; both are then
// answered.
func exerciseParkedJoin(a *actorTester) {
	t := a.t
	t.Helper()
	join := func(client, member string) *pending {
		req := joinReq(9, member, nil, rangeProto("t1"))
		return a.askKafka(req, NewJoin(req, client, "/10.0.0.9"))
	}
	wait := func(p *pending) *kmsg.JoinGroupResponse {
		t.Helper()
		return kafkaAnswer[*JoinResponse, *kmsg.JoinGroupResponse](a, p)
	}
	ids := map[string]string{}
	for _, c := range []string{"x", "y"} {
		ids[c] = wait(join(c, "")).MemberID
	}
	parked := join("x", ids["x"])
	if s := a.describe(5).State; s != "PreparingRebalance" {
		t.Fatalf("state %s after x's join, want PreparingRebalance (x waits for y)", s)
	}
	y := wait(join("y", ids["y"]))
	x := wait(parked)
	if x.ErrorCode != 0 || y.ErrorCode != 0 || x.Generation != y.Generation || x.MemberID != ids["x"] || y.MemberID != ids["y"] || len(x.Members)+len(y.Members) != 2 {
		t.Fatalf("once y joined: x %+v, y %+v", x, y)
	}
}

// Bytes that do not decode as the request they claim to be, or a version
// kmsg does not know, are answered COORDINATOR_NOT_AVAILABLE (see
// undecodableCode), and the actor carries on.
func TestUndecodableRequests(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a := startActor(t, ctx, Config{Logger: quiet()}, true)
	join := joinReq(9, "m", nil, rangeProto("t1")).AppendTo(nil)
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Version, leave.Group = 3, "g"
	leave.Members = []kmsg.LeaveGroupRequestMember{{MemberID: "m"}}
	for _, c := range []struct {
		name string
		msg  proto.Message
		at   int16 // the version the answer is at
	}{
		{"a truncated JoinGroup", &JoinRequest{Version: 9, Request: join[:len(join)/2]}, 9},
		{"a JoinGroup of version -1", &JoinRequest{Version: -1, Request: join}, 0},
		{"a JoinGroup of version 99", &JoinRequest{Version: 99, Request: join}, kmsg.NewPtrJoinGroupRequest().MaxVersion()},
		{"a SyncGroup of one byte", &SyncRequest{Version: 5, Request: []byte{0xff}}, 5},
		{"an empty Heartbeat", &HeartbeatRequest{Version: 4}, 4},
		{"a truncated LeaveGroup", &LeaveRequest{Version: 3, Request: leave.AppendTo(nil)[:6]}, 3},
		{"a DescribeGroups of version 1<<20", &DescribeRequest{Version: 1 << 20}, kmsg.NewPtrDescribeGroupsRequest().MaxVersion()},
	} {
		kreq, _ := kafkaRequest(c.msg)
		kreq.SetVersion(c.at)
		var code int16
		switch c.msg.(type) {
		case *JoinRequest:
			r := kafkaAnswer[*JoinResponse, *kmsg.JoinGroupResponse](a, a.askKafka(kreq, c.msg))
			if r.Generation != -1 || r.MemberID != "" {
				t.Errorf("%s: %+v, want generation -1 and no member id", c.name, r)
			}
			code = r.ErrorCode
		case *SyncRequest:
			code = kafkaAnswer[*SyncResponse, *kmsg.SyncGroupResponse](a, a.askKafka(kreq, c.msg)).ErrorCode
		case *HeartbeatRequest:
			code = kafkaAnswer[*HeartbeatResponse, *kmsg.HeartbeatResponse](a, a.askKafka(kreq, c.msg)).ErrorCode
		case *LeaveRequest:
			code = kafkaAnswer[*LeaveResponse, *kmsg.LeaveGroupResponse](a, a.askKafka(kreq, c.msg)).ErrorCode
		case *DescribeRequest:
			r := kafkaAnswer[*DescribeResponse, *kmsg.DescribeGroupsResponse](a, a.askKafka(kreq, c.msg))
			if len(r.Groups) != 1 {
				t.Fatalf("%s: %d groups, want 1", c.name, len(r.Groups))
			}
			code = r.Groups[0].ErrorCode
		}
		if code != codeCoordinatorNotAvailable {
			t.Errorf("%s: error %d, want COORDINATOR_NOT_AVAILABLE", c.name, code)
		}
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Version, hb.Group, hb.Generation, hb.MemberID = 4, "g", 1, "nobody"
	if r := kafkaAnswer[*HeartbeatResponse, *kmsg.HeartbeatResponse](a, a.askKafka(hb, NewHeartbeat(hb))); r.ErrorCode != codeUnknownMember {
		t.Fatalf("a good heartbeat after the bad requests: error %d, want UNKNOWN_MEMBER_ID", r.ErrorCode)
	}
}

// An actor that has not been told its group answers every request
// COORDINATOR_NOT_AVAILABLE (a summary: Dead) rather than guessing.
func TestRefusedBeforeActivation(t *testing.T) {
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet() }))
	defer system.Shutdown()
	pid := system.Root.Spawn(Props(Config{Logger: quiet()}))
	ask := func(msg proto.Message) any {
		t.Helper()
		v, err := system.Root.RequestFuture(pid, msg, 30*time.Second).Result()
		if err != nil {
			t.Fatalf("%T: %v", msg, err)
		}
		return v
	}
	kafka := func(req kmsg.Request, msg proto.Message) kmsg.Response {
		t.Helper()
		resp := req.ResponseKind()
		a, ok := ask(msg).(KafkaResponse)
		if !ok {
			t.Fatalf("%T answered with no Kafka response", msg)
		}
		if err := DecodeResponse(resp, a); err != nil {
			t.Fatal(err)
		}
		return resp
	}
	join := joinReq(5, "m", nil, rangeProto("t1"))
	if r := kafka(join, NewJoin(join, "c", "/h")).(*kmsg.JoinGroupResponse); r.ErrorCode != codeCoordinatorNotAvailable || r.MemberID != "m" || r.Generation != -1 {
		t.Errorf("join: %+v", r)
	}
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Version = 5
	if r := kafka(sync, NewSync(sync)).(*kmsg.SyncGroupResponse); r.ErrorCode != codeCoordinatorNotAvailable {
		t.Errorf("sync: %+v", r)
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Version = 4
	if r := kafka(hb, NewHeartbeat(hb)).(*kmsg.HeartbeatResponse); r.ErrorCode != codeCoordinatorNotAvailable {
		t.Errorf("heartbeat: %+v", r)
	}
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Version = 5
	if r := kafka(leave, NewLeave(leave)).(*kmsg.LeaveGroupResponse); r.ErrorCode != codeCoordinatorNotAvailable {
		t.Errorf("leave: %+v", r)
	}
	describe := kmsg.NewPtrDescribeGroupsRequest()
	describe.Version = 5
	if r := kafka(describe, &DescribeRequest{Version: 5}).(*kmsg.DescribeGroupsResponse); len(r.Groups) != 1 || r.Groups[0].ErrorCode != codeCoordinatorNotAvailable {
		t.Errorf("describe: %+v", r)
	}
	if r := ask(&CheckCommitRequest{Generation: 1, MemberId: "m"}).(*CheckCommitResponse); int16(r.ErrorCode) != codeCoordinatorNotAvailable {
		t.Errorf("check commit: %v", r)
	}
	r := ask(&CheckOffsetDeleteRequest{Topics: []string{"t1", "t2"}}).(*CheckOffsetDeleteResponse)
	if want := map[string]int32{"t1": int32(codeCoordinatorNotAvailable), "t2": int32(codeCoordinatorNotAvailable)}; !maps.Equal(r.ErrorCodes, want) {
		t.Errorf("check offset delete: %v, want %v", r.ErrorCodes, want)
	}
	if r := ask(&DeleteRequest{}).(*DeleteResponse); int16(r.ErrorCode) != codeCoordinatorNotAvailable {
		t.Errorf("delete: %v", r)
	}
	if r := ask(&SummaryRequest{}).(*SummaryResponse); r.State != "Dead" {
		t.Errorf("summary: %v", r)
	}
}

// FuzzGroupRequests feeds arbitrary bytes, at arbitrary versions, as the
// Kafka request of each message that carries one. What does not decode
// must get an error answer that decodes at its version; what decodes goes
// to a group with a member, whose answers must encode; and the edge's
// decoding of an answer's bytes must not panic either.
func FuzzGroupRequests(f *testing.F) {
	seeds := []kmsg.Request{joinReq(0, "", nil, rangeProto("t1")), joinReq(9, "m", str("i"), rangeProto("t1"))}
	for _, v := range []int16{0, 4, 5} {
		r := kmsg.NewPtrSyncGroupRequest()
		r.Version, r.Group, r.MemberID = v, "g", "m"
		r.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: "m", MemberAssignment: []byte("a")}}
		seeds = append(seeds, r)
	}
	for _, v := range []int16{0, 3, 4} {
		r := kmsg.NewPtrHeartbeatRequest()
		r.Version, r.Group, r.MemberID = v, "g", "m"
		seeds = append(seeds, r)
	}
	for _, v := range []int16{0, 3, 5} {
		r := kmsg.NewPtrLeaveGroupRequest()
		r.Version, r.Group, r.MemberID = v, "g", "m"
		r.Members = []kmsg.LeaveGroupRequestMember{{MemberID: "m"}, {InstanceID: str("i")}}
		seeds = append(seeds, r)
	}
	for _, r := range seeds {
		kind := map[int16]uint8{11: 0, 14: 1, 12: 2, 13: 3}[r.Key()]
		f.Add(kind, int32(r.GetVersion()), r.AppendTo(nil))
	}
	f.Add(uint8(4), int32(5), []byte(nil))
	f.Add(uint8(0), int32(-1), []byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, kind uint8, version int32, data []byte) {
		var msg proto.Message
		switch kind % 5 {
		case 0:
			msg = &JoinRequest{Version: version, Request: data, ClientId: "c", ClientHost: "/h"}
		case 1:
			msg = &SyncRequest{Version: version, Request: data}
		case 2:
			msg = &HeartbeatRequest{Version: version, Request: data}
		case 3:
			msg = &LeaveRequest{Version: version, Request: data}
		case 4:
			msg = &DescribeRequest{Version: version}
		}
		kreq, err := kafkaRequest(msg)
		if kreq == nil {
			t.Fatalf("no request from %T", msg)
		}
		if err != nil {
			resp := kreq.ResponseKind()
			if err := DecodeResponse(resp, answerOf(errorResponse(kreq, undecodableCode)).(KafkaResponse)); err != nil {
				t.Fatalf("the error answer to %T does not decode: %v", msg, err)
			}
			if code := errorCode(resp); code != undecodableCode {
				t.Fatalf("the error answer to %T has error %d", msg, code)
			}
			return
		}
		h := newHarness(t, Config{})
		h.form("a")
		var out []Reply
		switch r := kreq.(type) {
		case *kmsg.JoinGroupRequest:
			out = h.g.Join(h.now, r, "c", "/h", "fuzz")
		case *kmsg.SyncGroupRequest:
			out = h.g.Sync(h.now, r, "fuzz")
		case *kmsg.HeartbeatRequest:
			out = h.g.Heartbeat(h.now, r, "fuzz")
		case *kmsg.LeaveGroupRequest:
			out = h.g.Leave(h.now, r, "fuzz")
		case *kmsg.DescribeGroupsRequest:
			out = []Reply{{"fuzz", describeResponse(r, h.g.Describe())}}
		}
		out = append(out, h.advance(time.Hour)...)
		for _, r := range out {
			if answerOf(r.Resp) == nil {
				t.Fatalf("no answer carries a %T", r.Resp)
			}
		}
		_ = DecodeResponse(kreq.ResponseKind(), &JoinResponse{Response: data})
	})
}

// errorCode is the error code of a response to a group message.
func errorCode(resp kmsg.Response) int16 {
	switch r := resp.(type) {
	case *kmsg.JoinGroupResponse:
		return r.ErrorCode
	case *kmsg.SyncGroupResponse:
		return r.ErrorCode
	case *kmsg.HeartbeatResponse:
		return r.ErrorCode
	case *kmsg.LeaveGroupResponse:
		return r.ErrorCode
	case *kmsg.DescribeGroupsResponse:
		if len(r.Groups) == 1 {
			return r.Groups[0].ErrorCode
		}
	}
	return -1
}
