package upstream

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/internal/testbatch"
)

// These tests drive SubmitProduce against a real in-process broker (kfake)
// with record batches built here, and read what upstream appended back with
// a franz-go consumer straight to kfake.

// testBatch encodes a magic 2 record batch as a producer without a producer
// id sends it: offsets from 0, no sequence, one record per value.
func testBatch(values ...string) []byte {
	recs := testbatch.Values(values...)
	for i := range recs {
		recs[i].TimestampDelta64 = int64(i)
	}
	hdr := testbatch.NoProducer()
	hdr.FirstTimestamp = time.Now().UnixMilli()
	hdr.MaxTimestamp = hdr.FirstTimestamp + int64(len(values)-1)
	return testbatch.Encode(hdr, recs...)
}

// pipeEnv is a 3-broker kfake cluster and an upstream Client in front of it.
type pipeEnv struct {
	t       *testing.T
	cluster *kfake.Cluster
	c       *Client
	close   func()    // closes c once; also at cleanup
	direct  []kgo.Opt // what a client straight to kfake needs (TLS, SASL)
}

func startPipeEnv(t *testing.T, partitions int32, topics ...string) *pipeEnv {
	t.Helper()
	return startPipeEnvWith(t, nil, partitions, topics...)
}

// startPipeEnvWith is startPipeEnv with the client's configuration changed
// by adjust (nil: none).
func startPipeEnvWith(t *testing.T, adjust func(*Config), partitions int32, topics ...string) *pipeEnv {
	t.Helper()
	return startPipeEnvOpts(t, nil, adjust, partitions, topics...)
}

// startPipeEnvOpts is startPipeEnvWith with options for kfake.
func startPipeEnvOpts(t *testing.T, upstreamOpts []kfake.Opt, adjust func(*Config), partitions int32, topics ...string) *pipeEnv {
	t.Helper()
	cluster, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(3), kfake.SeedTopics(partitions, topics...)}, upstreamOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := Config{Brokers: cluster.ListenAddrs(), RequestTimeout: 10 * time.Second, Logger: log}
	if adjust != nil {
		adjust(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	e := &pipeEnv{t: t, cluster: cluster, c: c, close: func() { once.Do(c.Close) }}
	t.Cleanup(e.close)
	return e
}

// leader asks upstream (through the client's metadata cache, which also
// learns the brokers' addresses) which broker leads the partition.
func (e *pipeEnv) leader(ctx context.Context, topic string, partition int32) int32 {
	e.t.Helper()
	e.c.Meta().Invalidate(topic)
	pm, err := e.c.Meta().Partition(ctx, topic, partition)
	if err != nil {
		e.t.Fatalf("metadata for %s/%d: %v", topic, partition, err)
	}
	if want := e.cluster.LeaderFor(topic, partition); pm.Leader != want {
		e.t.Fatalf("%s/%d: metadata names leader %d, kfake says %d", topic, partition, pm.Leader, want)
	}
	return pm.Leader
}

// readLog reads a partition from its start to its end offset, straight
// from kfake.
func (e *pipeEnv) readLog(ctx context.Context, topic string, partition int32) []*kgo.Record {
	e.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(e.cluster.ListenAddrs()...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(0)}}),
		kgo.FetchMaxWait(100 * time.Millisecond)}, e.direct...)...)
	if err != nil {
		e.t.Fatal(err)
	}
	defer cl.Close()
	endOffset := func() int64 {
		ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
		if err != nil {
			e.t.Fatalf("end offsets of %s: %v", topic, err)
		}
		end, ok := ends.Lookup(topic, partition)
		if !ok || end.Err != nil {
			e.t.Fatalf("end offset of %s/%d: %v", topic, partition, end.Err)
		}
		return end.Offset
	}
	// A request upstream was still holding may land while the log is
	// read: read on to the end as it is once the records are in.
	var out []*kgo.Record
	for end := endOffset(); ; {
		for int64(len(out)) < end {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				e.t.Fatalf("read %d of %d records of %s/%d: %v", len(out), end, topic, partition, ctx.Err())
			}
			fs.EachError(func(t string, p int32, err error) { e.t.Fatalf("fetch %s/%d: %v", t, p, err) })
			out = append(out, fs.Records()...)
		}
		again := endOffset()
		if int64(len(out)) > again {
			e.t.Fatalf("read %d records of %s/%d, end offset is %d", len(out), topic, partition, again)
		}
		if again == end {
			return out
		}
		end = again
	}
}

