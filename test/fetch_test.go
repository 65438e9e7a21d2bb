package test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/internal/testenv"
	"github.com/meshka/meshka/records"
)

// fetchRequest is a Fetch of offset 0 of each of the topic's partitions.
func fetchRequest(topic string, partitions int32, maxBytes int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes, req.SessionEpoch = 100, 1, maxBytes, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	for p := int32(0); p < partitions; p++ {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.PartitionMaxBytes = p, 1<<20
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

// meshka keeps no fetch sessions (KIP-227): a Fetch naming a session it
// does not have is answered FETCH_SESSION_ID_NOT_FOUND, as by a broker
// that lost it, and the client's full fetch that follows is served.
func TestFetchUnknownSession(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, 30*time.Second)
	const topic = "sessions"
	createTopic(t, ctx, env.DirectClient(t), topic, 1, nil)
	p := env.Client(t, kgo.DefaultProduceTopic(topic))
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	b := env.Client(t).Broker(0)

	req := fetchRequest(topic, 1, 1<<20)
	req.SessionID, req.SessionEpoch = 5, 1
	kresp, err := b.Request(ctx, &fetchV12{req})
	if err != nil {
		t.Fatal(err)
	}
	if resp := kresp.(*kmsg.FetchResponse); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code || len(resp.Topics) != 0 {
		t.Fatalf("fetch in session 5: error %d with %d topics, want FETCH_SESSION_ID_NOT_FOUND (%d) and none",
			resp.ErrorCode, len(resp.Topics), kerr.FetchSessionIDNotFound.Code)
	}
	kresp, err = b.Request(ctx, &fetchV12{fetchRequest(topic, 1, 1<<20)})
	if err != nil {
		t.Fatal(err)
	}
	resp := kresp.(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 || resp.SessionID != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions[0].RecordBatches) == 0 {
		t.Fatalf("full fetch after: error %d, session %d, %d topics; want the record, outside any session", resp.ErrorCode, resp.SessionID, len(resp.Topics))
	}
}

// A Fetch's MaxBytes bounds the whole response, as on a Kafka broker: the
// first batch of the first partition with data always comes, so a reader
// makes progress; after it, batches come while they fit, in request
// order, and a partition whose next batch does not fit gets none. Three
// partitions of four 8 KiB batches each, asked with MaxBytes 12 KiB, get
// one batch in all, from partition 0, whether their caches are cold or
// warm.
func TestFetchMaxBytesAcrossPartitions(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, 60*time.Second)
	const topic, parts, per = "budget", 3, 4
	createTopic(t, ctx, env.DirectClient(t), topic, parts, nil)
	p := env.DirectClient(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	rng := rand.New(rand.NewPCG(5, 6))
	for part := int32(0); part < parts; part++ {
		for i := 0; i < per; i++ {
			v := make([]byte, 8<<10) // random: compression cannot shrink it
			for j := range v {
				v[j] = byte(rng.Uint32())
			}
			if err := p.ProduceSync(ctx, &kgo.Record{Partition: part, Value: v}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	const maxBytes = 12 << 10
	for _, cache := range []string{"cold", "warm"} {
		if cache == "warm" {
			consumeN(t, ctx, env.Client(t, kgo.ConsumeTopics(topic), fromStart()), parts*per)
		}
		kresp, err := env.Client(t).Broker(0).Request(ctx, &fetchV12{fetchRequest(topic, parts, maxBytes)})
		if err != nil {
			t.Fatal(err)
		}
		resp := kresp.(*kmsg.FetchResponse)
		batches := map[int32]int{}
		total := 0
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if rp.ErrorCode != 0 {
					t.Fatalf("%s cache: partition %d: error %d", cache, rp.Partition, rp.ErrorCode)
				}
				bs, _, err := records.Split(rp.RecordBatches, nil)
				if err != nil {
					t.Fatal(err)
				}
				batches[rp.Partition] = len(bs)
				total += len(rp.RecordBatches)
			}
		}
		if batches[0] != 1 || batches[1] != 0 || batches[2] != 0 {
			t.Errorf("%s cache: batches by partition %v (%d bytes), want one batch of partition 0 within MaxBytes %d", cache, batches, total, maxBytes)
		}
	}
}
