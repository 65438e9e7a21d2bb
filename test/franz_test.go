package test

import (
	"bytes"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/internal/testenv"
	"github.com/meshka/meshka/records"
)

// Every codec passes through byte for byte: records read through meshka
// equal what was written, and the batches stored upstream still carry the
// producer's codec, timestamps and headers.
func TestFranzCodecs(t *testing.T) {
	env := testenv.Start(t)
	codecs := []struct {
		name  string
		codec kgo.CompressionCodec
		attr  int16
	}{
		{"none", kgo.NoCompression(), 0},
		{"gzip", kgo.GzipCompression(), 1},
		{"snappy", kgo.SnappyCompression(), 2},
		{"lz4", kgo.Lz4Compression(), 3},
		{"zstd", kgo.ZstdCompression(), 4},
	}
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			ctx := timeout(t, 60*time.Second)
			topic := "codec-" + c.name
			p := env.Client(t, kgo.ProducerBatchCompression(c.codec), kgo.DefaultProduceTopic(topic),
				kgo.AllowAutoTopicCreation(), kgo.ProducerLinger(10*time.Millisecond))
			base := time.UnixMilli(1_700_000_000_000)
			const n = 500
			for i := 0; i < n; i++ {
				r := &kgo.Record{
					Key:       []byte(strconv.Itoa(i % 7)),
					Value:     bytes.Repeat([]byte{byte('a' + i%26)}, 100+i%50),
					Headers:   []kgo.RecordHeader{{Key: "h", Value: []byte(strconv.Itoa(i))}},
					Timestamp: base.Add(time.Duration(i) * time.Millisecond),
				}
				p.Produce(ctx, r, func(_ *kgo.Record, err error) {
					if err != nil {
						t.Errorf("produce: %v", err)
					}
				})
			}
			if err := p.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			viaMeshka := consumeN(t, ctx, env.Client(t, kgo.ConsumeTopics(topic), fromStart()), n)
			direct := consumeN(t, ctx, env.DirectClient(t, kgo.ConsumeTopics(topic), fromStart()), n)
			sameRecords(t, viaMeshka, direct)
			for _, r := range viaMeshka {
				i, _ := strconv.Atoi(string(r.Headers[0].Value))
				if !r.Timestamp.Equal(base.Add(time.Duration(i) * time.Millisecond)) {
					t.Fatalf("record %d: timestamp %v changed", i, r.Timestamp)
				}
			}
			for _, b := range upstreamBatches(t, env.Upstream, topic, 3) {
				if got := b.Attrs & 0x7; got != c.attr {
					t.Fatalf("upstream batch at %d has codec %d, producer used %d", b.Base, got, c.attr)
				}
			}
		})
	}
}

// sameRecords compares two reads of one topic record by record.
func sameRecords(t *testing.T, a, b []*kgo.Record) {
	t.Helper()
	key := func(r *kgo.Record) string { return fmt.Sprintf("%d/%d", r.Partition, r.Offset) }
	idx := make(map[string]*kgo.Record, len(b))
	for _, r := range b {
		idx[key(r)] = r
	}
	for _, r := range a {
		o, ok := idx[key(r)]
		if !ok {
			t.Fatalf("record %s missing from the direct read", key(r))
		}
		if !bytes.Equal(r.Key, o.Key) || !bytes.Equal(r.Value, o.Value) || !r.Timestamp.Equal(o.Timestamp) ||
			len(r.Headers) != len(o.Headers) || r.ProducerID != o.ProducerID || r.ProducerEpoch != o.ProducerEpoch {
			t.Fatalf("record %s differs through meshka", key(r))
		}
		for i := range r.Headers {
			if r.Headers[i].Key != o.Headers[i].Key || !bytes.Equal(r.Headers[i].Value, o.Headers[i].Value) {
				t.Fatalf("record %s header %d differs", key(r), i)
			}
		}
	}
}

// upstreamBatches reads every raw batch of a topic straight from upstream.
func upstreamBatches(t *testing.T, up *kfake.Cluster, topic string, partitions int32) []records.Batch {
	t.Helper()
	ctx := timeout(t, 30*time.Second)
	cl, err := kgo.NewClient(kgo.SeedBrokers(up.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []records.Batch
	for p := int32(0); p < partitions; p++ {
		leader := up.LeaderFor(topic, p)
		offset := int64(0)
		for {
			req := kmsg.NewPtrFetchRequest()
			req.MaxBytes = 8 << 20
			req.SessionEpoch = -1
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = topic
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p, offset, 8<<20
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			kresp, err := cl.Broker(int(leader)).Request(ctx, &fetchV12{req})
			if err != nil {
				t.Fatal(err)
			}
			part := kresp.(*kmsg.FetchResponse).Topics[0].Partitions[0]
			if part.ErrorCode != 0 {
				t.Fatalf("upstream fetch %s/%d: error %d", topic, p, part.ErrorCode)
			}
			bs, _, err := records.Split(part.RecordBatches, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(bs) == 0 {
				break
			}
			out = append(out, bs...)
			offset = bs[len(bs)-1].Next()
			if offset >= part.HighWatermark {
				break
			}
		}
	}
	return out
}

// fetchV12 keeps kgo from raising a Fetch above v12, the last version that
// names topics.
type fetchV12 struct{ *kmsg.FetchRequest }

func (fetchV12) MaxVersion() int16 { return 12 }
