package upstream

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/records"
)

// Stream tuning. A stream reads like a Kafka consumer: one request per
// upstream broker carries every partition streamed from it, in one of two
// lanes (see lane).
const (
	streamMaxWait  = 200 * time.Millisecond
	streamMaxBytes = 32 << 20
	// streamPartitionMax is what a consumer asks per partition by default
	// (franz-go, the Java client and librdkafka all ask 1 MiB): upstream
	// answers it as it answers them, a reader waiting on a cold cache gets
	// its first bytes after one such read, and a larger read gained
	// nothing, since the next one is already on its way while a chunk is
	// cached (streamDepth).
	streamPartitionMax = 1 << 20
	// streamDepth is the chunks of a partition delivered and not yet Done:
	// with two, the stream asks upstream for the next chunk while the sink
	// takes the last, so the sink's work is off the path from one upstream
	// read to the next.
	streamDepth         = 2
	streamFetchVersion  = 12 // the last Fetch version that names topics
	streamRetryInterval = 250 * time.Millisecond
)

// Chunk is what one upstream fetch response carried for a partition.
type Chunk struct {
	Err              int16
	HighWatermark    int64
	LastStableOffset int64
	LogStartOffset   int64
	Batches          []records.Batch // complete batches only
	// Shared says the batches' buffer holds more than a third again as
	// many other bytes (other partitions' records, a partial batch cut by
	// the size limit): a sink keeping the batches should copy them rather
	// than hold that buffer. Otherwise the buffer is the chunk's alone.
	Shared bool
}

// Sink receives a stream's chunks, in offset order: the stream delivers at
// most streamDepth chunks of a partition before the sink has called Done
// for the first of them. Deliver is called from the stream's goroutine
// and must not block.
type Sink interface {
	Deliver(sub *Subscription, c *Chunk)
}

// Subscription is one partition's place in a shared stream.
type Subscription struct {
	Topic     string
	Partition int32

	s    *Streams
	sink Sink

	mu      sync.Mutex
	offset  int64 // next offset to fetch; owned by the fetcher while subscribed
	pending int   // chunks delivered and not yet Done
	behind  bool  // upstream has more at offset, or has not answered yet: the catch-up lane asks
	busy    bool  // in a lane's request now in flight
	stopped bool
	f       *fetcher

	lastHW, lastLSO, lastLogStart int64 // last delivered, to skip empty repeats
}

// Done tells the stream the sink has taken one more chunk; it is called
// once per chunk delivered without an error. Safe for concurrent use.
func (sub *Subscription) Done() {
	sub.mu.Lock()
	sub.pending = max(sub.pending-1, 0)
	f, l := sub.f, tailLane
	if sub.behind {
		l = catchUpLane
	}
	sub.mu.Unlock()
	if f != nil {
		f.wakeLane(l)
	}
}

// Stop removes the partition from its stream. Safe to call twice.
func (sub *Subscription) Stop() {
	sub.mu.Lock()
	sub.stopped = true
	f := sub.f
	sub.f = nil
	sub.mu.Unlock()
	if f != nil {
		f.remove(sub)
	}
}

// Streams owns one fetcher per upstream broker.
type Streams struct {
	c      *Client
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	fetchers map[int32]*fetcher
	closed   bool // close began: no goroutine starts any more
}

func newStreams(c *Client) *Streams {
	ctx, cancel := context.WithCancel(context.Background())
	return &Streams{c: c, ctx: ctx, cancel: cancel, fetchers: make(map[int32]*fetcher)}
}

// Subscribe starts streaming the partition from offset into sink.
func (s *Streams) Subscribe(topic string, partition int32, offset int64, sink Sink) *Subscription {
	sub := &Subscription{Topic: topic, Partition: partition, s: s, sink: sink, offset: offset, behind: true, lastHW: -2}
	// Counted under mu, so that close, which waits for every goroutine,
	// never waits while one is being added (a reader asking as the client
	// closes gets a subscription that never delivers).
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		sub.stopped = true
		return sub
	}
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.place(sub, 0) }()
	return sub
}

