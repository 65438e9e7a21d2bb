package partition_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/meshka/meshka/cluster"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/actors/partition"
	"github.com/meshka/meshka/internal/testbatch"
	"github.com/meshka/meshka/upstream"
)

// These tests run one partition actor in a real actor system, in front of
// a real upstream client and kfake cluster, and drive its produce pipeline
// into the corners a healthy upstream never reaches: a full queue, a full
// upstream connection, a broker that cannot be dialed, a dropped
// connection, a leader that is not elected, a topic that is gone.

const produceTopic = "produce"

type produceEnv struct {
	t       *testing.T
	ctx     context.Context
	cluster *kfake.Cluster
	up      *upstream.Client
	root    *actor.RootContext
	pid     *actor.PID
	// direct is a franz-go client of kfake, for what the test reads or
	// asks upstream itself.
	direct *kgo.Client
}

type produceOpts struct {
	dial     func(ctx context.Context, network, host string) (net.Conn, error)
	maxQueue int
	inFlight int
}

func startProduceEnv(t *testing.T, o produceOpts) *produceEnv {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(1, produceTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	up, err := upstream.New(upstream.Config{Brokers: c.ListenAddrs(), RequestTimeout: 10 * time.Second, Logger: quiet, Dialer: o.dial})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Close)
	direct, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(direct.Close)

	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
	t.Cleanup(system.Shutdown)
	cfg := partition.Config{Upstream: up, MaxQueue: o.maxQueue, MaxInFlight: o.inFlight, Logger: quiet}
	pid, err := system.Root.SpawnNamed(partition.Props(cfg), "partition-test")
	if err != nil {
		t.Fatal(err)
	}
	// The cluster sends this on activation; here the test stands in for it.
	system.Root.Send(pid, &cluster.Activate{Kind: partition.Kind, Identity: partition.Identity("up", produceTopic, 0)})
	return &produceEnv{t: t, ctx: ctx, cluster: c, up: up, root: system.Root, pid: pid, direct: direct}
}

// warm caches the partition's leader, as the Kafka handler's check does
// before a batch reaches the actor.
func (e *produceEnv) warm() {
	e.t.Helper()
	if _, err := e.up.Meta().Partition(e.ctx, produceTopic, 0); err != nil {
		e.t.Fatalf("metadata of %s/0: %v", produceTopic, err)
	}
}

func batchOf(values ...string) []byte {
	return testbatch.Encode(testbatch.NoProducer(), testbatch.Values(values...)...)
}

func produceArgs(records []byte) upstream.ProduceArgs {
	return upstream.ProduceArgs{Topic: produceTopic, Version: 9, Acks: -1, TimeoutMillis: 5000, Records: records}
}

// produce hands one batch of values to the actor, as the Kafka handler
// does, and returns where its answer comes.
func (e *produceEnv) produce(values ...string) <-chan upstream.ProduceResult {
	ch := make(chan upstream.ProduceResult, 1)
	f := e.root.RequestFuture(e.pid, partition.NewProduceRequest(produceArgs(batchOf(values...))), time.Minute)
	go func() {
		v, err := f.Result()
		if r, ok := v.(*partition.ProduceResponse); ok && err == nil {
			ch <- r.Result(0)
		}
	}()
	return ch
}

func (e *produceEnv) answer(ch <-chan upstream.ProduceResult) upstream.ProduceResult {
	e.t.Helper()
	select {
	case r := <-ch:
		return r
	case <-e.ctx.Done():
		e.t.Fatal("the partition actor never answered the batch")
		return upstream.ProduceResult{}
	}
}

// want fails the test unless the batch's answer carries code.
func (e *produceEnv) want(ch <-chan upstream.ProduceResult, code int16) upstream.ProduceResult {
	e.t.Helper()
	r := e.answer(ch)
	if r.ErrorCode != code {
		e.t.Fatalf("batch answered %v, want %v", kerr.ErrorForCode(r.ErrorCode), kerr.ErrorForCode(code))
	}
	return r
}

// unanswered fails the test if the batch has an answer already.
func (e *produceEnv) unanswered(ch <-chan upstream.ProduceResult, what string) {
	e.t.Helper()
	select {
	case r := <-ch:
		e.t.Fatalf("%s answered already: %v", what, kerr.ErrorForCode(r.ErrorCode))
	default:
	}
}

