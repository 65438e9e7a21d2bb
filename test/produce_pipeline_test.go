package test

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/internal/testenv"
)

// These tests produce through meshka with several batches of a partition in
// flight upstream at once, while upstream moves leaders, refuses batches or
// drops meshka's connection, and then read upstream directly: every record
// must be there once, in the order it was produced.

// smallBatch caps the producer's record batches at a few dozen records,
// so a run makes many batches per partition and meshka has several in
// flight upstream at a time.
const smallBatch = 1 << 10

// seqProducer produces the sequence numbers 0, 1, 2, ... as 8-byte values,
// number i to partition i%parts, through meshka with a franz-go client,
// and records every callback.
type seqProducer struct {
	t     *testing.T
	cl    *kgo.Client
	topic string
	parts int32

	next  int          // the next number to produce; producer goroutine only
	acked atomic.Int64 // callbacks without error
	calls atomic.Int64 // callbacks in all
	mu    sync.Mutex   // guards errs and gaps
	errs  []error      // the first few callback errors
	nerrs atomic.Int64 // callback errors in all
	// gaps are the partitions where the producer was told of a gap in its
	// sequence numbers (OUT_OF_ORDER_SEQUENCE_NUMBER and kin). franz-go
	// then bumps its epoch, renumbers and goes on, so no callback fails,
	// but a transactional producer or one that stops on data loss would
	// fail. The producer's own sequence never has a gap: one it is told
	// of comes from meshka's retries overtaken by later batches.
	gaps []int32
}

// newSeqProducer makes the producer's client: meshka as its only broker,
// the manual partitioner, and opts.
func newSeqProducer(t *testing.T, env *testenv.Env, topic string, parts int32, opts ...kgo.Opt) *seqProducer {
	s := &seqProducer{t: t, topic: topic, parts: parts}
	opts = append([]kgo.Opt{
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerOnDataLossDetected(func(_ string, p int32) {
			s.mu.Lock()
			s.gaps = append(s.gaps, p)
			s.mu.Unlock()
		}),
	}, opts...)
	s.cl = env.Client(t, opts...)
	return s
}

// produce queues the next number; it blocks while the client's buffer is
// full.
func (s *seqProducer) produce(ctx context.Context) {
	i := s.next
	s.next++
	r := &kgo.Record{Topic: s.topic, Partition: int32(i) % s.parts, Value: binary.BigEndian.AppendUint64(nil, uint64(i))}
	s.cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
		s.calls.Add(1)
		if err != nil {
			s.nerrs.Add(1)
			s.mu.Lock()
			if len(s.errs) < 5 {
				s.errs = append(s.errs, err)
			}
			s.mu.Unlock()
			return
		}
		s.acked.Add(1)
	})
}

// finish flushes and fails the test for any callback error or a callback
// missing; it returns how many numbers were produced.
func (s *seqProducer) finish(ctx context.Context) int {
	s.t.Helper()
	if err := s.cl.Flush(ctx); err != nil {
		s.t.Fatalf("flush after %d records: %v", s.next, err)
	}
	if n := s.nerrs.Load(); n > 0 {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.t.Fatalf("%d of %d produce callbacks failed, first: %v", n, s.next, s.errs)
	}
	if c := s.calls.Load(); c != int64(s.next) {
		s.t.Fatalf("%d callbacks for %d records", c, s.next)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.gaps) > 0 {
		s.t.Errorf("upstream told the producer %d times of a gap in its sequence numbers (partitions %v): a later batch of a partition reached upstream before an earlier one meshka was sending again", len(s.gaps), s.gaps)
	}
	return s.next
}

