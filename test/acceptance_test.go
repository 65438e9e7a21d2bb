package test

import (
	"bytes"
	"encoding/binary"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshka/meshka/internal/testenv"
)

// An idempotent producer writes 100,000 records through meshka; reading
// them back finds every sequence number once, in order per partition, and
// upstream holds them under the producer's id.
func TestIdempotentProducer100k(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 100,000 records")
	}
	env := testenv.Start(t)
	ctx := timeout(t, 3*time.Minute)
	const topic, n, parts = "idem", 100_000, 3
	createTopic(t, ctx, env.Client(t), topic, parts, nil)
	p := env.Client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.MaxBufferedRecords(20_000))
	for i := 0; i < n; i++ {
		v := binary.BigEndian.AppendUint64(nil, uint64(i))
		p.Produce(ctx, &kgo.Record{Partition: int32(i % parts), Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got := consumeN(t, ctx, env.Client(t, kgo.ConsumeTopics(topic), fromStart(), kgo.FetchMaxWait(100*time.Millisecond)), n)
	last := map[int32]int64{0: -parts + 0, 1: -parts + 1, 2: -parts + 2}
	pid := int64(-1)
	for _, r := range got {
		v := int64(binary.BigEndian.Uint64(r.Value))
		if v != last[r.Partition]+parts {
			t.Fatalf("partition %d: record %d follows %d: a gap or a duplicate", r.Partition, v, last[r.Partition])
		}
		last[r.Partition] = v
		if r.ProducerID < 0 || pid >= 0 && r.ProducerID != pid {
			t.Fatalf("record %d: producer id %d, want one id for all", v, r.ProducerID)
		}
		pid = r.ProducerID
	}
}

// A 5 MiB record passes through both ways.
func TestLargeRecord(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, 60*time.Second)
	const topic = "big"
	createTopic(t, ctx, env.Client(t), topic, 1, map[string]*string{"max.message.bytes": kadm.StringPtr("10485760")})
	value := make([]byte, 5<<20)
	for i := range value {
		value[i] = byte(i * 31)
	}
	p := env.Client(t, kgo.ProducerBatchMaxBytes(8<<20), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err := p.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: value}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	c := env.Client(t, kgo.ConsumeTopics(topic), fromStart(), kgo.FetchMaxBytes(16<<20), kgo.FetchMaxPartitionBytes(16<<20))
	got := consumeN(t, ctx, c, 1)
	if !bytes.Equal(got[0].Value, value) {
		t.Fatalf("5 MiB record changed: %d bytes back", len(got[0].Value))
	}
}

// A 64-partition topic: metadata names meshka as every leader and every
// partition carries its own records.
func TestSixtyFourPartitions(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, 90*time.Second)
	const topic, parts, per = "wide", 64, 50
	cl := env.Client(t)
	createTopic(t, ctx, cl, topic, parts, nil)
	td, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(td[topic].Partitions); got != parts {
		t.Fatalf("metadata shows %d partitions, want %d", got, parts)
	}
	for _, p := range td[topic].Partitions {
		if p.Leader != 0 {
			t.Fatalf("partition %d led by %d, want meshka node 0", p.Partition, p.Leader)
		}
	}
	p := env.Client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for i := 0; i < parts*per; i++ {
		p.Produce(ctx, &kgo.Record{Partition: int32(i % parts), Value: []byte{byte(i % parts)}}, failed(t))
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got := consumeN(t, ctx, env.Client(t, kgo.ConsumeTopics(topic), fromStart()), parts*per)
	count := make(map[int32]int)
	for _, r := range got {
		if int32(r.Value[0]) != r.Partition {
			t.Fatalf("record for partition %d read from partition %d", r.Value[0], r.Partition)
		}
		count[r.Partition]++
	}
	for i := int32(0); i < parts; i++ {
		if count[i] != per {
			t.Fatalf("partition %d has %d records, want %d", i, count[i], per)
		}
	}
}

// Admin calls pass through to upstream, and metadata follows them.
func TestAdminPassThrough(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, 60*time.Second)
	adm := kadm.NewClient(env.Client(t))
	const topic = "admin"
	createTopic(t, ctx, env.Client(t), topic, 2, map[string]*string{"retention.ms": kadm.StringPtr("3600000")})

	cfgs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := cfgs.On(topic, nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe configs: %v %v", err, rc.Err)
	}
	if v := configValue(rc.Configs, "retention.ms"); v != "3600000" {
		t.Fatalf("retention.ms = %q, want 3600000", v)
	}
	alter, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: kadm.StringPtr("7200000")}}, topic)
	if err != nil || alter[0].Err != nil {
		t.Fatalf("incremental alter configs: %v %v", err, alter)
	}
	cfgs, _ = adm.DescribeTopicConfigs(ctx, topic)
	if rc, _ := cfgs.On(topic, nil); configValue(rc.Configs, "retention.ms") != "7200000" {
		t.Fatalf("alter did not take: %q", configValue(rc.Configs, "retention.ms"))
	}

	if _, err := adm.CreatePartitions(ctx, 2, topic); err != nil {
		t.Fatal(err)
	}
	td, err := adm.ListTopics(ctx, topic)
	if err != nil || len(td[topic].Partitions) != 4 {
		t.Fatalf("after CreatePartitions: %v, %d partitions, want 4", err, len(td[topic].Partitions))
	}

	p := env.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for i := 0; i < 10; i++ {
		if err := p.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: 0, Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ends.Lookup(topic, 0); o.Offset != 10 {
		t.Fatalf("end offset %d, want 10", o.Offset)
	}
	del, err := adm.DeleteRecords(ctx, kadm.Offsets{topic: {0: {At: 4}}})
	if err != nil || del.Error() != nil {
		t.Fatalf("delete records: %v %v", err, del.Error())
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := starts.Lookup(topic, 0); o.Offset != 4 {
		t.Fatalf("start offset %d after DeleteRecords, want 4", o.Offset)
	}

	if resp, err := adm.DeleteTopics(ctx, topic); err != nil || resp.Error() != nil {
		t.Fatalf("delete topic: %v %v", err, resp.Error())
	}
	// Metadata follows the deletion once meshka's cached entry goes.
	for {
		td, err := adm.ListTopics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !td.Has(topic) {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("deleted topic still listed")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func configValue(cs []kadm.Config, name string) string {
	for _, c := range cs {
		if c.Key == name && c.Value != nil {
			return *c.Value
		}
	}
	return ""
}

// Transactions written upstream are read through meshka's cache with both
// isolation levels: read_committed sees only committed records, in order.
func TestReadCommittedFromCache(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, 60*time.Second)
	const topic = "txn"
	createTopic(t, ctx, env.DirectClient(t), topic, 1, nil)
	// Readers start first so the batches arrive through the cache's stream.
	committed := env.Client(t, kgo.ConsumeTopics(topic), fromStart(), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	uncommitted := env.Client(t, kgo.ConsumeTopics(topic), fromStart())
	committed.PollFetches(timeout(t, 300*time.Millisecond))
	uncommitted.PollFetches(timeout(t, 300*time.Millisecond))

	tx := env.DirectClient(t, kgo.TransactionalID("tx-1"), kgo.DefaultProduceTopic(topic))
	var want []string
	all := 0
	for i := 0; i < 20; i++ {
		if err := tx.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for j := 0; j < 5; j++ {
			v := []byte{byte('a' + i), byte('0' + j)}
			if err := tx.ProduceSync(ctx, &kgo.Record{Value: v}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			all++
			if i%3 != 1 {
				want = append(want, string(v))
			}
		}
		if err := tx.EndTransaction(ctx, kgo.TransactionEndTry(i%3 != 1)); err != nil {
			t.Fatal(err)
		}
	}
	// The last transaction (19) aborted. A committed one after it marks the
	// end: read_committed must reach it having seen exactly want, so
	// aborted records anywhere, the last ones included, fail the test.
	if err := tx.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := tx.ProduceSync(ctx, &kgo.Record{Value: []byte("zz")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := tx.EndTransaction(ctx, kgo.TransactionEndTry(true)); err != nil {
		t.Fatal(err)
	}
	all++
	want = append(want, "zz")
	got := consumeN(t, ctx, committed, len(want))
	for i, r := range got {
		if string(r.Value) != want[i] {
			t.Fatalf("read_committed record %d = %q, want %q", i, r.Value, want[i])
		}
	}
	raw := consumeN(t, ctx, uncommitted, all)
	values := make([]string, len(raw))
	for i, r := range raw {
		values[i] = string(r.Value)
	}
	if !sort.StringsAreSorted(values) {
		t.Fatalf("read_uncommitted order changed: %v", values)
	}
}
