package mesh

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshka/meshka/upstream"
)

// Start says where a subscription starts in each partition.
type Start struct {
	at      int64 // upstream.OffsetLatest, OffsetEarliest, or a time (ms)
	offsets map[int32]int64
}

// Latest starts at each partition's end: only records produced from now on.
func Latest() Start { return Start{at: upstream.OffsetLatest} }

// Earliest starts at each partition's log start.
func Earliest() Start { return Start{at: upstream.OffsetEarliest} }

// AtTime starts at each partition's first record stamped t or later (at
// its end when there is none).
func AtTime(t time.Time) Start { return Start{at: max(t.UnixMilli(), 0)} }

// AtOffsets starts each partition at the offset given for it (a binding
// resuming where it stopped: the offset after the last record it
// delivered); a partition not in offsets starts at its end.
func AtOffsets(offsets map[int32]int64) Start {
	return Start{at: upstream.OffsetLatest, offsets: maps.Clone(offsets)}
}

// SlowPolicy says what becomes of a subscriber whose queue is full.
type SlowPolicy int8

const (
	// Pause: the subscriber goes on alone at its own pace, reading the
	// owner's cache (or upstream, for what the cache no longer holds)
	// only as fast as it takes records, and rejoins its partition's
	// shared reader once it has caught up. It loses nothing, and the
	// others keep their rate.
	Pause SlowPolicy = iota
	// CutOff: the subscription ends; Next answers, once the queued
	// records are taken, a *SlowError with the offsets to resume from.
	CutOff
)

// SubscribeOptions say what a subscription reads.
type SubscribeOptions struct {
	Topic      string
	Partitions []int32 // empty: every partition of the topic
	Start      Start   // the zero Start is Latest
	Filter     Filter  // the zero Filter takes every record
	// Queue bounds the records delivered but not yet taken by Next
	// (1024 when 0).
	Queue int
	Slow  SlowPolicy
}

// SlowError ends a CutOff subscription whose queue was full.
type SlowError struct {
	// Positions is, per partition, the offset after the last record Next
	// returned (or the start offset): AtOffsets(Positions) resumes
	// exactly.
	Positions map[int32]int64
}

func (e *SlowError) Error() string { return "mesh: subscriber too slow, cut off" }

// Subscription delivers the records of a topic's partitions that its
// filter matches, in offset order per partition. Next is for one
// goroutine at a time; Close may be called from any.
type Subscription struct {
	m      *Mesh
	topic  string
	filter Filter
	slow   SlowPolicy
	ch     chan Record
	parts  []*subPart

	done chan struct{} // closed when the subscription ends
	once sync.Once
	err  error // why it ended; set before done is closed

	positions map[int32]int64 // Next's goroutine's
}

// subPart is a subscription's place in one partition. next is owned by
// whoever feeds it: the partition's hub, or its own catch-up reader.
type subPart struct {
	sub       *Subscription
	partition int32
	next      int64        // the next offset to hand over
	read      atomic.Int64 // next as of the last whole read handed over, for ReadTo
}

const defaultQueue = 1024

// Subscribe starts a subscription. The start offsets are resolved before
// it returns, so records produced after it returns are delivered by a
// Latest subscription.
func (m *Mesh) Subscribe(ctx context.Context, o SubscribeOptions) (*Subscription, error) {
	return m.subscribe(ctx, o, nil)
}

// subscribe starts a subscription that delivers into ch, or into a queue
// of its own when ch is nil (several subscriptions of a share deliver
// into one).
func (m *Mesh) subscribe(ctx context.Context, o SubscribeOptions, ch chan Record) (*Subscription, error) {
	if o.Topic == "" {
		return nil, errors.New("mesh: subscribe: no topic")
	}
	if o.Queue <= 0 {
		o.Queue = defaultQueue
	}
	if err := o.Filter.Validate(); err != nil {
		return nil, fmt.Errorf("mesh: subscribe to %q: %w", o.Topic, err)
	}
	n, err := m.Partitions(ctx, o.Topic)
	if err != nil {
		return nil, err
	}
	parts := o.Partitions
	if len(parts) == 0 {
		for p := range n {
			parts = append(parts, p)
		}
	}
	if ch == nil {
		ch = make(chan Record, o.Queue)
	}
	s := &Subscription{m: m, topic: o.Topic, filter: o.Filter, slow: o.Slow, ch: ch,
		done: make(chan struct{}), positions: map[int32]int64{}}
	start := o.Start
	if start.at == 0 && start.offsets == nil {
		start = Latest()
	}
	for _, p := range slices.Compact(slices.Sorted(slices.Values(parts))) {
		if p < 0 || p >= n {
			return nil, fmt.Errorf("mesh: subscribe to %q: no partition %d (the topic has %d)", o.Topic, p, n)
		}
		off, ok := start.offsets[p]
		if !ok {
			if off, err = m.offsetAt(ctx, o.Topic, p, start.at); err != nil {
				return nil, err
			}
		}
		s.positions[p] = off
		sp := &subPart{sub: s, partition: p, next: off}
		sp.read.Store(off)
		s.parts = append(s.parts, sp)
	}
	for _, sp := range s.parts {
		if !m.attach(hubKey{o.Topic, sp.partition}, sp) {
			s.end(ErrClosed)
			break
		}
	}
	return s, nil
}