// checkSequence reads topic straight from upstream and fails unless it
// holds exactly the numbers 0..n-1, each once, number i in partition
// i%parts, in increasing order within each partition.
func checkSequence(t *testing.T, ctx context.Context, env *testenv.Env, topic string, parts int32, n int) {
	t.Helper()
	direct := env.DirectClient(t)
	end := endOffsets(t, ctx, direct, topic)
	total, bad := int64(0), false
	for p := int32(0); p < parts; p++ {
		want := int64(n) / int64(parts)
		if int64(p) < int64(n)%int64(parts) {
			want++
		}
		if end[p] != want {
			t.Errorf("partition %d ends at offset %d, want %d records", p, end[p], want)
			bad = true
		}
		total += end[p]
	}
	if bad {
		t.Fatalf("upstream holds %d records for %d produced: lost or duplicated", total, n)
	}
	c := env.DirectClient(t, kgo.ConsumeTopics(topic), fromStart(), kgo.FetchMaxWait(100*time.Millisecond))
	got := consumeN(t, ctx, c, n)
	next := make(map[int32]int64, parts)
	for p := int32(0); p < parts; p++ {
		next[p] = int64(p)
	}
	for _, r := range got {
		if len(r.Value) != 8 {
			t.Fatalf("partition %d offset %d: value of %d bytes", r.Partition, r.Offset, len(r.Value))
		}
		v := int64(binary.BigEndian.Uint64(r.Value))
		if v != next[r.Partition] {
			t.Fatalf("partition %d offset %d holds %d, want %d: a gap, duplicate or reordering", r.Partition, r.Offset, v, next[r.Partition])
		}
		next[r.Partition] += int64(parts)
	}
}

// A non-idempotent producer with five requests in flight and no linger
// writes 50,000 records through meshka: upstream holds them in order, none
// lost or doubled, as meshka keeps several batches of a partition in
// flight on its ordered connection.
func TestProducePipelinedOrder(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, 2*time.Minute)
	const topic, parts, n = "pipelined", 3, 50_000
	createTopic(t, ctx, env.DirectClient(t), topic, parts, nil)
	var requests atomic.Int64
	env.Upstream.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		requests.Add(1)
		return nil, nil, false
	})
	s := newSeqProducer(t, env, topic, parts, kgo.DisableIdempotentWrite(), kgo.ProducerLinger(0), kgo.MaxProduceRequestsInflightPerBroker(5),
		kgo.ProducerBatchMaxBytes(smallBatch), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.MaxBufferedRecords(10_000))
	start := time.Now()
	for i := 0; i < n; i++ {
		s.produce(ctx)
	}
	s.finish(ctx)
	t.Logf("%d records in %v, %d Produce requests upstream", n, time.Since(start).Round(time.Millisecond), requests.Load())
	checkSequence(t, ctx, env, topic, parts, n)
}

// An idempotent producer writes through meshka while upstream moves the
// partitions' leaders from broker to broker under it: meshka re-sends what
// the old leader refused to the new one, in order, and the producer sees
// no error.
func TestProduceLeaderMoves(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, 2*time.Minute)
	const topic, parts, moves = "moving", 3, 6
	createTopic(t, ctx, env.DirectClient(t), topic, parts, nil)
	s := newSeqProducer(t, env, topic, parts, kgo.ProducerLinger(0), kgo.ProducerBatchMaxBytes(smallBatch), kgo.MaxBufferedRecords(5_000))

	stop := make(chan struct{})
	moved := make(chan error, 1)
	go func() {
		defer close(stop)
		for m := 0; m < moves; m++ {
			// Move only while records are flowing.
			base := s.acked.Load()
			for s.acked.Load() < base+1000 {
				if ctx.Err() != nil {
					moved <- ctx.Err()
					return
				}
				time.Sleep(2 * time.Millisecond)
			}
			part := int32(m % parts)
			from := env.Upstream.LeaderFor(topic, part)
			to := (from + 1) % 3
			if err := env.Upstream.MoveTopicPartition(topic, part, to); err != nil {
				moved <- err
				return
			}
			t.Logf("after %d acks: partition %d moved from broker %d to %d", s.acked.Load(), part, from, to)
		}
		moved <- nil
	}()
	// Keep producing until the moves are done, and a little after.
produce:
	for {
		select {
		case <-stop:
			break produce
		default:
			s.produce(ctx)
		}
	}
	for i := 0; i < 2000; i++ {
		s.produce(ctx)
	}
	if err := <-moved; err != nil {
		t.Fatalf("moving leaders: %v", err)
	}
	n := s.finish(ctx)
	t.Logf("%d records across %d leader moves", n, moves)
	checkSequence(t, ctx, env, topic, parts, n)
}

