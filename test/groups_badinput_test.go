package test

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/internal/testenv"
)

// rawMember is a group member driven by hand with raw requests, so each
// request's answer can be checked exactly.
type rawMember struct {
	group      string
	memberID   string
	generation int32
	protocol   string
}

func consumerMetadata(topic string, userData []byte) []byte {
	m := kmsg.NewConsumerMemberMetadata()
	m.Topics = []string{topic}
	m.UserData = userData
	return m.AppendTo(nil)
}

func joinRequest(group, memberID string, sessionMillis int32, metadata []byte) *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Group, req.MemberID = group, memberID
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = sessionMillis, 30_000
	req.ProtocolType = "consumer"
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name, p.Metadata = "range", metadata
	req.Protocols = append(req.Protocols, p)
	return req
}

func requestJoin(t *testing.T, ctx context.Context, b *kgo.Broker, req *kmsg.JoinGroupRequest) *kmsg.JoinGroupResponse {
	t.Helper()
	kresp, err := b.Request(ctx, req)
	if err != nil {
		t.Fatalf("join %q: %v", req.Group, err)
	}
	return kresp.(*kmsg.JoinGroupResponse)
}

// joinRaw joins a group as its only member, leads it and syncs an
// assignment of partition 0 of topic, leaving the group Stable. A 60 s
// session keeps the member in without heartbeats for the whole test.
func joinRaw(t *testing.T, ctx context.Context, b *kgo.Broker, group, topic string, metadata []byte) (*rawMember, *kmsg.JoinGroupResponse) {
	t.Helper()
	// A first join without a member id is told MEMBER_ID_REQUIRED along
	// with the id to use (JoinGroup v4+, KIP-394).
	resp := requestJoin(t, ctx, b, joinRequest(group, "", 60_000, metadata))
	if resp.ErrorCode != kerr.MemberIDRequired.Code || resp.MemberID == "" {
		t.Fatalf("first join of %s: error %d, member id %q; want MEMBER_ID_REQUIRED (%d) with an id", group, resp.ErrorCode, resp.MemberID, kerr.MemberIDRequired.Code)
	}
	resp = requestJoin(t, ctx, b, joinRequest(group, resp.MemberID, 60_000, metadata))
	if resp.ErrorCode != 0 || resp.LeaderID != resp.MemberID || resp.Protocol == nil || *resp.Protocol != "range" {
		t.Fatalf("join of %s: error %d, member %s, leader %s, protocol %v", group, resp.ErrorCode, resp.MemberID, resp.LeaderID, resp.Protocol)
	}
	m := &rawMember{group: group, memberID: resp.MemberID, generation: resp.Generation, protocol: *resp.Protocol}

	assignment := kmsg.NewConsumerMemberAssignment()
	at := kmsg.NewConsumerMemberAssignmentTopic()
	at.Topic, at.Partitions = topic, []int32{0}
	assignment.Topics = append(assignment.Topics, at)
	sync := m.syncRequest(m.memberID, m.generation)
	ga := kmsg.NewSyncGroupRequestGroupAssignment()
	ga.MemberID, ga.MemberAssignment = m.memberID, assignment.AppendTo(nil)
	sync.GroupAssignment = append(sync.GroupAssignment, ga)
	kresp, err := b.Request(ctx, sync)
	if err != nil {
		t.Fatalf("sync %s: %v", group, err)
	}
	sresp := kresp.(*kmsg.SyncGroupResponse)
	if sresp.ErrorCode != 0 || !bytes.Equal(sresp.MemberAssignment, ga.MemberAssignment) {
		t.Fatalf("sync %s: error %d, assignment %x, want none and %x", group, sresp.ErrorCode, sresp.MemberAssignment, ga.MemberAssignment)
	}
	return m, resp
}

func (m *rawMember) syncRequest(memberID string, generation int32) *kmsg.SyncGroupRequest {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Group, req.MemberID, req.Generation = m.group, memberID, generation
	req.ProtocolType, req.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr(m.protocol)
	return req
}