// offsetAt resolves a start in one partition.
// Subscriptions starting at once ask upstream once: a crowd of clients
// connecting together (SSE streams after a deploy, say) costs upstream one
// ListOffsets per partition, not one each. The answer comes from a request
// that began no later than any of them returns, so a Latest subscription
// still gets every record produced after it returns (and may get a few
// produced just before).
func (m *Mesh) offsetAt(ctx context.Context, topic string, p int32, at int64) (int64, error) {
	key := topic + "\x00" + strconv.Itoa(int(p)) + "\x00" + strconv.FormatInt(at, 10)
	ch := m.offsets.DoChan(key, func() (any, error) {
		// the callers' own contexts bound their waits, not the request
		rctx, cancel := context.WithTimeout(m.ctx, offsetTimeout)
		defer cancel()
		off, err := m.up.OffsetAt(rctx, topic, p, at)
		if err == nil && off < 0 { // no record that late
			off, err = m.up.OffsetAt(rctx, topic, p, upstream.OffsetLatest)
		}
		return off, err
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return 0, fmt.Errorf("mesh: subscribe to %s/%d: %w", topic, p, res.Err)
		}
		return res.Val.(int64), nil
	case <-ctx.Done():
		return 0, fmt.Errorf("mesh: subscribe to %s/%d: %w", topic, p, ctx.Err())
	}
}

// offsetTimeout bounds one shared start offset lookup.
const offsetTimeout = 30 * time.Second

// Next returns the next record, waiting for one until ctx ends. Once the
// subscription has ended and its queue is empty, it returns why: ErrClosed
// after Close, a *SlowError, or the partition's error (the topic deleted,
// say).
func (s *Subscription) Next(ctx context.Context) (Record, error) {
	select {
	case r := <-s.ch:
		return s.took(r), nil
	default:
	}
	select {
	case r := <-s.ch:
		return s.took(r), nil
	case <-s.done:
		select {
		case r := <-s.ch:
			return s.took(r), nil
		default:
		}
		var se *SlowError
		if errors.As(s.err, &se) {
			return Record{}, &SlowError{Positions: maps.Clone(s.positions)}
		}
		return Record{}, s.err
	case <-ctx.Done():
		return Record{}, ctx.Err()
	}
}

func (s *Subscription) took(r Record) Record {
	s.positions[r.Partition] = r.Offset + 1
	return r
}

// Positions is, per partition, the offset after the last record Next
// returned (the start offset before the first); for Next's goroutine.
func (s *Subscription) Positions() map[int32]int64 { return maps.Clone(s.positions) }

// ReadTo is, for Next's goroutine, the offset up to which partition has
// been read with every record before it returned by Next: past the
// records the filter skips, transaction markers and the offsets
// compaction removed, which Positions does not count. -1 while records
// wait in the queue, or for a partition not subscribed. A reader of a
// compacted topic knows from it that it has read to an end offset whose
// last records are gone.
func (s *Subscription) ReadTo(partition int32) int64 {
	for _, sp := range s.parts {
		if sp.partition != partition {
			continue
		}
		// read is stored after the records before it were queued: read
		// first, then see the queue empty.
		at := sp.read.Load()
		if len(s.ch) > 0 {
			return -1
		}
		return at
	}
	return -1
}

// Close ends the subscription; Next answers ErrClosed once the queue is
// empty.
func (s *Subscription) Close() { s.end(ErrClosed) }

// end ends the subscription with err, once, and lets its partitions'
// hubs go.
func (s *Subscription) end(err error) {
	s.once.Do(func() {
		s.err = err
		close(s.done)
		for _, sp := range s.parts {
			s.m.detach(hubKey{s.topic, sp.partition})
		}
	})
}

func (s *Subscription) ended() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// offer hands r to the subscriber unless its queue is full.
func (s *Subscription) offer(r Record) bool {
	select {
	case s.ch <- r:
		return true
	default:
		return false
	}
}

// give hands r to the subscriber, waiting for room; false when the
// subscription or the Mesh ended first.
func (s *Subscription) give(ctx context.Context, r Record) bool {
	select {
	case s.ch <- r:
		return true
	case <-s.done:
		return false
	case <-ctx.Done():
		return false
	}
}

// Offsets is, per partition of topic, the offset start resolves to now:
// Latest, the end (the offset the next record written gets); Earliest,
// the log start; AtTime, the first record at or after the time (the end
// when there is none); AtOffsets, the offsets given (the others at the
// end). What a binding compares a client's position with, to say whether
// anything is new.
func (m *Mesh) Offsets(ctx context.Context, topic string, start Start) (map[int32]int64, error) {
	n, err := m.Partitions(ctx, topic)
	if err != nil {
		return nil, err
	}
	at := start.at
	if at == 0 && start.offsets == nil {
		at = upstream.OffsetLatest // the zero Start
	}
	out := make(map[int32]int64, n)
	for p := range n {
		if o, ok := start.offsets[p]; ok {
			out[p] = o
			continue
		}
		off, err := m.offsetAt(ctx, topic, p, at)
		if err != nil {
			return nil, err
		}
		out[p] = off
	}
	return out, nil
}