// holdFirstProduce makes upstream hold the first Produce request it gets
// until release is called (at the latest at cleanup); arrived is closed
// when that request has arrived. While it is held kfake handles nothing
// else, so everything meshka writes behind it waits unanswered. The
// request is then handled as usual.
func (e *pipeEnv) holdFirstProduce() (arrived <-chan struct{}, release func()) {
	in, out := make(chan struct{}), make(chan struct{})
	var hold, free sync.Once
	e.cluster.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		hold.Do(func() {
			close(in)
			<-out
		})
		return nil, nil, false
	})
	release = func() { free.Do(func() { close(out) }) }
	e.t.Cleanup(release)
	return in, release
}

// wire sits between the client and kfake on every connection the client
// dials. On a produce pipe's connection (its first request is a Produce;
// kgo's connections start with ApiVersions) it counts the requests written
// and can break the connection the ways a broker or network can: fail the
// next write, or change the next answer on its way back. Everything else
// passes untouched, so kfake still does all of the work.
type wire struct {
	requests atomic.Int64  // Produce requests written on pipe connections
	pipes    atomic.Int64  // pipe connections dialed
	closed   chan struct{} // a pipe connection was closed by the client, once per close

	mu        sync.Mutex
	failWrite error                     // the next write on a pipe connection fails with this
	answer    func(frame []byte) []byte // rewrites the next answer frame on a pipe connection
}

func newWire() *wire { return &wire{closed: make(chan struct{}, 64)} }

func (w *wire) dial(ctx context.Context, network, host string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, host)
	if err != nil {
		return nil, err
	}
	return &wireConn{Conn: conn, w: w, known: make(chan struct{}), done: make(chan struct{})}, nil
}

// onNextWrite makes the next write on a pipe connection fail with err.
func (w *wire) onNextWrite(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.failWrite = err
}

// onNextAnswer makes rewrite replace the next whole answer frame (its size
// prefix included) that a pipe connection reads.
func (w *wire) onNextAnswer(rewrite func(frame []byte) []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.answer = rewrite
}

func (w *wire) takeWriteFault() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	err := w.failWrite
	w.failWrite = nil
	return err
}

func (w *wire) takeAnswerFault() func([]byte) []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	f := w.answer
	w.answer = nil
	return f
}

// awaitClose waits for the client to close a pipe connection.
func (w *wire) awaitClose(ctx context.Context, t *testing.T) {
	t.Helper()
	select {
	case <-w.closed:
	case <-ctx.Done():
		t.Fatal("the produce connection was not closed")
	}
}

type wireConn struct {
	net.Conn
	w *wire

	mu         sync.Mutex
	head       []byte // the current request's size and key, while incomplete
	left       int    // bytes of the current request still to come
	seen, pipe bool
	known      chan struct{} // closed once the first request's key is seen
	done       chan struct{} // closed by Close
	closeOnce  sync.Once

	in, out []byte // answer bytes read and not yet a whole frame; bytes ready for Read
}

// Write follows the byte stream request by request (a size, then the key),
// however the writes split it.
func (c *wireConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	if c.pipe {
		if err := c.w.takeWriteFault(); err != nil {
			c.mu.Unlock()
			return 0, err
		}
	}
	for rest := b; len(rest) > 0; {
		if c.left > 0 {
			k := min(c.left, len(rest))
			c.left -= k
			rest = rest[k:]
			continue
		}
		k := min(6-len(c.head), len(rest))
		c.head = append(c.head, rest[:k]...)
		rest = rest[k:]
		if len(c.head) < 6 {
			continue
		}
		c.left = int(binary.BigEndian.Uint32(c.head)) - 2
		key := int16(binary.BigEndian.Uint16(c.head[4:]))
		c.head = c.head[:0]
		if !c.seen {
			c.seen, c.pipe = true, key == int16(kmsg.Produce)
			if c.pipe {
				c.w.pipes.Add(1)
			}
			close(c.known)
		}
		if c.pipe {
			c.w.requests.Add(1)
		}
	}
	c.mu.Unlock()
	return c.Conn.Write(b)
}