func (m *rawMember) heartbeat(t *testing.T, ctx context.Context, b *kgo.Broker, memberID string, generation int32) int16 {
	t.Helper()
	req := kmsg.NewPtrHeartbeatRequest()
	req.Group, req.MemberID, req.Generation = m.group, memberID, generation
	kresp, err := b.Request(ctx, req)
	if err != nil {
		t.Fatalf("heartbeat: %v", err)
	}
	return kresp.(*kmsg.HeartbeatResponse).ErrorCode
}

func (m *rawMember) sync(t *testing.T, ctx context.Context, b *kgo.Broker, memberID string, generation int32) int16 {
	t.Helper()
	kresp, err := b.Request(ctx, m.syncRequest(memberID, generation))
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	return kresp.(*kmsg.SyncGroupResponse).ErrorCode
}

// offsetCommitV8 pins OffsetCommit to v8, the last version before topic
// ids, so the request names its topic.
type offsetCommitV8 struct{ *kmsg.OffsetCommitRequest }

func (offsetCommitV8) MaxVersion() int16 { return 8 }

// commitCodes commits offset 1 of topic partition 0 and returns the
// partition's error codes (one, unless the response is malformed).
func commitCodes(t *testing.T, ctx context.Context, b *kgo.Broker, group, memberID string, generation int32, topic string) []int16 {
	t.Helper()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.MemberID, req.Generation = group, memberID, generation
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = 0, 1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	kresp, err := b.Request(ctx, offsetCommitV8{req})
	if err != nil {
		t.Fatalf("offset commit for %q: %v", group, err)
	}
	var codes []int16
	for _, rt := range kresp.(*kmsg.OffsetCommitResponse).Topics {
		for _, rp := range rt.Partitions {
			codes = append(codes, rp.ErrorCode)
		}
	}
	return codes
}

func wantCode(t *testing.T, what string, got, want int16) {
	t.Helper()
	if got != want {
		t.Errorf("%s: error %d (%v), want %d (%v)", what, got, kerr.ErrorForCode(got), want, kerr.ErrorForCode(want))
	}
}

func wantCodes(t *testing.T, what string, got []int16, want int16) {
	t.Helper()
	if len(got) != 1 {
		t.Errorf("%s: %d partition results %v, want one", what, len(got), got)
		return
	}
	wantCode(t, what, got[0], want)
}

