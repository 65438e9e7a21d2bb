package test

import (
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/internal/testenv"
)

// atVersion makes kgo send a request at exactly one version: kgo takes the
// highest version up to MaxVersion that the broker advertises.
type atVersion struct {
	kmsg.Request
	v int16
}

func (a *atVersion) MaxVersion() int16 { return a.v }

// Every request meshka forwards reaches upstream at the version the client
// sent it at, for every version meshka advertises: a request re-encoded at
// another version can mean something else (EndTxn v5 bumps the producer
// epoch, which a client speaking v3 never learns). Upstream records the
// version of every request it receives; each forwarded key, sent at each
// advertised version, must have reached it at that version and no other.
func TestForwardedAtClientVersion(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, 90*time.Second)
	const topic, group, txnID = "fwd-versions", "fwd-versions-group", "fwd-versions-txn"
	cl := env.Client(t)
	createTopic(t, ctx, cl, topic, 1, nil)

	var mu sync.Mutex
	seen := map[int16][]int16{}
	env.Upstream.Control(func(req kmsg.Request) (kmsg.Response, error, bool) {
		mu.Lock()
		seen[req.Key()] = append(seen[req.Key()], req.GetVersion())
		mu.Unlock()
		return nil, nil, false // observe only; upstream answers as usual
	})

	avResp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	advertised := map[int16][2]int16{}
	for _, k := range avResp.ApiKeys {
		advertised[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
	}

	builders := forwardedRequests(topic, group, txnID)
	for _, key := range slices.Sorted(maps.Keys(builders)) {
		r, ok := advertised[key]
		if !ok {
			t.Errorf("%s (key %d) is forwarded but not advertised", kmsg.NameForKey(key), key)
			continue
		}
		for v := r[0]; v <= r[1]; v++ {
			mu.Lock()
			before := len(seen[key])
			mu.Unlock()
			for _, build := range builders[key] {
				req := build()
				req.SetVersion(v)
				if _, err := cl.Broker(0).Request(ctx, &atVersion{req, v}); err != nil {
					t.Errorf("%s v%d through meshka: %v", kmsg.NameForKey(key), v, err)
				}
			}
			mu.Lock()
			got := slices.Clone(seen[key][before:])
			mu.Unlock()
			if len(got) == 0 {
				t.Errorf("%s v%d: upstream received no %s request", kmsg.NameForKey(key), v, kmsg.NameForKey(key))
				continue
			}
			for _, g := range got {
				if g != v {
					t.Errorf("%s sent at v%d reached upstream at v%d (all: %v)", kmsg.NameForKey(key), v, g, got)
					break
				}
			}
		}
	}
	if t.Failed() {
		return
	}
	// The versions above really ran: a transaction key at its lowest and
	// highest advertised version both reached upstream.
	for _, key := range []int16{24, 26} {
		if r := advertised[key]; r[0] == r[1] {
			t.Errorf("%s: only v%d advertised; the test checks nothing across versions", kmsg.NameForKey(key), r[0])
		}
	}
}