// Read hands over answers whole frame by whole frame on a pipe connection,
// so a fault can replace one; other connections read straight through. A
// pipe's reader starts before anything is written, so Read waits until the
// first request says what the connection is.
func (c *wireConn) Read(b []byte) (int, error) {
	select {
	case <-c.known:
	case <-c.done:
		return 0, net.ErrClosed
	}
	c.mu.Lock()
	pipe := c.pipe
	c.mu.Unlock()
	if !pipe {
		return c.Conn.Read(b)
	}
	buf := make([]byte, 64<<10)
	for len(c.out) == 0 {
		n, err := c.Conn.Read(buf)
		c.in = append(c.in, buf[:n]...)
		for len(c.in) >= 4 {
			size := 4 + int(binary.BigEndian.Uint32(c.in))
			if len(c.in) < size {
				break
			}
			frame := c.in[:size:size]
			if f := c.w.takeAnswerFault(); f != nil {
				frame = f(frame)
			}
			c.out = append(c.out, frame...)
			c.in = c.in[size:]
		}
		if len(c.out) == 0 && err != nil {
			return 0, err
		}
	}
	n := copy(b, c.out)
	c.out = c.out[n:]
	return n, nil
}

func (c *wireConn) Close() error {
	c.mu.Lock()
	pipe := c.pipe
	c.mu.Unlock()
	c.closeOnce.Do(func() {
		close(c.done)
		if pipe {
			c.w.closed <- struct{}{}
		}
	})
	return c.Conn.Close()
}

// submit hands a batch over as a partition actor does: while the pipe's
// queue is full SubmitProduce refuses it without calling done, and it is
// offered again shortly.
func submit(ctx context.Context, c *Client, leader int32, a *ProduceArgs, done func(ProduceResult, error)) error {
	for !c.SubmitProduce(leader, a, done) {
		if ctx.Err() != nil {
			return fmt.Errorf("%s/%d: the pipe's queue stayed full: %w", a.Topic, a.Partition, ctx.Err())
		}
		time.Sleep(100 * time.Microsecond)
	}
	return nil
}

func (e *pipeEnv) submit(ctx context.Context, leader int32, a *ProduceArgs, done func(ProduceResult, error)) {
	e.t.Helper()
	if err := submit(ctx, e.c, leader, a, done); err != nil {
		e.t.Fatal(err)
	}
}

// results counts every done callback of a set of submissions, so a lost
// or repeated callback fails the test.
type results struct {
	mu      sync.Mutex
	calls   []int
	res     []ProduceResult
	errs    []error
	pending int
	all     chan struct{}
}

func newResults(n int) *results {
	return &results{calls: make([]int, n), res: make([]ProduceResult, n), errs: make([]error, n), pending: n, all: make(chan struct{})}
}

func (r *results) done(i int) func(ProduceResult, error) {
	return func(res ProduceResult, err error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.calls[i]++
		if r.calls[i] > 1 {
			return // reported by check
		}
		r.res[i], r.errs[i] = res, err
		if r.pending--; r.pending == 0 {
			close(r.all)
		}
	}
}

// wait fails the test unless every submission gets its callback before
// ctx ends.
func (r *results) wait(ctx context.Context, t *testing.T) {
	t.Helper()
	select {
	case <-r.all:
	case <-ctx.Done():
		r.mu.Lock()
		defer r.mu.Unlock()
		var missing []int
		for i, n := range r.calls {
			if n == 0 && len(missing) < 10 {
				missing = append(missing, i)
			}
		}
		t.Fatalf("%d of %d submissions got no callback (first: %v): %v", r.pending, len(r.calls), missing, ctx.Err())
	}
}

// checkOnce fails the test for any callback made more than once. Call it
// after the client is closed, when no callback can come any more.
func (r *results) checkOnce(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, n := range r.calls {
		if n != 1 {
			t.Errorf("submission %d: done called %d times, want once", i, n)
		}
	}
}