// Group requests that break the protocol's rules get the exact errors a
// Kafka coordinator gives, in the order Kafka checks them.
func TestGroupBadInput(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, 40*time.Second)
	const topic = "group-badinput"
	cl := env.Client(t)
	createTopic(t, ctx, cl, topic, 1, nil)
	b := cl.Broker(0) // meshka is node 0 and every group's coordinator
	meta := consumerMetadata(topic, nil)

	m, _ := joinRaw(t, ctx, b, "bad-live", topic, meta)
	wantCode(t, "heartbeat of the live member", m.heartbeat(t, ctx, b, m.memberID, m.generation), 0)

	wantCode(t, "heartbeat of an unknown member", m.heartbeat(t, ctx, b, "no-such-member", m.generation), kerr.UnknownMemberID.Code)
	wantCode(t, "sync of an unknown member", m.sync(t, ctx, b, "no-such-member", m.generation), kerr.UnknownMemberID.Code)
	wantCode(t, "heartbeat with the next generation", m.heartbeat(t, ctx, b, m.memberID, m.generation+1), kerr.IllegalGeneration.Code)
	wantCode(t, "heartbeat with the previous generation", m.heartbeat(t, ctx, b, m.memberID, m.generation-1), kerr.IllegalGeneration.Code)
	wantCode(t, "sync with the next generation", m.sync(t, ctx, b, m.memberID, m.generation+1), kerr.IllegalGeneration.Code)

	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Group = m.group
	lm := kmsg.NewLeaveGroupRequestMember()
	lm.MemberID = "no-such-member"
	leave.Members = append(leave.Members, lm)
	if kresp, err := b.Request(ctx, leave); err != nil {
		t.Fatalf("leave: %v", err)
	} else {
		resp := kresp.(*kmsg.LeaveGroupResponse)
		wantCode(t, "leave of an unknown member (group level)", resp.ErrorCode, 0)
		if len(resp.Members) != 1 {
			t.Errorf("leave of an unknown member: %d member results, want 1", len(resp.Members))
		} else {
			wantCode(t, "leave of an unknown member (member level)", resp.Members[0].ErrorCode, kerr.UnknownMemberID.Code)
		}
	}

	wantCodes(t, "offset commit with the right generation", commitCodes(t, ctx, b, m.group, m.memberID, m.generation, topic), 0)
	wantCodes(t, "offset commit with a wrong generation", commitCodes(t, ctx, b, m.group, m.memberID, m.generation+1, topic), kerr.IllegalGeneration.Code)
	wantCodes(t, "offset commit of an unknown member", commitCodes(t, ctx, b, m.group, "no-such-member", m.generation, topic), kerr.UnknownMemberID.Code)
	wantCodes(t, "offset commit with an empty group id", commitCodes(t, ctx, b, "", "", -1, topic), kerr.InvalidGroupID.Code)
	// The refused commits stored nothing: offset 1 from the accepted one
	// is what upstream holds.
	if got := committed(t, ctx, env.DirectClient(t), m.group, topic); len(got) != 1 || got[0] != 1 {
		t.Errorf("upstream holds %v for %s, want partition 0 at 1", got, m.group)
	}

	wantCode(t, "join with an empty group id", requestJoin(t, ctx, b, joinRequest("", "", 10_000, meta)).ErrorCode, kerr.InvalidGroupID.Code)
	wantCode(t, "join with a 1 s session (minimum 6 s)", requestJoin(t, ctx, b, joinRequest("bad-session", "", 1_000, meta)).ErrorCode, kerr.InvalidSessionTimeout.Code)
	wantCode(t, "join with a session above the 30 min maximum", requestJoin(t, ctx, b, joinRequest("bad-session", "", 30*60_000+1, meta)).ErrorCode, kerr.InvalidSessionTimeout.Code)

	// The live member was not disturbed by any of it.
	wantCode(t, "heartbeat of the live member afterwards", m.heartbeat(t, ctx, b, m.memberID, m.generation), 0)
}

// txnCommitCodes sends a TxnOffsetCommit (v3, which carries the member
// and generation, KIP-447) of offset 1 for partition 0 of topic and returns
// the partitions' error codes.
func txnCommitCodes(t *testing.T, ctx context.Context, b *kgo.Broker, group, memberID string, generation int32, topic string) []int16 {
	t.Helper()
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.Version = 3
	req.TransactionalID, req.ProducerID, req.ProducerEpoch = "bad-txn", 1, 0
	req.Group, req.MemberID, req.Generation = group, memberID, generation
	rt := kmsg.NewTxnOffsetCommitRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = 0, 1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	kresp, err := b.Request(ctx, &atVersion{req, 3})
	if err != nil {
		t.Fatalf("txn offset commit for %q: %v", group, err)
	}
	var codes []int16
	for _, rt := range kresp.(*kmsg.TxnOffsetCommitResponse).Topics {
		for _, rp := range rt.Partitions {
			codes = append(codes, rp.ErrorCode)
		}
	}
	return codes
}