// Upstream answers NOT_LEADER_OR_FOLLOWER to five Produce requests, once
// as the producer starts and once mid-stream with batches in flight: meshka
// retries them in order and the producer sees no error.
func TestProduceNotLeaderFaults(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, 2*time.Minute)
	const topic, parts, n = "refused", 3, 5_000
	createTopic(t, ctx, env.DirectClient(t), topic, parts, nil)
	fault := func() *kfake.FaultHandle {
		return env.Upstream.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.NotLeaderForPartition, Count: 5})
	}
	s := newSeqProducer(t, env, topic, parts, kgo.ProducerLinger(0), kgo.ProducerBatchMaxBytes(smallBatch), kgo.MaxBufferedRecords(1_000))
	first := fault()
	var second *kfake.FaultHandle
	for i := 0; i < n; i++ {
		if i == n/2 {
			second = fault()
		}
		s.produce(ctx)
	}
	s.finish(ctx)
	for name, h := range map[string]*kfake.FaultHandle{"first": first, "second": second} {
		if hits := h.Hits(); hits != 5 {
			t.Fatalf("the %s fault answered %d requests, want 5", name, hits)
		}
	}
	checkSequence(t, ctx, env, topic, parts, n)
}

// Upstream drops meshka's produce connection under the 10th, 50th and
// 150th Produce request. The requests on the dropped connection carried
// idempotent batches, so meshka sends them again on a new connection, in
// order; upstream discards any it had appended by their sequence numbers,
// and the producer sees no error.
func TestProduceUpstreamConnectionDrop(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, 2*time.Minute)
	const topic, parts, n = "dropped", 3, 20_000
	createTopic(t, ctx, env.DirectClient(t), topic, parts, nil)
	var seen, dropped atomic.Int64
	env.Upstream.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		switch seen.Add(1) {
		case 10, 50, 150:
			dropped.Add(1)
			env.Upstream.KeepControl() // handled, but stays for the next drop
			return nil, errors.New("test drops the connection"), true
		}
		return nil, nil, false
	})
	s := newSeqProducer(t, env, topic, parts, kgo.ProducerLinger(0), kgo.ProducerBatchMaxBytes(smallBatch), kgo.MaxBufferedRecords(2_000))
	for i := 0; i < n; i++ {
		s.produce(ctx)
	}
	s.finish(ctx)
	t.Logf("%d Produce requests upstream, %d connections dropped", seen.Load(), dropped.Load())
	if d := dropped.Load(); d != 3 {
		t.Fatalf("upstream dropped %d connections, want 3: too few Produce requests (%d)", d, seen.Load())
	}
	checkSequence(t, ctx, env, topic, parts, n)
}

// wireSequences follows the Produce requests upstream reads from meshka on
// its sockets, before kfake handles them, and keeps the highest first
// sequence number of any batch of one partition of one topic.
type wireSequences struct {
	topic     string
	partition int32

	mu      sync.Mutex
	max     int32
	changed chan struct{} // closed, and replaced, whenever max grows
}

func newWireSequences(topic string, partition int32) *wireSequences {
	return &wireSequences{topic: topic, partition: partition, max: -1, changed: make(chan struct{})}
}

func (w *wireSequences) watch(c net.Conn) net.Conn { return &sequenceConn{Conn: c, w: w} }

// above waits until a batch with a first sequence above seq has been read,
// or ctx ends (false).
func (w *wireSequences) above(ctx context.Context, seq int32) bool {
	for {
		w.mu.Lock()
		max, changed := w.max, w.changed
		w.mu.Unlock()
		if max > seq {
			return true
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return false
		}
	}
}

func (w *wireSequences) request(frame []byte) {
	r := kbin.Reader{Src: frame}
	key, version := r.Int16(), r.Int16()
	r.Int32()          // correlation id
	r.NullableString() // client id
	if key != int16(kmsg.Produce) || !r.Ok() {
		return
	}
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(version)
	if req.IsFlexible() {
		kmsg.SkipTags(&r)
	}
	if req.ReadFrom(r.Src) != nil {
		return
	}
	if seq, ok := firstSequence(req, w.topic, w.partition); ok {
		w.mu.Lock()
		if seq > w.max {
			w.max = seq
			close(w.changed)
			w.changed = make(chan struct{})
		}
		w.mu.Unlock()
	}
}

