package test

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/internal/testenv"
)

// DescribeCluster names meshka's node and upstream's cluster id.
func TestDescribeCluster(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, 30*time.Second)
	req := kmsg.NewPtrDescribeClusterRequest()
	kresp, err := env.Client(t).Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	resp := kresp.(*kmsg.DescribeClusterResponse)
	if resp.ErrorCode != 0 {
		t.Fatalf("error %d", resp.ErrorCode)
	}
	if resp.ClusterID != "meshka-embedded" {
		t.Fatalf("cluster id %q, want upstream's", resp.ClusterID)
	}
	if len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != 0 || resp.ControllerID != 0 {
		t.Fatalf("brokers %+v controller %d, want only meshka node 0", resp.Brokers, resp.ControllerID)
	}
}

// FindCoordinator names this node for transactional ids, singly and batched.
func TestFindCoordinator(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, 30*time.Second)
	cl := env.Client(t)
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorType = 1
	req.CoordinatorKeys = []string{"tx-a", "tx-b"}
	kresp, err := cl.Broker(0).Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	resp := kresp.(*kmsg.FindCoordinatorResponse)
	if len(resp.Coordinators) != 2 {
		t.Fatalf("%d coordinators, want 2", len(resp.Coordinators))
	}
	host := env.Node.Addr().String()
	for _, c := range resp.Coordinators {
		if c.ErrorCode != 0 || c.NodeID != 0 {
			t.Fatalf("coordinator %+v, want node 0", c)
		}
		if got := c.Host + ":" + itoa(c.Port); got != host {
			t.Fatalf("coordinator at %s, want %s", got, host)
		}
	}
}

// ListOffsets by timestamp and max timestamp, and OffsetForLeaderEpoch, are
// upstream's answers.
func TestListOffsetsAndLeaderEpoch(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, 30*time.Second)
	const topic = "times"
	createTopic(t, ctx, env.Client(t), topic, 1, nil)
	p := env.Client(t, kgo.DefaultProduceTopic(topic))
	base := time.UnixMilli(1_800_000_000_000)
	stamps := []int64{0, 10, 20, 5, 30} // offset 4 has the max timestamp
	for _, d := range stamps {
		r := &kgo.Record{Value: []byte("v"), Timestamp: base.Add(time.Duration(d) * time.Millisecond)}
		if err := p.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	list := func(ts int64) (int64, int64) {
		req := kmsg.NewPtrListOffsetsRequest()
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Timestamp = ts
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		kresp, err := env.Client(t).Broker(0).Request(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		part := kresp.(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]
		if part.ErrorCode != 0 {
			t.Fatalf("ListOffsets(%d): error %d", ts, part.ErrorCode)
		}
		return part.Offset, part.Timestamp
	}
	if o, _ := list(-2); o != 0 {
		t.Errorf("earliest = %d, want 0", o)
	}
	if o, _ := list(-1); o != 5 {
		t.Errorf("latest = %d, want 5", o)
	}
	if o, _ := list(base.Add(15 * time.Millisecond).UnixMilli()); o != 2 {
		t.Errorf("first offset at or after +15ms = %d, want 2", o)
	}
	if o, ts := list(-3); o != 4 || ts != base.Add(30*time.Millisecond).UnixMilli() {
		t.Errorf("max timestamp at offset %d (ts %d), want offset 4", o, ts)
	}

	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.ReplicaID = -1
	rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	rp.CurrentLeaderEpoch = -1
	rp.LeaderEpoch = 0
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	kresp, err := env.Client(t).Broker(0).Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	part := kresp.(*kmsg.OffsetForLeaderEpochResponse).Topics[0].Partitions[0]
	if part.ErrorCode != 0 || part.EndOffset != 5 {
		t.Fatalf("OffsetForLeaderEpoch: error %d end offset %d, want 5", part.ErrorCode, part.EndOffset)
	}
}

func itoa(i int32) string { return strconv.Itoa(int(i)) }

// A fetch past the end, or below the log start after DeleteRecords, gets
// OFFSET_OUT_OF_RANGE as from Kafka; a fetch at the end is answered empty.
func TestFetchOffsetOutOfRange(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, 30*time.Second)
	const topic = "oor"
	createTopic(t, ctx, env.Client(t), topic, 1, nil)
	p := env.Client(t, kgo.DefaultProduceTopic(topic))
	for i := 0; i < 10; i++ {
		if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	fetch := func(offset int64) kmsg.FetchResponseTopicPartition {
		req := kmsg.NewPtrFetchRequest()
		req.MaxWaitMillis, req.MaxBytes, req.SessionEpoch = 10, 1<<20, -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.FetchOffset, rp.PartitionMaxBytes = offset, 1<<20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		kresp, err := env.Client(t).Broker(0).Request(ctx, &fetchV12{req})
		if err != nil {
			t.Fatal(err)
		}
		return kresp.(*kmsg.FetchResponse).Topics[0].Partitions[0]
	}
	if p := fetch(0); p.ErrorCode != 0 || p.HighWatermark != 10 || len(p.RecordBatches) == 0 {
		t.Fatalf("fetch at 0: error %d hw %d %d bytes", p.ErrorCode, p.HighWatermark, len(p.RecordBatches))
	}
	if p := fetch(10); p.ErrorCode != 0 || len(p.RecordBatches) != 0 {
		t.Fatalf("fetch at the end: error %d, %d bytes; want an empty answer", p.ErrorCode, len(p.RecordBatches))
	}
	if p := fetch(1000); p.ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Fatalf("fetch past the end: error %d, want OFFSET_OUT_OF_RANGE", p.ErrorCode)
	}
	del, err := kadm.NewClient(env.Client(t)).DeleteRecords(ctx, kadm.Offsets{topic: {0: {At: 5}}})
	if err != nil || del.Error() != nil {
		t.Fatalf("delete records: %v %v", err, del.Error())
	}
	if p := fetch(2); p.ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Fatalf("fetch below the log start: error %d, want OFFSET_OUT_OF_RANGE", p.ErrorCode)
	}
	if p := fetch(5); p.ErrorCode != 0 || p.LogStartOffset != 5 {
		t.Fatalf("fetch at the new log start: error %d log start %d", p.ErrorCode, p.LogStartOffset)
	}
}