// place finds the partition's leader and hands the subscription to that
// broker's fetcher, retrying while the leader is unknown.
func (s *Streams) place(sub *Subscription, attempt int) {
	for {
		if s.ctx.Err() != nil {
			return
		}
		sub.mu.Lock()
		stopped := sub.stopped
		sub.mu.Unlock()
		if stopped {
			return
		}
		pm, err := s.c.meta.Partition(s.ctx, sub.Topic, sub.Partition)
		if err == nil {
			f := s.fetcher(pm.Leader)
			if f == nil {
				return // the client is closing
			}
			sub.mu.Lock()
			if sub.stopped {
				sub.mu.Unlock()
				return
			}
			sub.f = f
			sub.mu.Unlock()
			f.add(sub)
			return
		}
		if ke, ok := err.(*kerr.Error); ok && ke == kerr.UnknownTopicOrPartition {
			sub.sink.Deliver(sub, &Chunk{Err: ke.Code, HighWatermark: -1, LastStableOffset: -1, LogStartOffset: -1})
			return
		}
		s.c.log.Debug("stream: partition has no leader yet", "topic", sub.Topic, "partition", sub.Partition, "err", err)
		sleepCtx(s.ctx, Backoff(attempt))
		attempt++
	}
}

func (s *Streams) fetcher(broker int32) *fetcher {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.fetchers[broker]
	if !ok && !s.closed {
		f = &fetcher{s: s, broker: broker, subs: make(map[*Subscription]struct{})}
		for l := range f.wakes {
			f.wakes[l] = make(chan struct{}, 1)
		}
		s.fetchers[broker] = f
		s.wg.Add(2)
		go func() { defer s.wg.Done(); f.run(tailLane) }()
		go func() { defer s.wg.Done(); f.run(catchUpLane) }()
	}
	return f
}

func (s *Streams) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

// lane is one of a fetcher's two request loops, each with at most one
// request in flight. The tail lane long-polls (streamMaxWait) for the
// partitions at upstream's end, on the stream client's connection; the
// catch-up lane asks without waiting for the partitions upstream has more
// of, and for new ones, on the main client's fetch connection. A broker
// answers one connection's requests in order, so a partition with data
// waiting never sits behind a long poll for the others: a new reader's
// first chunk, the next chunk of a reader far behind, and a stream its
// readers let go again are asked for at once. (With one loop, a partition
// that was not ready when a long poll went out waited for it to end, up to
// streamMaxWait, while other partitions of the broker were idle.)
type lane int

const (
	tailLane lane = iota
	catchUpLane
)

// fetcher streams every partition placed on one upstream broker.
type fetcher struct {
	s      *Streams
	broker int32

	mu    sync.Mutex
	subs  map[*Subscription]struct{}
	order []*Subscription // rotated each request so no partition starves
	wakes [2]chan struct{}
}

func (f *fetcher) add(sub *Subscription) {
	f.mu.Lock()
	f.subs[sub] = struct{}{}
	f.order = append(f.order, sub)
	f.mu.Unlock()
	f.wake()
}

func (f *fetcher) remove(sub *Subscription) {
	f.mu.Lock()
	delete(f.subs, sub)
	for i, o := range f.order {
		if o == sub {
			f.order = append(f.order[:i], f.order[i+1:]...)
			break
		}
	}
	f.mu.Unlock()
}

// wake tells both lanes a subscription may be ready.
func (f *fetcher) wake() {
	f.wakeLane(tailLane)
	f.wakeLane(catchUpLane)
}

// ready takes the subscriptions of lane l that can take more data, with
// their offsets, and marks them busy until idle gives them back.
func (f *fetcher) ready(l lane) (subs []*Subscription, offsets []int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.order) > 1 {
		f.order = append(f.order[1:], f.order[0])
	}
	for _, sub := range f.order {
		sub.mu.Lock()
		if !sub.busy && !sub.stopped && sub.pending < streamDepth && sub.behind == (l == catchUpLane) {
			sub.busy = true
			subs = append(subs, sub)
			offsets = append(offsets, sub.offset)
		}
		sub.mu.Unlock()
	}
	return subs, offsets
}

