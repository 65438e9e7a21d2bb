package records_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/records"
)

// These tests put batches through a real Kafka-protocol broker (kfake)
// both ways: franz-go's producer compresses, we fetch the raw batches and
// decode them; we encode, produce the bytes raw, and franz-go's consumer
// reads them.

var kgoCodecs = map[records.Codec]kgo.CompressionCodec{
	records.CodecNone:   kgo.NoCompression(),
	records.CodecGzip:   kgo.GzipCompression(),
	records.CodecSnappy: kgo.SnappyCompression(),
	records.CodecLZ4:    kgo.Lz4Compression(),
	records.CodecZstd:   kgo.ZstdCompression(),
}

func topicFor(c records.Codec) string { return "codec-" + c.String() }

func startBroker(t *testing.T, topics ...string) (context.Context, *kfake.Cluster) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return ctx, c
}

func client(t *testing.T, c *kfake.Cluster, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// Topic names in Fetch ask for version 12 at most; 13 names topics by id.
type fetchV12 struct{ *kmsg.FetchRequest }

func (fetchV12) MaxVersion() int16 { return 12 }

type produceV9 struct{ *kmsg.ProduceRequest }

func (produceV9) MaxVersion() int16 { return 9 }

// fetchBatches fetches partition 0 of topic from offset 0 until it has
// batches up to offset end, and returns them raw.
func fetchBatches(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, end int64) []records.Batch {
	t.Helper()
	var out []records.Batch
	for next := int64(0); next < end; {
		req := kmsg.NewPtrFetchRequest()
		req.MaxWaitMillis, req.MinBytes, req.MaxBytes, req.SessionEpoch = 100, 1, 32<<20, -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.FetchOffset, rp.PartitionMaxBytes = next, 32<<20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		kresp, err := cl.Broker(0).Request(ctx, fetchV12{req})
		if err != nil {
			t.Fatal(err)
		}
		resp := kresp.(*kmsg.FetchResponse)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("fetch answered %d topics", len(resp.Topics))
		}
		p := resp.Topics[0].Partitions[0]
		if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
			t.Fatalf("fetch at %d: %v", next, err)
		}
		bs, _, err := records.Split(p.RecordBatches, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bs {
			if b.Base >= next {
				out = append(out, b)
				next = b.Next()
			}
		}
	}
	return out
}

// kgoRecords are records of every shape as franz-go produces them.
func kgoRecords(topic string) []*kgo.Record {
	var out []*kgo.Record
	ts := time.UnixMilli(1_700_000_000_000)
	for i := range 300 {
		r := &kgo.Record{
			Topic:     topic,
			Key:       fmt.Appendf(nil, "key-%d", i%10),
			Value:     []byte(strings.Repeat(fmt.Sprintf("value %d ", i), 1+i%40)),
			Timestamp: ts.Add(time.Duration(i%13) * time.Millisecond),
		}
		switch i % 5 {
		case 1:
			r.Key, r.Value = nil, nil
		case 2:
			r.Key, r.Value = []byte{}, []byte{}
		case 3:
			r.Headers = []kgo.RecordHeader{{Key: "trace", Value: []byte("t")}, {Key: "null"}, {Key: "empty", Value: []byte{}}}
		}
		out = append(out, r)
	}
	// One large value.
	out[7].Value = []byte(strings.Repeat("large ", 100_000))
	return out
}

func fromKgo(r *kgo.Record) records.Record {
	out := records.Record{Offset: r.Offset, Timestamp: r.Timestamp.UnixMilli(), Key: r.Key, Value: r.Value}
	for _, h := range r.Headers {
		out.Headers = append(out.Headers, records.Header{Key: h.Key, Value: h.Value})
	}
	return out
}