// A topic deleted straight upstream, behind meshka's back, gets
// UNKNOWN_TOPIC_OR_PARTITION on the next fetches, although meshka's
// metadata still names it: fetches trust cached metadata past its TTL and
// learn of the deletion from upstream's answers.
func TestFetchTopicDeletedUpstream(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, 30*time.Second)
	const topic = "deleted-upstream"
	createTopic(t, ctx, env.DirectClient(t), topic, 1, nil)
	p := env.DirectClient(t, kgo.DefaultProduceTopic(topic))
	for i := 0; i < 10; i++ {
		if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	fetch := func(offset int64) kmsg.FetchResponseTopicPartition {
		req := kmsg.NewPtrFetchRequest()
		req.MaxWaitMillis, req.MaxBytes, req.SessionEpoch = 10, 1<<20, -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.FetchOffset, rp.PartitionMaxBytes = offset, 1<<20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		kresp, err := env.Client(t).Broker(0).Request(ctx, &fetchV12{req})
		if err != nil {
			t.Fatal(err)
		}
		return kresp.(*kmsg.FetchResponse).Topics[0].Partitions[0]
	}
	if p := fetch(0); p.ErrorCode != 0 || len(p.RecordBatches) == 0 {
		t.Fatalf("fetch at 0: error %d, %d bytes", p.ErrorCode, len(p.RecordBatches))
	}
	if resp, err := kadm.NewClient(env.DirectClient(t)).DeleteTopics(ctx, topic); err != nil || resp.Error() != nil {
		t.Fatalf("delete topic upstream: %v %v", err, resp.Error())
	}
	// The partition's stream learns of it at its next upstream answer;
	// until then a fetch may still be answered from the cache.
	for off := int64(0); ; {
		p := fetch(off)
		if p.ErrorCode == kerr.UnknownTopicOrPartition.Code {
			break
		}
		if p.ErrorCode != 0 {
			t.Fatalf("fetch after the delete: error %d, want UNKNOWN_TOPIC_OR_PARTITION", p.ErrorCode)
		}
		if ctx.Err() != nil {
			t.Fatal("fetches never learned the topic was deleted")
		}
		off = 10
	}
	for i := 0; i < 3; i++ {
		if p := fetch(0); p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("fetch %d after the delete was seen: error %d, want UNKNOWN_TOPIC_OR_PARTITION", i, p.ErrorCode)
		}
	}
}

// ListOffsets v0 (offsets before a time, as a list) reaches upstream at v0
// and its answer comes back as upstream gave it: a v0 client asking for the
// latest and the earliest offset gets them in OldStyleOffsets.
func TestListOffsetsV0(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, 30*time.Second)
	const topic = "times-v0"
	createTopic(t, ctx, env.Client(t), topic, 1, nil)
	p := env.Client(t, kgo.DefaultProduceTopic(topic))
	for i := 0; i < 5; i++ {
		if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	list := func(cl *kgo.Client, broker int32, ts int64) kmsg.ListOffsetsResponseTopicPartition {
		req := kmsg.NewPtrListOffsetsRequest()
		req.Version = 0
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Timestamp, rp.MaxNumOffsets = ts, 1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		kresp, err := cl.Broker(int(broker)).Request(ctx, &atVersion{req, 0})
		if err != nil {
			t.Fatal(err)
		}
		resp := kresp.(*kmsg.ListOffsetsResponse)
		if resp.Version != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("ListOffsets v0 answered at v%d with %+v", resp.Version, resp.Topics)
		}
		return resp.Topics[0].Partitions[0]
	}
	leader := env.Upstream.LeaderFor(topic, 0)
	for _, c := range []struct {
		ts   int64
		want int64
	}{{-1, 5}, {-2, 0}} {
		got := list(env.Client(t), 0, c.ts)
		direct := list(env.DirectClient(t), leader, c.ts)
		if got.ErrorCode != 0 || !slices.Equal(got.OldStyleOffsets, []int64{c.want}) {
			t.Errorf("ListOffsets v0 at %d through meshka: error %d, offsets %v; want [%d]", c.ts, got.ErrorCode, got.OldStyleOffsets, c.want)
		}
		if !slices.Equal(got.OldStyleOffsets, direct.OldStyleOffsets) {
			t.Errorf("ListOffsets v0 at %d: %v through meshka, %v straight from upstream", c.ts, got.OldStyleOffsets, direct.OldStyleOffsets)
		}
	}
}