// endOffset is the partition's end offset straight from kfake.
func (e *produceEnv) endOffset() int64 {
	e.t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = produceTopic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	// Straight to the leader: the tests may have made Metadata for the
	// topic say otherwise.
	kresp, err := e.direct.Broker(int(e.cluster.LeaderFor(produceTopic, 0))).Request(e.ctx, req)
	resp, _ := kresp.(*kmsg.ListOffsetsResponse)
	if err != nil || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		e.t.Fatalf("end offset of %s/0: %v %+v", produceTopic, err, resp)
	}
	return resp.Topics[0].Partitions[0].Offset
}

// holdProduce makes kfake hold every Produce request until release (at the
// latest at cleanup); arrived is closed when the first one has arrived.
func (e *produceEnv) holdProduce() (arrived <-chan struct{}, release func()) {
	in, out := make(chan struct{}), make(chan struct{})
	var first, free sync.Once
	e.cluster.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		e.cluster.KeepControl()
		first.Do(func() { close(in) })
		<-out
		return nil, nil, false
	})
	release = func() { free.Do(func() { close(out) }) }
	e.t.Cleanup(release)
	return in, release
}

// metadataAnswers makes kfake answer the n-th Metadata request naming the
// topic (from 1) as answer says: with a topic error, or with the
// partition's error and no leader; ok false lets kfake answer it. The
// brokers and cluster are upstream's own, so clients keep routing.
func (e *produceEnv) metadataAnswers(answer func(n int) (topicErr, partitionErr int16, ok bool)) (asked *atomic.Int64) {
	e.t.Helper()
	mreq := kmsg.NewPtrMetadataRequest()
	real, err := mreq.RequestWith(e.ctx, e.direct)
	if err != nil {
		e.t.Fatal(err)
	}
	asked = new(atomic.Int64)
	e.cluster.ControlKey(int16(kmsg.Metadata), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		e.cluster.KeepControl()
		req := kreq.(*kmsg.MetadataRequest)
		if len(req.Topics) != 1 || req.Topics[0].Topic == nil || *req.Topics[0].Topic != produceTopic {
			return nil, nil, false
		}
		topicErr, partitionErr, ok := answer(int(asked.Add(1)))
		if !ok {
			return nil, nil, false
		}
		resp := req.ResponseKind().(*kmsg.MetadataResponse)
		resp.Brokers, resp.ClusterID, resp.ControllerID = real.Brokers, real.ClusterID, real.ControllerID
		rt := kmsg.NewMetadataResponseTopic()
		rt.Topic, rt.ErrorCode = kmsg.StringPtr(produceTopic), topicErr
		if topicErr == 0 {
			rp := kmsg.NewMetadataResponseTopicPartition()
			rp.ErrorCode, rp.Leader, rp.Replicas, rp.ISR = partitionErr, -1, []int32{0}, []int32{}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
		return resp, nil, true
	})
	return asked
}

// A batch that finds the partition's queue full is refused at once with
// REQUEST_TIMED_OUT, as a broker past its queue bound; the batches it
// found waiting go through in order.
func TestProduceQueueFull(t *testing.T) {
	e := startProduceEnv(t, produceOpts{maxQueue: 2, inFlight: 1})
	e.warm()
	arrived, release := e.holdProduce()
	first := e.produce("a")
	select {
	case <-arrived:
	case <-e.ctx.Done():
		t.Fatal("the first batch never reached upstream")
	}
	second := e.produce("b") // waits: one batch in flight at a time
	third := e.produce("c")  // finds two waiting or in flight: refused
	e.want(third, kerr.RequestTimedOut.Code)
	e.unanswered(first, "the batch upstream holds")
	e.unanswered(second, "the batch behind it")
	release()
	if r := e.want(first, 0); r.BaseOffset != 0 {
		t.Fatalf("first batch at offset %d, want 0", r.BaseOffset)
	}
	if r := e.want(second, 0); r.BaseOffset != 1 {
		t.Fatalf("second batch at offset %d, want 1", r.BaseOffset)
	}
	if end := e.endOffset(); end != 2 {
		t.Fatalf("upstream holds %d records, want the 2 accepted", end)
	}
}