func value(partition int32, i int) string { return fmt.Sprintf("%d-%06d", partition, i) }

func args(topic string, partition int32, version int16, records []byte) *ProduceArgs {
	return &ProduceArgs{Topic: topic, Partition: partition, Version: version, Acks: -1, TimeoutMillis: 5000, Records: records}
}

// Batches of one partition submitted back to back go five requests at a
// time on one connection and are appended in submission order: each
// answer's base offset is exactly the count of records submitted before
// it, and the log reads back in order.
func TestPipeKeepsOrderWithManyInFlight(t *testing.T) {
	const topic, n = "order", 2000
	w := newWire()
	// The writes counted when the writer first finds every slot taken.
	full := make(chan int64, 1)
	e := startPipeEnvWith(t, func(c *Config) {
		c.Dialer = w.dial
		c.slotWait = func(int32) {
			select {
			case full <- w.requests.Load():
			default:
			}
		}
	}, 1, topic)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	leader := e.leader(ctx, topic, 0)
	arrived, release := e.holdFirstProduce()

	r := newResults(n)
	want := make([]int64, n) // base offset of each batch
	var values []string
	for i := 0; i < n; i++ {
		// One to three records per batch, so base offsets are not the index.
		var vs []string
		for j := 0; j <= i%3; j++ {
			vs = append(vs, fmt.Sprintf("%06d/%d", i, j))
		}
		want[i] = int64(len(values))
		values = append(values, vs...)
		e.submit(ctx, leader, args(topic, 0, 9, testBatch(vs...)), r.done(i))
	}

	// Upstream holds the first request unanswered: the pipe writes four
	// more behind it, and then waits for a slot with the next one ready.
	select {
	case <-arrived:
	case <-ctx.Done():
		t.Fatal("no Produce request reached upstream")
	}
	select {
	case got := <-full:
		if got != pipeInFlight {
			t.Fatalf("%d requests written when the writer first waited for a slot, want %d in flight", got, pipeInFlight)
		}
	case <-ctx.Done():
		t.Fatalf("the writer never waited for a slot; %d requests written while the first is unanswered", w.requests.Load())
	}
	release()

	r.wait(ctx, t)
	for i := 0; i < n; i++ {
		if r.errs[i] != nil || r.res[i].ErrorCode != 0 {
			t.Fatalf("batch %d: err %v, error code %d", i, r.errs[i], r.res[i].ErrorCode)
		}
		if r.res[i].BaseOffset != want[i] {
			t.Fatalf("batch %d appended at offset %d, want %d: batches were reordered", i, r.res[i].BaseOffset, want[i])
		}
	}
	if got := w.requests.Load(); got != n {
		t.Fatalf("%d requests for %d batches of one partition, want one each", got, n)
	}
	got := e.readLog(ctx, topic, 0)
	if len(got) != len(values) {
		t.Fatalf("log holds %d records, want %d", len(got), len(values))
	}
	for i, rec := range got {
		if string(rec.Value) != values[i] {
			t.Fatalf("record at offset %d is %q, want %q", rec.Offset, rec.Value, values[i])
		}
	}
	e.close()
	r.checkOnce(t)
}