// sequenceConn hands every whole request frame upstream reads to its
// wireSequences; the bytes themselves pass untouched.
type sequenceConn struct {
	net.Conn
	w   *wireSequences
	buf []byte
}

func (c *sequenceConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.buf = append(c.buf, b[:n]...)
	for len(c.buf) >= 4 {
		size := 4 + int(binary.BigEndian.Uint32(c.buf))
		if len(c.buf) < size {
			break
		}
		c.w.request(c.buf[4:size])
		c.buf = c.buf[size:]
	}
	return n, err
}

// firstSequence is the first sequence number of the request's batch for
// the topic's partition.
func firstSequence(req *kmsg.ProduceRequest, topic string, partition int32) (int32, bool) {
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			if rt.Topic != topic || rp.Partition != partition {
				continue
			}
			var b kmsg.RecordBatch
			if b.ReadFrom(rp.Records) != nil {
				return 0, false
			}
			return b.FirstSequence, true
		}
	}
	return 0, false
}

// Upstream holds one Produce request carrying a batch of partition 0 until
// meshka has written a later batch of partition 0 behind it on the same
// connection (seen on the wire), then refuses it with
// NOT_LEADER_OR_FOLLOWER. The later batches then find a gap upstream;
// meshka must send them again after the refused one rather than pass that
// gap on: the producer is never told of a sequence gap, and every record
// lands once, in order.
func TestProduceRefusedBatchKeepsSequence(t *testing.T) {
	const topic, parts, n = "refused-once", 3, 10_000
	wire := newWireSequences(topic, 0)
	env := testenv.StartWatching(t, wire.watch)
	ctx := timeout(t, time.Minute)
	createTopic(t, ctx, env.DirectClient(t), topic, parts, nil)
	// Partition 0 alone on its broker: every request on that connection is
	// partition 0's, so the one behind the held request is a later batch.
	for p, broker := range []int32{0, 1, 1} {
		if err := env.Upstream.MoveTopicPartition(topic, int32(p), broker); err != nil {
			t.Fatal(err)
		}
	}
	s := newSeqProducer(t, env, topic, parts, kgo.ProducerLinger(0), kgo.ProducerBatchMaxBytes(smallBatch), kgo.MaxBufferedRecords(2_000))
	var armed atomic.Bool
	var mu sync.Mutex
	refusedSeq := int32(-1)
	behind, retried := 0, false // requests of partition 0 after the refused one, before its retry
	env.Upstream.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		req := kreq.(*kmsg.ProduceRequest)
		seq, has0 := firstSequence(req, topic, 0)
		if !has0 || !armed.Load() {
			return nil, nil, false
		}
		mu.Lock()
		defer mu.Unlock()
		if refusedSeq >= 0 {
			switch {
			case seq == refusedSeq:
				retried = true
			case !retried && seq > refusedSeq:
				behind++
			}
			return nil, nil, false
		}
		refusedSeq = seq
		env.Upstream.KeepControl() // count what follows
		if !wire.above(ctx, seq) {
			t.Errorf("meshka wrote no batch of partition 0 behind the held one: %v", ctx.Err())
		}
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.NotLeaderForPartition.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	for i := 0; i < n; i++ {
		if i == n/4 {
			armed.Store(true) // once records are flowing, several batches deep
		}
		s.produce(ctx)
	}
	s.finish(ctx)
	mu.Lock()
	if refusedSeq < 0 {
		t.Fatal("no request for partition 0 was refused")
	}
	if behind == 0 || !retried {
		t.Fatalf("%d requests of partition 0 reached upstream behind the refused one before its retry (retried: %v); the scenario needs at least one", behind, retried)
	}
	mu.Unlock()
	checkSequence(t, ctx, env, topic, parts, n)
}