func TestInteropDecodeWhatFranzProduces(t *testing.T) {
	var topics []string
	for _, c := range allCodecs {
		topics = append(topics, topicFor(c))
	}
	ctx, cluster := startBroker(t, topics...)
	for _, c := range allCodecs {
		t.Run(c.String(), func(t *testing.T) {
			cl := client(t, cluster, kgo.ProducerBatchCompression(kgoCodecs[c]))
			produced := kgoRecords(topicFor(c))
			// Two produces, two batches at least: the second's base
			// offset is not 0.
			for _, part := range [][]*kgo.Record{produced[:150], produced[150:]} {
				if err := cl.ProduceSync(ctx, part...).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			var want []records.Record
			for _, r := range produced {
				want = append(want, fromKgo(r))
			}
			batches := fetchBatches(t, ctx, cl, topicFor(c), int64(len(produced)))
			var got []records.Record
			for _, b := range batches {
				if codec := records.Codec(b.Attrs & 7); codec != c {
					t.Fatalf("franz-go wrote a %s batch, want %s", codec, c)
				}
				if c == records.CodecSnappy {
					t.Logf("batch at %d: xerial-framed %v", b.Base, bytes.HasPrefix(b.Data[61:], []byte("\x82SNAPPY\x00")))
				}
				var err error
				if got, err = records.DecodeBatch(b.Data, got); err != nil {
					t.Fatalf("batch at %d: %v", b.Base, err)
				}
			}
			t.Logf("%d records in %d batches", len(got), len(batches))
			sameRecords(t, got, want)
		})
	}
}

func TestInteropFranzConsumesWhatWeEncode(t *testing.T) {
	var topics []string
	for _, c := range allCodecs {
		topics = append(topics, topicFor(c))
	}
	ctx, cluster := startBroker(t, topics...)
	producer := client(t, cluster)
	for _, c := range allCodecs {
		t.Run(c.String(), func(t *testing.T) {
			topic := topicFor(c)
			var want []records.Record
			// Three batches, so offsets run on across them.
			for b := range 3 {
				recs := sampleRecords(100 + b)
				batch := encode(t, recs, c)
				req := kmsg.NewPtrProduceRequest()
				req.Acks, req.TimeoutMillis = -1, 10_000
				rt := kmsg.NewProduceRequestTopic()
				rt.Topic = topic
				rp := kmsg.NewProduceRequestTopicPartition()
				rp.Records = batch
				rt.Partitions = append(rt.Partitions, rp)
				req.Topics = append(req.Topics, rt)
				kresp, err := producer.Broker(0).Request(ctx, produceV9{req})
				if err != nil {
					t.Fatal(err)
				}
				resp := kresp.(*kmsg.ProduceResponse)
				p := resp.Topics[0].Partitions[0]
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					t.Fatalf("produce: %v", err)
				}
				want = append(want, numbered(recs, p.BaseOffset)...)
			}

			consumer := client(t, cluster, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
			var got []records.Record
			for len(got) < len(want) {
				fs := consumer.PollFetches(ctx)
				if err := ctx.Err(); err != nil {
					t.Fatalf("consumed %d of %d records: %v", len(got), len(want), err)
				}
				fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("consume: %v", err) })
				fs.EachRecord(func(r *kgo.Record) { got = append(got, fromKgo(r)) })
			}
			sameRecords(t, got, want)
		})
	}
}

// A committed transaction leaves a control batch after its records:
// DecodeBatch reads the records and nothing from the marker.
func TestInteropTransactionMarker(t *testing.T) {
	const topic = "txn"
	ctx, cluster := startBroker(t, topic)
	p := client(t, cluster, kgo.TransactionalID("records-txn"), kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: []byte("in a transaction"), Timestamp: time.UnixMilli(1_700_000_000_000)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	batches := fetchBatches(t, ctx, p, topic, 2)
	if len(batches) != 2 || batches[0].Control() || !batches[1].Control() {
		t.Fatalf("%d batches, want the records then the marker", len(batches))
	}
	if typ, ok := batches[1].ControlType(); !ok || typ != 1 {
		t.Fatalf("marker type %d (%v), want commit", typ, ok)
	}
	got, err := records.DecodeBatch(batches[0].Data, nil)
	if err != nil || len(got) != 1 || string(got[0].Value) != "in a transaction" || got[0].Offset != 0 {
		t.Fatalf("the transaction's records: %v, %v", got, err)
	}
	got, err = records.DecodeBatch(batches[1].Data, got)
	if err != nil || len(got) != 1 {
		t.Fatalf("the marker: %d records after it, %v; want none added", len(got), err)
	}
}