// A batch that finds meshka's connection to the leader with a full queue
// (the connection is still being dialed, and others' batches fill it) is
// offered again until the connection takes it, and lands after them.
func TestProduceWaitsForFullConnection(t *testing.T) {
	var hold atomic.Bool
	dialed := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	e := startProduceEnv(t, produceOpts{dial: func(ctx context.Context, network, host string) (net.Conn, error) {
		if hold.Load() {
			once.Do(func() { close(dialed) })
			select {
			case <-release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		var d net.Dialer
		return d.DialContext(ctx, network, host)
	}})
	e.warm()
	leader, ok := e.up.Meta().CachedLeader(produceTopic, 0)
	if !ok {
		t.Fatal("no cached leader after warming")
	}
	// kgo's connections are up; the next dial is the produce connection's,
	// and it waits. The connection's writer holds the first batch; the
	// rest fill its queue until it refuses one.
	hold.Store(true)
	var filled sync.WaitGroup
	var fillErrs atomic.Int64
	done := func(r upstream.ProduceResult, err error) {
		if err != nil || r.ErrorCode != 0 {
			fillErrs.Add(1)
		}
		filled.Done()
	}
	fill := 0
	for {
		filled.Add(1)
		a := produceArgs(batchOf("fill"))
		if !e.up.SubmitProduce(leader, &a, done) {
			filled.Done()
			break
		}
		fill++
		if fill == 1 {
			select {
			case <-dialed:
			case <-e.ctx.Done():
				t.Fatal("the produce connection was never dialed")
			}
		}
	}
	// The queue is full and stays so while the dial waits: the actor's
	// batch is refused by the connection, and must be offered again.
	mine := e.produce("mine")
	close(release)
	if r := e.want(mine, 0); r.BaseOffset != int64(fill) {
		t.Fatalf("the batch landed at offset %d, want %d, after the %d that filled the connection", r.BaseOffset, fill, fill)
	}
	filled.Wait()
	if n := fillErrs.Load(); n != 0 {
		t.Fatalf("%d of the batches that filled the connection failed", n)
	}
}

// A batch written on a connection upstream drops cannot be sent again
// without risking a duplicate (it carries no producer id): the client is
// told NETWORK_EXCEPTION, a retriable error, and decides.
func TestProduceConnectionLostUnderPlainBatch(t *testing.T) {
	e := startProduceEnv(t, produceOpts{})
	e.warm()
	var produces atomic.Int64
	e.cluster.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		produces.Add(1)
		return nil, errors.New("test drops the connection"), true
	})
	e.want(e.produce("dropped"), kerr.NetworkException.Code)
	if n := produces.Load(); n != 1 {
		t.Fatalf("upstream got the batch %d times, want once: it must not be sent again", n)
	}
}

// A batch that never leaves meshka, because the leader cannot be dialed,
// is tried again, a few times; then the client is told
// NOT_LEADER_OR_FOLLOWER, so it refreshes its metadata and retries.
func TestProduceLeaderUnreachable(t *testing.T) {
	var refuse atomic.Bool
	var refused atomic.Int64
	e := startProduceEnv(t, produceOpts{dial: func(ctx context.Context, network, host string) (net.Conn, error) {
		if refuse.Load() {
			refused.Add(1)
			return nil, errors.New("test refuses the dial")
		}
		var d net.Dialer
		return d.DialContext(ctx, network, host)
	}})
	e.warm()
	refuse.Store(true) // kgo's connections are up: only the produce connection dials now
	e.want(e.produce("unsent"), kerr.NotLeaderForPartition.Code)
	if n := refused.Load(); n != 4 {
		t.Fatalf("%d dials, want 4: the first try and 3 more", n)
	}
	if end := e.endOffset(); end != 0 {
		t.Fatalf("upstream holds %d records, want none", end)
	}
}