// forwardedRequests builds, for each key meshka forwards upstream, a
// request upstream will act on (its answer may be an error code; the
// version it arrives at is what is checked).
func forwardedRequests(topic, group, txnID string) map[int16][]func() kmsg.Request {
	lo := func() kmsg.Request {
		r := kmsg.NewPtrListOffsetsRequest()
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp = 0, -1
		rt.Partitions = append(rt.Partitions, rp)
		r.Topics = append(r.Topics, rt)
		return r
	}
	commit := func() kmsg.Request {
		r := kmsg.NewPtrOffsetCommitRequest()
		r.Group = group
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = 0, 0
		rt.Partitions = append(rt.Partitions, rp)
		r.Topics = append(r.Topics, rt)
		return r
	}
	fetchOffsets := func() kmsg.Request {
		r := kmsg.NewPtrOffsetFetchRequest()
		r.Group = group
		rt := kmsg.NewOffsetFetchRequestTopic()
		rt.Topic, rt.Partitions = topic, []int32{0}
		r.Topics = append(r.Topics, rt)
		g := kmsg.NewOffsetFetchRequestGroup()
		g.Group = group
		gt := kmsg.NewOffsetFetchRequestGroupTopic()
		gt.Topic, gt.Partitions = topic, []int32{0}
		g.Topics = append(g.Topics, gt)
		r.Groups = append(r.Groups, g)
		return r
	}
	deleteRecords := func() kmsg.Request {
		r := kmsg.NewPtrDeleteRecordsRequest()
		rt := kmsg.NewDeleteRecordsRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewDeleteRecordsRequestTopicPartition()
		rp.Partition, rp.Offset = 0, 0
		rt.Partitions = append(rt.Partitions, rp)
		r.Topics = append(r.Topics, rt)
		return r
	}
	initPID := func() kmsg.Request {
		r := kmsg.NewPtrInitProducerIDRequest()
		r.TransactionalID = kmsg.StringPtr(txnID)
		r.TransactionTimeoutMillis = 60000
		return r
	}
	initIdempotent := func() kmsg.Request { return kmsg.NewPtrInitProducerIDRequest() }
	epoch := func() kmsg.Request {
		r := kmsg.NewPtrOffsetForLeaderEpochRequest()
		rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.Partition, rp.LeaderEpoch = 0, 0
		rt.Partitions = append(rt.Partitions, rp)
		r.Topics = append(r.Topics, rt)
		return r
	}
	addPartitions := func() kmsg.Request {
		r := kmsg.NewPtrAddPartitionsToTxnRequest()
		r.TransactionalID, r.ProducerID, r.ProducerEpoch = txnID, 0, 0
		rt := kmsg.NewAddPartitionsToTxnRequestTopic()
		rt.Topic, rt.Partitions = topic, []int32{0}
		r.Topics = append(r.Topics, rt)
		return r
	}
	addOffsets := func() kmsg.Request {
		r := kmsg.NewPtrAddOffsetsToTxnRequest()
		r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Group = txnID, 0, 0, group
		return r
	}
	endTxn := func() kmsg.Request {
		r := kmsg.NewPtrEndTxnRequest()
		r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Commit = txnID, 0, 0, true
		return r
	}
	txnCommit := func() kmsg.Request {
		r := kmsg.NewPtrTxnOffsetCommitRequest()
		r.TransactionalID, r.Group, r.ProducerID, r.ProducerEpoch = txnID, group, 0, 0
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = 0, 0
		rt.Partitions = append(rt.Partitions, rp)
		r.Topics = append(r.Topics, rt)
		return r
	}
	describeConfigs := func() kmsg.Request {
		r := kmsg.NewPtrDescribeConfigsRequest()
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, topic
		r.Resources = append(r.Resources, rr)
		br := kmsg.NewDescribeConfigsRequestResource()
		br.ResourceType, br.ResourceName = kmsg.ConfigResourceTypeBroker, "1"
		r.Resources = append(r.Resources, br)
		return r
	}
	alterConfigs := func() kmsg.Request {
		r := kmsg.NewPtrAlterConfigsRequest()
		r.ValidateOnly = true
		rr := kmsg.NewAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, topic
		r.Resources = append(r.Resources, rr)
		return r
	}
	incAlterConfigs := func() kmsg.Request {
		r := kmsg.NewPtrIncrementalAlterConfigsRequest()
		r.ValidateOnly = true
		rr := kmsg.NewIncrementalAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, topic
		r.Resources = append(r.Resources, rr)
		return r
	}
	deleteGroups := func() kmsg.Request {
		r := kmsg.NewPtrDeleteGroupsRequest()
		r.Groups = []string{group}
		return r
	}
	offsetDelete := func() kmsg.Request {
		r := kmsg.NewPtrOffsetDeleteRequest()
		r.Group = group
		rt := kmsg.NewOffsetDeleteRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewOffsetDeleteRequestTopicPartition()
		rp.Partition = 0
		rt.Partitions = append(rt.Partitions, rp)
		r.Topics = append(r.Topics, rt)
		return r
	}
	createPartitions := func() kmsg.Request {
		r := kmsg.NewPtrCreatePartitionsRequest()
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = topic, 1 // not more than it has: refused, not applied
		r.Topics = append(r.Topics, rt)
		r.ValidateOnly = true
		return r
	}
	one := func(f func() kmsg.Request) []func() kmsg.Request { return []func() kmsg.Request{f} }
	return map[int16][]func() kmsg.Request{
		2: one(lo), 8: one(commit), 9: one(fetchOffsets), 21: one(deleteRecords),
		22: {initPID, initIdempotent}, 23: one(epoch),
		24: one(addPartitions), 25: one(addOffsets), 26: one(endTxn), 28: one(txnCommit),
		32: one(describeConfigs), 33: one(alterConfigs), 37: one(createPartitions), 42: one(deleteGroups),
		44: one(incAlterConfigs), 47: one(offsetDelete),
	}
}

// A partition request naming partitions led by different upstream brokers
// is split by leader and its answers merged: through meshka it gets the
// same offsets as straight from upstream, for every partition.
func TestForwardSplitByLeader(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, 30*time.Second)
	const topic, parts = "fwd-split", 6
	cl := env.Client(t)
	createTopic(t, ctx, cl, topic, parts, nil)
	p := manualProducer(t, env)
	for i := 0; i < parts; i++ {
		for j := 0; j <= i; j++ {
			if err := p.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: int32(i), Value: []byte("v")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	leaders := map[int32]bool{}
	meta, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, env.DirectClient(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, mt := range meta.Topics {
		if mt.Topic != nil && *mt.Topic == topic {
			for _, mp := range mt.Partitions {
				leaders[mp.Leader] = true
			}
		}
	}
	if len(leaders) < 2 {
		t.Fatalf("upstream leads %s from %d broker(s); the split is not exercised", topic, len(leaders))
	}
	ask := func(c *kgo.Client) map[int32]int64 {
		req := kmsg.NewPtrListOffsetsRequest()
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = topic
		for i := int32(0); i < parts; i++ {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition, rp.Timestamp = i, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		out := map[int32]int64{}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if rp.ErrorCode != 0 {
					t.Errorf("%s/%d: error %d", rt.Topic, rp.Partition, rp.ErrorCode)
				}
				out[rp.Partition] = rp.Offset
			}
		}
		return out
	}
	got, want := ask(cl), ask(env.DirectClient(t))
	if !maps.Equal(got, want) || len(got) != parts {
		t.Errorf("ListOffsets through meshka %v, straight from upstream %v", got, want)
	}
}
