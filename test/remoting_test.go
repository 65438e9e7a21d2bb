package test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/actors/partition"
	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/internal/race"
	"github.com/meshka/meshka/internal/testbatch"
	"github.com/meshka/meshka/internal/testenv"
	"github.com/meshka/meshka/upstream"
)

// withRemoting turns actor remoting on, so messages cross nodes.
func withRemoting(c *config.Config) { c.Cluster.Remote = "127.0.0.1:0" }

// Produce and read issued on one node for a partition another node owns go
// through the mesh to the owner: its actor forwards the batches upstream
// in order and its cache serves the reader, which holds no cache and no
// actor of its own; a long poll is answered when data lands; when the
// owner is lost, the reader goes on at the new owner with no gap.
func TestRemotingProduceAndReadAcrossNodes(t *testing.T) {
	if race.Enabled {
		t.Skip("remoting between nodes in one process: run without -race (make test does)")
	}
	c := testenv.StartCluster(t, 3, withRemoting)
	ctx := timeout(t, 2*time.Minute)
	const topic, parts = "remoting", 6
	createTopic(t, ctx, c.Client(t, 0), topic, parts, nil)
	// a partition node 1 owns
	p := int32(-1)
	for i := int32(0); i < parts; i++ {
		if c.Nodes[0].Registry().Owner(partition.Kind, partition.Identity("default", topic, i)).ID == 1 {
			p = i
			break
		}
	}
	if p < 0 {
		t.Fatal("node 1 owns none of the partitions")
	}

	const batches = 50
	for i := range batches {
		args := upstream.ProduceArgs{Topic: topic, Partition: p, Version: 9, Acks: -1, TimeoutMillis: 5000,
			Records: testbatch.Encode(testbatch.NoProducer(), testbatch.Values(fmt.Sprintf("v%d-a", i), fmt.Sprintf("v%d-b", i))...)}
		res, err := c.Nodes[0].Produce(ctx, args)
		if err != nil || res.ErrorCode != 0 {
			t.Fatalf("batch %d through node 0: %v, %v", i, err, kerr.ErrorForCode(res.ErrorCode))
		}
		if res.BaseOffset != int64(2*i) {
			t.Fatalf("batch %d appended at %d, want %d", i, res.BaseOffset, 2*i)
		}
	}
	if c.Nodes[0].PartitionActive(topic, p) || !c.Nodes[1].PartitionActive(topic, p) {
		t.Fatalf("partition %d active on node 0: %v, on node 1: %v; want the owner only", p, c.Nodes[0].PartitionActive(topic, p), c.Nodes[1].PartitionActive(topic, p))
	}

	// The reader on node 2 reads everything from the owner's cache.
	r := c.Nodes[2].PartitionReader(topic, p, 0, partition.ReadUncommitted)
	values := readValues(t, r, 2*batches)
	for i, v := range values {
		if want := fmt.Sprintf("v%d-%c", i/2, "ab"[i%2]); v != want {
			t.Fatalf("record %d is %q, want %q", i, v, want)
		}
	}
	if c.Nodes[2].PartitionActive(topic, p) || c.Nodes[2].CacheBytes() != 0 {
		t.Fatalf("the reading node holds the partition: active %v, cache %d bytes", c.Nodes[2].PartitionActive(topic, p), c.Nodes[2].CacheBytes())
	}

	// A long poll at the end is answered by data a Kafka client produces
	// through the owner.
	got := make(chan []string, 1)
	go func() { got <- readValuesOnce(r, 30*time.Second) }()
	time.Sleep(200 * time.Millisecond) // let the read reach the owner and wait there
	prod := c.Client(t, 1, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err := prod.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte("late")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	select {
	case vs := <-got:
		if len(vs) != 1 || vs[0] != "late" {
			t.Fatalf("long poll answered %q, want [late]", vs)
		}
	case <-ctx.Done():
		t.Fatal("the long poll was never answered")
	}

	// The owner is lost: once the survivors see it, produce through node 0
	// reaches the new owner, and the reader goes on there from where it
	// was, with no gap.
	c.Crash(1)
	var last upstream.ProduceResult
	for i := 0; ; i++ {
		if ctx.Err() != nil {
			t.Fatal("no produce went through after the owner was lost")
		}
		res, err := c.Nodes[0].Produce(ctx, upstream.ProduceArgs{Topic: topic, Partition: p, Version: 9, Acks: -1, TimeoutMillis: 5000,
			Records: testbatch.Encode(testbatch.NoProducer(), testbatch.Values(fmt.Sprintf("after-%d", i))...)})
		if err == nil && res.ErrorCode == 0 {
			last = res
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for r.Offset() <= last.BaseOffset && ctx.Err() == nil {
		readValuesOnce(r, time.Second)
	}
	if r.Offset() != last.BaseOffset+1 {
		t.Fatalf("after the owner was lost the reader is at %d, want %d", r.Offset(), last.BaseOffset+1)
	}
	if o := c.Nodes[0].Registry().Owner(partition.Kind, partition.Identity("default", topic, p)).ID; o == 1 {
		t.Fatal("the lost node still owns the partition")
	}
}

// readValues reads n record values through r, in offset order.
func readValues(t *testing.T, r *partition.Reader, n int) []string {
	t.Helper()
	var out []string
	deadline := time.Now().Add(time.Minute)
	for len(out) < n && time.Now().Before(deadline) {
		out = append(out, readValuesOnce(r, time.Second)...)
	}
	if len(out) != n {
		t.Fatalf("read %d records, want %d", len(out), n)
	}
	return out
}

// readValuesOnce is one read's record values; nil on an error.
func readValuesOnce(r *partition.Reader, wait time.Duration) []string {
	ctxRead, cancel := context.WithTimeout(context.Background(), wait+15*time.Second)
	defer cancel()
	bufs, err := r.Read(ctxRead, 1<<20, wait)
	var ke *kerr.Error
	if err != nil && !errors.As(err, &ke) {
		return nil
	}
	var out []string
	for _, b := range bufs {
		var rb kmsg.RecordBatch
		if rb.ReadFrom(b) != nil {
			return out
		}
		recs, err := testbatch.Decode(&rb)
		if err != nil {
			return out
		}
		for _, rec := range recs {
			out = append(out, string(rec.Value))
		}
	}
	return out
}