// idle gives lane l's request's subscriptions back, to whichever lane
// suits them now; the other lane is woken only when one moved to it (l
// itself asks again at once).
func (f *fetcher) idle(l lane, subs []*Subscription) {
	moved := false
	for _, sub := range subs {
		sub.mu.Lock()
		sub.busy = false
		moved = moved || sub.behind != (l == catchUpLane)
		sub.mu.Unlock()
	}
	if moved {
		f.wakeLane(1 - l)
	}
}

func (f *fetcher) wakeLane(l lane) {
	select {
	case f.wakes[l] <- struct{}{}:
	default:
	}
}

func (f *fetcher) run(l lane) {
	ctx := f.s.ctx
	for {
		subs, offsets := f.ready(l)
		if len(subs) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-f.wakes[l]:
				continue
			}
		}
		resp, err := f.fetch(ctx, l, subs, offsets)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			f.s.c.log.Warn("stream: upstream fetch failed", "broker", f.broker, "err", err)
			f.s.c.meta.Invalidate(topicsOf(subs)...)
			f.idle(l, subs)
			f.replaceAll(subs)
			sleepCtx(ctx, streamRetryInterval)
			continue
		}
		f.handle(subs, offsets, resp)
		f.idle(l, subs)
	}
}

func (f *fetcher) fetch(ctx context.Context, l lane, subs []*Subscription, offsets []int64) (*kmsg.FetchResponse, error) {
	req := kmsg.NewPtrFetchRequest()
	wait, cl := streamMaxWait, f.s.c.stream
	if l == catchUpLane {
		wait, cl = 0, f.s.c.main
	}
	req.MaxWaitMillis = int32(wait / time.Millisecond)
	req.MinBytes = 1
	req.MaxBytes = streamMaxBytes
	req.IsolationLevel = 0 // read_uncommitted: the cache serves both levels
	req.SessionID = 0
	req.SessionEpoch = -1
	idx := make(map[string]int)
	for i, sub := range subs {
		ti, ok := idx[sub.Topic]
		if !ok {
			ti = len(req.Topics)
			idx[sub.Topic] = ti
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = sub.Topic
			req.Topics = append(req.Topics, rt)
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = sub.Partition
		rp.FetchOffset = offsets[i]
		rp.PartitionMaxBytes = streamPartitionMax
		req.Topics[ti].Partitions = append(req.Topics[ti].Partitions, rp)
	}
	ctx, cancel := context.WithTimeout(ctx, f.s.c.cfg.RequestTimeout+wait)
	defer cancel()
	kresp, err := cl.Broker(int(f.broker)).Request(ctx, &pinned{Request: req, max: streamFetchVersion})
	if err != nil {
		return nil, err
	}
	resp := kresp.(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 {
		return nil, kerr.ErrorForCode(resp.ErrorCode)
	}
	return resp, nil
}

func (f *fetcher) handle(subs []*Subscription, offsets []int64, resp *kmsg.FetchResponse) {
	type key struct {
		t string
		p int32
	}
	bySub := make(map[key]int, len(subs))
	for i, sub := range subs {
		bySub[key{sub.Topic, sub.Partition}] = i
	}
	// A chunk keeps the response's buffer only when its batches fill most
	// of it: the records of every partition in the response are what the
	// buffer holds, beside a few bytes of framing each.
	all := 0
	for ti := range resp.Topics {
		for pi := range resp.Topics[ti].Partitions {
			all += len(resp.Topics[ti].Partitions[pi].RecordBatches)
		}
	}
	var moved []*Subscription
	for ti := range resp.Topics {
		rt := &resp.Topics[ti]
		for pi := range rt.Partitions {
			rp := &rt.Partitions[pi]
			i, ok := bySub[key{rt.Topic, rp.Partition}]
			if !ok {
				continue
			}
			sub := subs[i]
			switch rp.ErrorCode {
			case kerr.NotLeaderForPartition.Code, kerr.LeaderNotAvailable.Code,
				kerr.FencedLeaderEpoch.Code, kerr.UnknownLeaderEpoch.Code,
				kerr.KafkaStorageError.Code, kerr.ReplicaNotAvailable.Code:
				moved = append(moved, sub)
				continue
			}
			if rp.ErrorCode == kerr.UnknownTopicOrPartition.Code {
				// Gone upstream: lookups that trust the cache past its
				// TTL (a fetch's partition check) must ask again.
				f.s.c.meta.Invalidate(sub.Topic)
			}
			c := &Chunk{Err: rp.ErrorCode, HighWatermark: rp.HighWatermark, LastStableOffset: rp.LastStableOffset, LogStartOffset: rp.LogStartOffset}
			if rp.ErrorCode == 0 {
				batches, _, err := records.Split(rp.RecordBatches, nil)
				if len(batches) == 0 && len(rp.RecordBatches) > 0 {
					// Bytes but no whole batch at the offset: upstream
					// sends the first batch whole however large (KIP-74),
					// so what it holds there is damaged. Asking again
					// would get the same bytes forever and leave every
					// reader waiting; the readers are told instead.
					if err == nil {
						err = fmt.Errorf("%d bytes hold no complete batch", len(rp.RecordBatches))
					}
					f.s.c.log.Warn("stream: corrupt data from upstream; readers get CORRUPT_MESSAGE", "topic", sub.Topic, "partition", sub.Partition, "offset", offsets[i], "err", err)
					c.Err = kerr.CorruptMessage.Code
				}
				c.Batches = batches
				own := 0
				for _, b := range batches {
					own += len(b.Data)
				}
				c.Shared = 4*own < 3*all
			}
			sub.mu.Lock()
			if sub.stopped || sub.offset != offsets[i] {
				sub.mu.Unlock()
				continue
			}
			if n := len(c.Batches); n > 0 {
				sub.offset = c.Batches[n-1].Next()
			}
			// Still behind only if this answer moved it on: one that
			// brought nothing waits in the tail lane's long poll.
			sub.behind = c.Err == 0 && len(c.Batches) > 0 && c.HighWatermark > sub.offset
			// An empty answer matters only when it moves a watermark.
			deliver := c.Err != 0 || len(c.Batches) > 0 || sub.lastHW != c.HighWatermark ||
				sub.lastLSO != c.LastStableOffset || sub.lastLogStart != c.LogStartOffset
			sub.lastHW, sub.lastLSO, sub.lastLogStart = c.HighWatermark, c.LastStableOffset, c.LogStartOffset
			switch {
			case deliver && c.Err != 0:
				sub.pending = streamDepth // nothing more until Stop
			case deliver:
				sub.pending++
			}
			sub.mu.Unlock()
			if deliver {
				sub.sink.Deliver(sub, c)
			}
		}
	}
	if len(moved) > 0 {
		f.s.c.meta.Invalidate(topicsOf(moved)...)
		f.replaceAll(moved)
	}
}

// replaceAll sends subscriptions back to be placed on their current leader.
func (f *fetcher) replaceAll(subs []*Subscription) {
	for _, sub := range subs {
		f.remove(sub)
		sub.mu.Lock()
		sub.f = nil
		stopped := sub.stopped
		sub.mu.Unlock()
		if stopped {
			continue
		}
		f.s.wg.Add(1)
		go func() {
			defer f.s.wg.Done()
			sleepCtx(f.s.ctx, streamRetryInterval)
			f.s.place(sub, 1)
		}()
	}
}

func topicsOf(subs []*Subscription) []string {
	seen := make(map[string]struct{})
	var out []string
	for _, s := range subs {
		if _, ok := seen[s.Topic]; !ok {
			seen[s.Topic] = struct{}{}
			out = append(out, s.Topic)
		}
	}
	return out
}
