package partition_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshka/meshka/actors/partition"
	"github.com/meshka/meshka/cluster"
	"github.com/meshka/meshka/upstream"
)

// These tests drive the reads that come through the mesh (a FetchRequest
// with a wait, as a reader on another node sends) against one partition
// actor in front of kfake: a read at the end waits for data, a wait ends
// empty, the number of waiting reads is bounded, and a stopping actor
// answers every one.

const readTopic = "reads"

type readEnv struct {
	ctx    context.Context
	root   *actor.RootContext
	pid    *actor.PID
	direct *kgo.Client
}

// startUpstream runs a one-broker kfake holding topic and meshka's
// upstream client to it, both closed when t ends, and a logger that
// writes nothing.
func startUpstream(t *testing.T, topic string) (*kfake.Cluster, *upstream.Client, *slog.Logger) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	up, err := upstream.New(upstream.Config{Brokers: c.ListenAddrs(), RequestTimeout: 10 * time.Second, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Close)
	return c, up, quiet
}

func startReadEnv(t *testing.T) *readEnv {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	c, up, quiet := startUpstream(t, readTopic)
	direct, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic(readTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(direct.Close)
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
	t.Cleanup(system.Shutdown)
	cfg := partition.Config{Upstream: up, Budget: partition.NewBudget(64 << 20), Feeds: partition.NewFeeds(), MaxBytes: 16 << 20,
		IdleTimeout: time.Minute, Logger: quiet}
	pid, err := system.Root.SpawnNamed(partition.Props(cfg), "partition-read-test")
	if err != nil {
		t.Fatal(err)
	}
	system.Root.Send(pid, &cluster.Activate{Kind: partition.Kind, Identity: partition.Identity("up", readTopic, 0)})
	return &readEnv{ctx: ctx, root: system.Root, pid: pid, direct: direct}
}

// read sends a FetchRequest and returns where its answer comes.
func (e *readEnv) read(offset int64, wait time.Duration) <-chan *partition.FetchResponse {
	ch := make(chan *partition.FetchResponse, 1)
	f := e.root.RequestFuture(e.pid, &partition.FetchRequest{Offset: offset, MaxBytes: 1 << 20, MaxWaitMillis: int32(wait / time.Millisecond)}, time.Minute)
	go func() {
		v, _ := f.Result()
		r, _ := v.(*partition.FetchResponse)
		ch <- r
	}()
	return ch
}

func (e *readEnv) answer(t *testing.T, ch <-chan *partition.FetchResponse) *partition.FetchResponse {
	t.Helper()
	select {
	case r := <-ch:
		if r == nil {
			t.Fatal("the read was answered with something else than a FetchResponse")
		}
		return r
	case <-e.ctx.Done():
		t.Fatal("the read was never answered")
		return nil
	}
}

func unanswered(t *testing.T, ch <-chan *partition.FetchResponse, what string) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("%s answered at once: %+v", what, r)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestFetchWaitsForData(t *testing.T) {
	e := startReadEnv(t)
	// The first read starts the stream; the cache is empty at offset 0.
	first := e.answer(t, e.read(0, 0))
	if first.ErrorCode != 0 || len(first.Batches) != 0 {
		t.Fatalf("read of an empty partition: %+v", first)
	}
	waiting := e.read(0, 30*time.Second)
	unanswered(t, waiting, "a read at the end")
	if err := e.direct.ProduceSync(e.ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	r := e.answer(t, waiting)
	if r.ErrorCode != 0 || len(r.Batches) != 1 || r.HighWatermark != 1 {
		t.Fatalf("the waiting read got %d batches, error %d, high watermark %d; want 1 batch at watermark 1", len(r.Batches), r.ErrorCode, r.HighWatermark)
	}
}

func TestFetchWaitEndsEmpty(t *testing.T) {
	e := startReadEnv(t)
	e.answer(t, e.read(0, 0))
	start := time.Now()
	r := e.answer(t, e.read(0, 300*time.Millisecond))
	if r.ErrorCode != 0 || len(r.Batches) != 0 {
		t.Fatalf("a read whose wait ended: %+v", r)
	}
	if time.Since(start) < 300*time.Millisecond {
		t.Fatalf("answered after %v, before its wait ended", time.Since(start))
	}
}

// At most 1024 reads wait at once; one more is answered at once, empty.
// A stopping actor answers every waiting read NOT_LEADER_OR_FOLLOWER, so
// its readers go to the partition's next owner.
func TestFetchWaitingReadsBounded(t *testing.T) {
	e := startReadEnv(t)
	e.answer(t, e.read(0, 0))
	waiting := make([]<-chan *partition.FetchResponse, 1024)
	for i := range waiting {
		waiting[i] = e.read(0, 30*time.Second)
	}
	extra := e.answer(t, e.read(0, 30*time.Second))
	if extra.ErrorCode != 0 || len(extra.Batches) != 0 {
		t.Fatalf("the read past the bound: %+v", extra)
	}
	for _, w := range waiting[:8] {
		unanswered(t, w, "a read within the bound")
	}
	e.root.Stop(e.pid)
	for i, w := range waiting {
		if r := e.answer(t, w); r.ErrorCode != int32(kerr.NotLeaderForPartition.Code) {
			t.Fatalf("waiting read %d answered %v at stop, want NOT_LEADER_OR_FOLLOWER", i, kerr.ErrorForCode(int16(r.ErrorCode)))
		}
	}
}

// A ProduceRequest the Kafka edge could not have sent (it comes from
// another node) is refused INVALID_REQUEST, not forwarded.
func TestProduceRequestChecked(t *testing.T) {
	e := startReadEnv(t)
	for _, req := range []*partition.ProduceRequest{
		{Version: 99, Acks: -1, Records: []byte{0}},
		{Version: -1, Acks: -1, Records: []byte{0}},
		{Version: 9, Acks: 2, Records: []byte{0}},
		{Version: 9, Acks: -1},
	} {
		v, err := e.root.RequestFuture(e.pid, req, time.Minute).Result()
		r, ok := v.(*partition.ProduceResponse)
		if err != nil || !ok || r.ErrorCode != int32(kerr.InvalidRequest.Code) {
			t.Fatalf("%v answered %v, %v; want INVALID_REQUEST", req, v, err)
		}
	}
}