// While upstream says the partition's leader is being elected, batches
// wait for it within their retries (the fix of 7ef92a2): once upstream
// names a leader, they go through, in order.
func TestProduceWaitsForLeaderElection(t *testing.T) {
	e := startProduceEnv(t, produceOpts{})
	asked := e.metadataAnswers(func(n int) (int16, int16, bool) {
		return 0, kerr.LeaderNotAvailable.Code, n <= 2
	})
	first, second := e.produce("a"), e.produce("b")
	if r := e.want(first, 0); r.BaseOffset != 0 {
		t.Fatalf("first batch at offset %d, want 0", r.BaseOffset)
	}
	if r := e.want(second, 0); r.BaseOffset != 1 {
		t.Fatalf("second batch at offset %d, want 1", r.BaseOffset)
	}
	if n := asked.Load(); n != 3 {
		t.Fatalf("%d metadata requests for the topic, want 3: two without a leader, one with", n)
	}
}

// A leader that is never elected: after its retries the batch goes back
// to the client as NOT_LEADER_OR_FOLLOWER, never sent upstream.
func TestProduceRetriesRunOut(t *testing.T) {
	e := startProduceEnv(t, produceOpts{})
	asked := e.metadataAnswers(func(int) (int16, int16, bool) { return 0, kerr.LeaderNotAvailable.Code, true })
	var produces atomic.Int64
	e.cluster.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		e.cluster.KeepControl()
		produces.Add(1)
		return nil, nil, false
	})
	e.want(e.produce("stuck"), kerr.NotLeaderForPartition.Code)
	if n := asked.Load(); n != 4 {
		t.Fatalf("%d metadata requests for the topic, want 4: one per try", n)
	}
	if n := produces.Load(); n != 0 {
		t.Fatalf("%d Produce requests reached upstream with no leader", n)
	}
}

// When upstream answers for the topic with an error that no wait cures
// (UNKNOWN_TOPIC_OR_PARTITION: it was deleted), every batch waiting gets
// that answer at once, as a broker would give it.
func TestProduceTopicGone(t *testing.T) {
	e := startProduceEnv(t, produceOpts{})
	asked := e.metadataAnswers(func(int) (int16, int16, bool) { return kerr.UnknownTopicOrPartition.Code, 0, true })
	chs := []<-chan upstream.ProduceResult{e.produce("a"), e.produce("b"), e.produce("c")}
	for _, ch := range chs {
		e.want(ch, kerr.UnknownTopicOrPartition.Code)
	}
	// One answer serves every batch then waiting; a batch that came after
	// it asks again. None is asked about twice: the error is final.
	if n := asked.Load(); n < 1 || n > int64(len(chs)) {
		t.Fatalf("%d metadata requests for the topic, want 1 to %d", n, len(chs))
	}
	if end := e.endOffset(); end != 0 {
		t.Fatalf("upstream holds %d records, want none", end)
	}
}

// A partition actor whose node no longer owns it finishes what it had
// accepted, with upstream's own answers (an error would make clients send
// appended batches again), and only then stops.
func TestProduceRelinquishedFinishesThenStops(t *testing.T) {
	e := startProduceEnv(t, produceOpts{inFlight: 1})
	e.warm()
	arrived, release := e.holdProduce()
	first := e.produce("a")
	select {
	case <-arrived:
	case <-e.ctx.Done():
		t.Fatal("the first batch never reached upstream")
	}
	second := e.produce("b") // queued behind the one upstream holds
	stopped := make(chan struct{})
	target := e.pid
	e.root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		switch c.Message().(type) {
		case *actor.Started:
			c.Watch(target)
		case *actor.Terminated:
			close(stopped)
		}
	}))
	e.root.Send(e.pid, &cluster.Relinquish{})
	e.unanswered(first, "the batch upstream holds")
	select {
	case <-stopped:
		t.Fatal("the relinquished actor stopped with a batch upstream and one queued")
	default:
	}
	release()
	if r := e.want(first, 0); r.BaseOffset != 0 {
		t.Fatalf("first batch at offset %d, want 0", r.BaseOffset)
	}
	if r := e.want(second, 0); r.BaseOffset != 1 {
		t.Fatalf("second batch at offset %d, want 1", r.BaseOffset)
	}
	select {
	case <-stopped:
	case <-e.ctx.Done():
		t.Fatal("the relinquished actor did not stop once its batches were answered")
	}
}