// Batches of six partitions (two topics) on one broker, submitted
// concurrently, are merged into shared Produce requests, and each
// partition's batches are still appended in its own submission order.
func TestPipeMergesPartitionsInOrder(t *testing.T) {
	const rounds = 500
	topics := []string{"merge-a", "merge-b"}
	e := startPipeEnv(t, 3, topics...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Every partition on broker 1, so all go through one pipe.
	for _, topic := range topics {
		for p := int32(0); p < 3; p++ {
			if err := e.cluster.MoveTopicPartition(topic, p, 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	type tp struct {
		topic string
		p     int32
	}
	var tps []tp
	for _, topic := range topics {
		for p := int32(0); p < 3; p++ {
			if l := e.leader(ctx, topic, p); l != 1 {
				t.Fatalf("%s/%d led by %d after the move to 1", topic, p, l)
			}
			tps = append(tps, tp{topic, p})
		}
	}

	var requests, merged, maxParts atomic.Int64
	e.cluster.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		req := kreq.(*kmsg.ProduceRequest)
		parts := 0
		for _, rt := range req.Topics {
			parts += len(rt.Partitions)
		}
		requests.Add(1)
		if parts > 1 {
			merged.Add(1)
		}
		if int64(parts) > maxParts.Load() {
			maxParts.Store(int64(parts)) // control functions run one at a time
		}
		return nil, nil, false
	})

	// Upstream holds the first request until every batch is queued, so
	// batches of different partitions wait together whatever the timing.
	arrived, release := e.holdFirstProduce()

	rs := make([]*results, len(tps))
	var wg sync.WaitGroup
	for k, x := range tps {
		rs[k] = newResults(rounds)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				if err := submit(ctx, e.c, 1, args(x.topic, x.p, 8, testBatch(value(x.p, i))), rs[k].done(i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case <-arrived:
	case <-ctx.Done():
		t.Fatal("no Produce request reached upstream")
	}
	release()
	for k, x := range tps {
		rs[k].wait(ctx, t)
		for i := 0; i < rounds; i++ {
			if err, code := rs[k].errs[i], rs[k].res[i].ErrorCode; err != nil || code != 0 {
				t.Fatalf("%s/%d batch %d: err %v, error code %d", x.topic, x.p, i, err, code)
			}
			if off := rs[k].res[i].BaseOffset; off != int64(i) {
				t.Fatalf("%s/%d batch %d appended at offset %d, want %d", x.topic, x.p, i, off, i)
			}
		}
		got := e.readLog(ctx, x.topic, x.p)
		if len(got) != rounds {
			t.Fatalf("%s/%d holds %d records, want %d", x.topic, x.p, len(got), rounds)
		}
		for i, rec := range got {
			if string(rec.Value) != value(x.p, i) {
				t.Fatalf("%s/%d offset %d is %q, want %q", x.topic, x.p, rec.Offset, rec.Value, value(x.p, i))
			}
		}
	}
	t.Logf("%d batches in %d Produce requests, %d of them merged, at most %d partitions in one",
		rounds*len(tps), requests.Load(), merged.Load(), maxParts.Load())
	if merged.Load() == 0 {
		t.Fatal("no Produce request carried more than one partition")
	}
	if requests.Load() >= int64(rounds*len(tps)) {
		t.Fatalf("%d requests for %d batches: nothing was merged", requests.Load(), rounds*len(tps))
	}
	e.close()
	for _, r := range rs {
		r.checkOnce(t)
	}
}

// Batches of six partitions queued one after another in turn, while
// upstream holds the first request, go six to a request: one batch of
// each partition, in each partition's order.
func TestPipeMergesWaitingPartitions(t *testing.T) {
	const topic, parts, rounds = "turns", 6, 300
	e := startPipeEnv(t, parts, topic)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for p := int32(0); p < parts; p++ {
		if err := e.cluster.MoveTopicPartition(topic, p, 2); err != nil {
			t.Fatal(err)
		}
	}
	for p := int32(0); p < parts; p++ {
		if l := e.leader(ctx, topic, p); l != 2 {
			t.Fatalf("%s/%d led by %d after the move to 2", topic, p, l)
		}
	}
	var sizes []int // partitions per request, in arrival order
	var mu sync.Mutex
	e.cluster.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		req := kreq.(*kmsg.ProduceRequest)
		seen := make(map[int32]bool)
		for _, rt := range req.Topics {
			for _, rp := range rt.Partitions {
				if seen[rp.Partition] {
					t.Errorf("partition %d twice in one request", rp.Partition)
				}
				seen[rp.Partition] = true
			}
		}
		mu.Lock()
		sizes = append(sizes, len(seen))
		mu.Unlock()
		return nil, nil, false
	})
	arrived, release := e.holdFirstProduce()

	rs := make([]*results, parts)
	for p := range rs {
		rs[p] = newResults(rounds)
	}
	for i := 0; i < rounds; i++ {
		for p := int32(0); p < parts; p++ {
			e.submit(ctx, 2, args(topic, p, 9, testBatch(value(p, i))), rs[p].done(i))
		}
	}
	select {
	case <-arrived:
	case <-ctx.Done():
		t.Fatal("no Produce request reached upstream")
	}
	release()
	for p := int32(0); p < parts; p++ {
		r := rs[p]
		r.wait(ctx, t)
		for i := 0; i < rounds; i++ {
			if err, code := r.errs[i], r.res[i].ErrorCode; err != nil || code != 0 {
				t.Fatalf("%s/%d batch %d: err %v, error code %d", topic, p, i, err, code)
			}
			if off := r.res[i].BaseOffset; off != int64(i) {
				t.Fatalf("%s/%d batch %d appended at offset %d, want %d", topic, p, i, off, i)
			}
		}
	}
	mu.Lock()
	full := 0
	for _, n := range sizes {
		if n == parts {
			full++
		}
	}
	t.Logf("%d batches in %d requests, %d of them with all %d partitions", parts*rounds, len(sizes), full, parts)
	// The first five requests are written before the queue fills; every
	// later one finds all six partitions waiting in turn.
	if len(sizes) > rounds+pipeInFlight {
		t.Errorf("%d requests for %d rounds of %d partitions: waiting batches were not merged", len(sizes), rounds, parts)
	}
	mu.Unlock()
	e.close()
	for _, r := range rs {
		r.checkOnce(t)
	}
}

// While upstream holds the first request, the pipe fills: five requests
// on the connection, up to pipeCarry calls taken ahead, the rest queued. Then
// SubmitProduce refuses batches, at once and without calling their done;
// the accepted ones all go through, in order, once upstream answers.
func TestPipeRefusesWhenQueueFull(t *testing.T) {
	const topic = "full"
	e := startPipeEnv(t, 1, topic)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	leader := e.leader(ctx, topic, 0)
	arrived, release := e.holdFirstProduce()

	const most = pipeQueue + pipeInFlight + pipeCarry
	r := newResults(most + 1)
	accepted, refused := 0, 0
	for refused < 100 {
		if accepted > most {
			t.Fatalf("%d batches accepted while upstream answers nothing; the queue holds %d", accepted, pipeQueue)
		}
		if ctx.Err() != nil {
			t.Fatalf("still accepting after %d batches: %v", accepted, ctx.Err())
		}
		if e.c.SubmitProduce(leader, args(topic, 0, 9, testBatch(value(0, accepted))), r.done(accepted)) {
			accepted++
			continue
		}
		if accepted < pipeQueue {
			t.Fatalf("refused after %d batches, before the queue of %d was full", accepted, pipeQueue)
		}
		refused++
	}
	select {
	case <-arrived:
	case <-ctx.Done():
		t.Fatal("no Produce request reached upstream")
	}
	release()

	// The refused submissions used index accepted; it has no callback.
	r.mu.Lock()
	r.pending -= len(r.calls) - accepted
	if r.pending == 0 {
		close(r.all)
	}
	r.mu.Unlock()
	r.wait(ctx, t)
	for i := 0; i < accepted; i++ {
		if err, code := r.errs[i], r.res[i].ErrorCode; err != nil || code != 0 {
			t.Fatalf("batch %d: err %v, error code %d", i, err, code)
		}
		if off := r.res[i].BaseOffset; off != int64(i) {
			t.Fatalf("batch %d appended at %d, want %d", i, off, i)
		}
	}
	e.close()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := accepted; i < len(r.calls); i++ {
		if r.calls[i] != 0 {
			t.Fatalf("a refused submission (index %d) got %d callbacks", i, r.calls[i])
		}
	}
	for i := 0; i < accepted; i++ {
		if r.calls[i] != 1 {
			t.Errorf("submission %d: done called %d times, want once", i, r.calls[i])
		}
	}
}

// Upstream closes the produce connection under the 10th request: that
// request and those written behind it fail (and an earlier one whose
// answer the close lost), every callback comes exactly once, nothing
// failed is sent again, and later batches go through on a new connection.
func TestPipeConnectionLoss(t *testing.T) {
	const topic, n, cutAt = "cut", 300, 10
	e := startPipeEnv(t, 1, topic)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	leader := e.leader(ctx, topic, 0)

	var seen atomic.Int64
	e.cluster.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		if seen.Add(1) == cutAt {
			return nil, errors.New("test closes the connection"), true // handled: dropped after this
		}
		return nil, nil, false
	})

	r := newResults(n + 1)
	for i := 0; i < n; i++ {
		e.submit(ctx, leader, args(topic, 0, 9, testBatch(value(0, i))), r.done(i))
	}
	// Wait for all but the last slot, then send one more on what must be a
	// healthy connection.
	for {
		r.mu.Lock()
		left := r.pending
		r.mu.Unlock()
		if left == 1 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("%d of %d submissions got no callback: %v", left-1, n, ctx.Err())
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.submit(ctx, leader, args(topic, 0, 9, testBatch(value(0, n))), r.done(n))
	r.wait(ctx, t)

	if seen.Load() < cutAt {
		t.Fatalf("upstream saw %d Produce requests, the cut is at %d", seen.Load(), cutAt)
	}
	var failed, notSent, okAfter int
	firstFail := -1
	last := int64(-1)
	inLog := make(map[string]int64)  // value to the offset upstream gave it
	unknown := make(map[string]bool) // failed on the connection: fate unknown
	for i := 0; i <= n; i++ {
		if err := r.errs[i]; err != nil {
			failed++
			if errors.Is(err, ErrNotSent) {
				notSent++
			} else {
				unknown[value(0, i)] = true
			}
			if firstFail < 0 {
				firstFail = i
				t.Logf("batch %d failed first: %v", i, err)
			}
			continue
		}
		res := r.res[i]
		if res.ErrorCode != 0 {
			t.Fatalf("batch %d: error code %d", i, res.ErrorCode)
		}
		if res.BaseOffset <= last {
			t.Fatalf("batch %d appended at %d, after a later-submitted batch at %d", i, res.BaseOffset, last)
		}
		last = res.BaseOffset
		inLog[value(0, i)] = res.BaseOffset
		if firstFail >= 0 {
			okAfter++
		}
	}
	t.Logf("%d batches failed (%d as not sent), %d succeeded after the first failure", failed, notSent, okAfter)
	if failed == 0 {
		t.Fatal("no batch failed though upstream closed the connection under one")
	}
	if failed > 5 {
		// At most the cut request and the four in flight behind it were
		// on the connection; the rest wait for a new one.
		t.Fatalf("%d batches failed; only the requests on the closed connection may", failed)
	}
	if okAfter == 0 {
		t.Fatal("no batch succeeded after the connection was lost")
	}
	if r.errs[n] != nil {
		t.Fatalf("batch submitted after the loss: %v", r.errs[n])
	}
	// The log holds every batch reported appended, at its offset; a batch
	// that failed on the connection may be there too (upstream may have
	// appended it before the answer was lost with the connection), once;
	// one reported as not sent is not. A failed batch is never sent again
	// behind the caller's back, so no record is there twice.
	got := e.readLog(ctx, topic, 0)
	seenValues := make(map[string]bool, len(got))
	for _, rec := range got {
		v := string(rec.Value)
		if seenValues[v] {
			t.Fatalf("record %q is in the log twice: a failed batch was sent again", v)
		}
		seenValues[v] = true
		if off, ok := inLog[v]; ok {
			if off != rec.Offset {
				t.Fatalf("record %q at offset %d, reported at %d", v, rec.Offset, off)
			}
			continue
		}
		if !unknown[v] {
			t.Fatalf("record %q at offset %d was neither reported appended nor failed on the connection", v, rec.Offset)
		}
	}
	for v, off := range inLog {
		if !seenValues[v] {
			t.Fatalf("record %q was reported appended at %d but is not in the log", v, off)
		}
	}
	e.close()
	r.checkOnce(t)
}

// After Close, SubmitProduce accepts every batch, never blocks, and
// answers each with an error wrapping ErrNotSent.
func TestPipeSubmitAfterClose(t *testing.T) {
	const topic = "closed"
	e := startPipeEnv(t, 1, topic)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	leader := e.leader(ctx, topic, 0)
	// Open the pipe first, so Close has one to stop.
	r := newResults(1)
	e.submit(ctx, leader, args(topic, 0, 9, testBatch("before")), r.done(0))
	r.wait(ctx, t)
	if r.errs[0] != nil || r.res[0].ErrorCode != 0 {
		t.Fatalf("before close: err %v, error code %d", r.errs[0], r.res[0].ErrorCode)
	}
	e.close()

	const n = 5000 // more than a pipe's queue holds
	after := newResults(n)
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		for i := 0; i < n; i++ {
			// Brokers with and without a pipe before the close.
			if !e.c.SubmitProduce(int32(i%4), args(topic, 0, 9, testBatch("after")), after.done(i)) {
				t.Errorf("submission %d after close refused as if the queue were full", i)
			}
		}
	}()
	select {
	case <-returned:
	case <-ctx.Done():
		t.Fatal("SubmitProduce blocked after Close")
	}
	after.wait(ctx, t)
	for i, err := range after.errs {
		if !errors.Is(err, ErrNotSent) {
			t.Fatalf("submission %d after close: err %v, want one wrapping ErrNotSent", i, err)
		}
	}
	after.checkOnce(t)
}