// A TxnOffsetCommit the group refuses is answered with the group's error on
// every partition, as Kafka's coordinator answers it, and nothing reaches
// upstream: no offset is stored there.
func TestGroupTxnOffsetCommitRefused(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, 40*time.Second)
	const topic = "group-badtxn"
	cl := env.Client(t)
	createTopic(t, ctx, cl, topic, 1, nil)
	var upstreamCommits atomic.Int64
	env.Upstream.ControlKey(int16(kmsg.TxnOffsetCommit), func(kmsg.Request) (kmsg.Response, error, bool) {
		env.Upstream.KeepControl()
		upstreamCommits.Add(1)
		return nil, nil, false
	})
	b := cl.Broker(0)
	m, _ := joinRaw(t, ctx, b, "bad-txn-live", topic, consumerMetadata(topic, nil))

	wantCodes(t, "txn commit with a wrong generation", txnCommitCodes(t, ctx, b, m.group, m.memberID, m.generation+1, topic), kerr.IllegalGeneration.Code)
	wantCodes(t, "txn commit of an unknown member", txnCommitCodes(t, ctx, b, m.group, "no-such-member", m.generation, topic), kerr.UnknownMemberID.Code)
	wantCodes(t, "txn commit with an empty group id", txnCommitCodes(t, ctx, b, "", "", -1, topic), kerr.InvalidGroupID.Code)
	wantCodes(t, "txn commit to a group meshka never saw, with a generation", txnCommitCodes(t, ctx, b, "bad-txn-none", "m", 3, topic), kerr.IllegalGeneration.Code)
	if n := upstreamCommits.Load(); n != 0 {
		t.Fatalf("upstream got %d TxnOffsetCommit requests for refused commits", n)
	}
	for _, g := range []string{m.group, "bad-txn-none"} {
		// Upstream never heard of the group: nothing was committed.
		got, err := fetchCommitted(ctx, env.DirectClient(t), g, topic)
		if !errors.Is(err, kerr.GroupIDNotFound) {
			t.Errorf("upstream's offsets of %s after refused commits: %v, %v; want GROUP_ID_NOT_FOUND", g, got, err)
		}
	}
	wantCode(t, "heartbeat of the live member afterwards", m.heartbeat(t, ctx, b, m.memberID, m.generation), 0)
}

// A JoinGroup whose protocol metadata is 2 MiB (well under the 100 MiB frame
// limit) is answered, and the leader gets the metadata back byte for byte;
// meshka keeps serving other clients afterwards.
func TestGroupOversizedJoinMetadata(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, 40*time.Second)
	const topic = "group-bigjoin"
	cl := env.Client(t)
	createTopic(t, ctx, cl, topic, 1, nil)
	big := make([]byte, 2<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	meta := consumerMetadata(topic, big)

	b := cl.Broker(0)
	// meshka keeps no group state upstream, so no record size bounds the
	// metadata: the join goes as any other (KIP-394's MEMBER_ID_REQUIRED
	// round first) and the leader gets the metadata back.
	resp := requestJoin(t, ctx, b, joinRequest("bad-big", "", 60_000, meta))
	if resp.ErrorCode != kerr.MemberIDRequired.Code || resp.MemberID == "" {
		t.Fatalf("first join with 2 MiB metadata: error %d (%v), member id %q; want MEMBER_ID_REQUIRED with an id",
			resp.ErrorCode, kerr.ErrorForCode(resp.ErrorCode), resp.MemberID)
	}
	resp = requestJoin(t, ctx, b, joinRequest("bad-big", resp.MemberID, 60_000, meta))
	if resp.ErrorCode != 0 {
		t.Fatalf("join with 2 MiB metadata: error %d (%v)", resp.ErrorCode, kerr.ErrorForCode(resp.ErrorCode))
	}
	if len(resp.Members) != 1 || !bytes.Equal(resp.Members[0].ProtocolMetadata, meta) {
		t.Errorf("leader got %d members; want itself with its %d bytes of metadata unchanged", len(resp.Members), len(meta))
	}

	// A new client, on new connections, still gets served: a group
	// round trip and a produce and fetch.
	other := env.Client(t, kgo.DefaultProduceTopic(topic))
	m, _ := joinRaw(t, ctx, other.Broker(0), "after-big", topic, consumerMetadata(topic, nil))
	wantCode(t, "heartbeat after the oversized join", m.heartbeat(t, ctx, other.Broker(0), m.memberID, m.generation), 0)
	if err := other.ProduceSync(ctx, &kgo.Record{Value: []byte("still-serving")}).FirstErr(); err != nil {
		t.Fatalf("produce after the oversized join: %v", err)
	}
	got := consumeN(t, ctx, env.Client(t, kgo.ConsumeTopics(topic), fromStart()), 1)
	if string(got[0].Value) != "still-serving" {
		t.Fatalf("read %q back", got[0].Value)
	}
}
