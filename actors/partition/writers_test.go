package partition_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/meshka/meshka/actors/partition"
	"github.com/meshka/meshka/cluster"
	"github.com/meshka/meshka/internal/testbatch"
	"github.com/meshka/meshka/upstream"
)

// A producer on the node that owns a partition hands its batches to the
// partition actor's pipeline without a message; the first one, before the
// actor runs, goes through the mesh and activates it. Batches handed over
// and ProduceRequests through the actor's mailbox, from goroutines at
// once, share the one pipeline: each gets its own offsets, and upstream
// holds every record once.
func TestWritersHandOverOnTheOwner(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	up, m, writers := startWriters(t)
	args := writerArgs
	first, err := writers.Produce(ctx, m, "up", args(1))
	if err != nil || first.ErrorCode != 0 || first.BaseOffset != 0 {
		t.Fatalf("first batch: %+v, %v", first, err)
	}
	if n := writers.HandedOver(); n != 0 {
		t.Fatalf("the first batch, before the actor ran, was handed over (%d)", n)
	}

	const each, size = 40, 3
	var wg sync.WaitGroup
	offsets := make(chan int64, 2*each)
	errs := make(chan error, 2*each)
	for _, handed := range []bool{true, false} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				var r upstream.ProduceResult
				var err error
				if handed {
					r, err = writers.Produce(ctx, m, "up", args(size))
				} else {
					r, err = partition.Produce(ctx, m, "up", args(size))
				}
				if err == nil && r.ErrorCode != 0 {
					err = kerr.ErrorForCode(r.ErrorCode)
				}
				if err != nil {
					errs <- err
					return
				}
				offsets <- r.BaseOffset
			}
		}()
	}
	wg.Wait()
	close(errs)
	close(offsets)
	for err := range errs {
		t.Fatal(err)
	}
	if n := writers.HandedOver(); n != each {
		t.Fatalf("%d batches handed over, want %d", n, each)
	}
	seen := map[int64]bool{}
	for o := range offsets {
		if o < 1 || (o-1)%size != 0 || seen[o] {
			t.Fatalf("a batch at offset %d (seen before: %v)", o, seen[o])
		}
		seen[o] = true
	}
	end, err := up.LatestOffset(ctx, produceTopic, 0)
	if err != nil || end != 1+2*each*size {
		t.Fatalf("upstream ends at %d (%v), want %d", end, err, 1+2*each*size)
	}
}

// startWriters runs a one-node mesh of partition actors, with a Writers,
// over a kfake upstream holding produceTopic.
func startWriters(t *testing.T) (*upstream.Client, *cluster.Mesh, *partition.Writers) {
	t.Helper()
	_, up, quiet := startUpstream(t, produceTopic)
	writers := partition.NewWriters()
	m, err := cluster.Start(cluster.Config{
		Gossip: cluster.GossipConfig{Self: cluster.Member{Cluster: "writers-test", Kafka: "127.0.0.1:9092"}, Bind: "127.0.0.1:0", Logger: quiet},
		Kinds:  map[string]*actor.Props{partition.Kind: partition.Props(partition.Config{Upstream: up, Writers: writers, Logger: quiet})},
		Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return up, m, writers
}

// writerArgs is a batch of n empty records for partition 0 of produceTopic.
func writerArgs(n int) upstream.ProduceArgs {
	return upstream.ProduceArgs{Topic: produceTopic, Partition: 0, Version: 9, Acks: -1, TimeoutMillis: 5000,
		Records: testbatch.Encode(testbatch.NoProducer(), testbatch.Values(make([]string, n)...)...)}
}

// A request still in the mailbox of a relinquished partition actor when
// its pipeline empties is answered as gone (ErrGone: its asker sends it
// to the new owner) and never sent upstream. Stopping the actor then would
// put the stop ahead of it, and protoactor drops what a stopped actor's
// mailbox holds.
func TestRelinquishedActorAnswersWhatWaitsInItsMailbox(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	up, m, writers := startWriters(t)
	if _, err := partition.Produce(ctx, m, "up", writerArgs(1)); err != nil {
		t.Fatal(err)
	}
	id := partition.Identity("up", produceTopic, 0)
	for !writers.Idle(id) {
		if ctx.Err() != nil {
			t.Fatal("the first batch never left the pipeline")
		}
		time.Sleep(time.Millisecond)
	}
	pid, err := m.PID(partition.Kind, id)
	if err != nil {
		t.Fatal(err)
	}
	proc, ok := m.System().ProcessRegistry.Get(pid)
	if !ok {
		t.Fatal("the partition actor is not running")
	}
	// Held while both messages queue, so the pipeline is empty when the
	// actor takes the Relinquish and the request waits behind it.
	proc.SendSystemMessage(pid, &actor.SuspendMailbox{})
	m.System().Root.Send(pid, &cluster.Relinquish{})
	reply, err := m.Ask(partition.Kind, id, partition.NewProduceRequest(writerArgs(1)))
	if err != nil {
		t.Fatal(err)
	}
	proc.SendSystemMessage(pid, &actor.ResumeMailbox{})
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if v, err := reply.Wait(wctx); !errors.Is(err, cluster.ErrGone) {
		t.Fatalf("the request behind the Relinquish: %v, %v; want ErrGone", v, err)
	}
	if end, err := up.LatestOffset(ctx, produceTopic, 0); err != nil || end != 1 {
		t.Fatalf("upstream ends at %d (%v), want 1: the refused batch was written", end, err)
	}
}