// Close with batches queued and in flight: every callback comes exactly
// once, and a batch reported as not sent is not in the log. Upstream holds
// the first request until Close has returned, so that request has left
// meshka when the pipe stops.
func TestPipeCloseWithBatchesInFlight(t *testing.T) {
	const topic, n = "closing", 1000
	e := startPipeEnv(t, 1, topic)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	leader := e.leader(ctx, topic, 0)

	arrived, release := e.holdFirstProduce()

	r := newResults(n)
	for i := 0; i < n; i++ {
		e.submit(ctx, leader, args(topic, 0, 9, testBatch(value(0, i))), r.done(i))
	}
	select {
	case <-arrived:
	case <-ctx.Done():
		t.Fatal("no Produce request reached upstream")
	}
	closed := make(chan struct{})
	go func() {
		e.close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-ctx.Done():
		t.Fatal("Close did not return while upstream held a request")
	}
	r.wait(ctx, t)
	release()
	r.checkOnce(t)

	got := e.readLog(ctx, topic, 0)
	logged := make(map[string]bool, len(got))
	for _, rec := range got {
		logged[string(rec.Value)] = true
	}
	var appended, notSent, failed int
	for i, err := range r.errs {
		v := value(0, i)
		switch {
		case err == nil:
			appended++
			if !logged[v] {
				t.Errorf("batch %d reported appended at %d but not in the log", i, r.res[i].BaseOffset)
			}
		case errors.Is(err, ErrNotSent):
			notSent++
			if logged[v] {
				t.Errorf("batch %d is in the log, but its error says it was never sent: %v", i, err)
			}
		default:
			failed++
		}
	}
	// Upstream answered nothing before Close, so nothing was reported
	// appended; the requests on the connection (the held one and at most
	// four behind it) have an unknown fate; the rest never left.
	if appended != 0 || failed < 1 || failed > pipeInFlight || notSent != n-failed {
		t.Fatalf("%d batches reported appended, %d failed on the connection, %d not sent; want 0, 1 to %d, and the other %d",
			appended, failed, notSent, pipeInFlight, n-failed)
	}
}

// A submission that took its pipe just before Close, and hands its batch
// over just after, still gets its callback. SubmitProduce takes the pipe
// under the client's lock and submits after releasing it, so Close can
// run in between; this test makes that interleaving happen every time by
// doing the two steps itself.
func TestPipeSubmitRacingClose(t *testing.T) {
	const topic = "race"
	e := startPipeEnv(t, 1, topic)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	leader := e.leader(ctx, topic, 0)

	const n = 20
	r := newResults(n)
	p := e.c.pipe(leader) // what SubmitProduce holds before it hands over
	e.close()
	for i := 0; i < n; i++ {
		if !p.submit(&produceCall{args: args(topic, 0, 9, testBatch(strconv.Itoa(i))), acks: -1, done: r.done(i)}) {
			t.Fatalf("submission %d to a closed pipe refused as if its queue were full", i)
		}
	}
	r.wait(ctx, t)
	r.checkOnce(t)
}
