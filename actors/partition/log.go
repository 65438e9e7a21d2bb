// Package partition is the partition actor: one per upstream
// topic-partition, it forwards produced batches upstream in order and keeps
// the partition's recent tail in memory for every reader on the node.
package partition

import (
	"sort"
	"sync/atomic"
	"time"

	"github.com/meshka/meshka/records"
	"github.com/meshka/meshka/upstream"
)

// Budget bounds the bytes all partition caches on a node hold together.
// Safe for concurrent use.
type Budget struct {
	max  atomic.Int64
	used atomic.Int64
	// Stats count what the node's partitions do, for its metrics.
	Stats Stats
}

// Stats are counters every partition of a node adds to: reads the cache
// answered and could not, batches evicted, and produce batches on their
// way upstream and sent again.
type Stats struct {
	Hits, Misses, Evictions atomic.Int64
	InFlight, Retried       atomic.Int64
}

// NewBudget returns a budget of max bytes.
func NewBudget(max int64) *Budget {
	b := &Budget{}
	b.max.Store(max)
	return b
}

// Max is the bound; SetMax changes it (a reload of cache.node_max_bytes):
// caches over a lowered bound give bytes back as they take new ones.
func (b *Budget) Max() int64     { return b.max.Load() }
func (b *Budget) SetMax(n int64) { b.max.Store(n) }

// Used is the number of bytes currently held.
func (b *Budget) Used() int64 { return b.used.Load() }

func (b *Budget) take(n int64) bool {
	for {
		u := b.used.Load()
		if u+n > b.max.Load() {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

func (b *Budget) force(n int64) { b.used.Add(n) }
func (b *Budget) give(n int64)  { b.used.Add(-n) }

// AbortedTxn is an aborted transaction as Fetch reports it.
type AbortedTxn struct {
	ProducerID  int64
	FirstOffset int64
	LastOffset  int64 // offset of the abort marker
}

// Isolation levels of a Fetch request.
const (
	ReadUncommitted int8 = 0
	ReadCommitted   int8 = 1
)

// ReadStatus says how a read was answered.
type ReadStatus int8

const (
	// Served: Batches holds data (it may be empty when there is nothing new;
	// then Notify closes when data lands).
	Served ReadStatus = iota
	// ReadThrough: the offset is outside the cache; ask upstream directly.
	ReadThrough
	// Failed: Err holds the partition error.
	Failed
)

// ReadResult is a cache read. Batches alias the cache and must not be
// modified.
type ReadResult struct {
	Status           ReadStatus
	Err              int16
	HighWatermark    int64
	LastStableOffset int64
	LogStartOffset   int64
	Batches          [][]byte
	Bytes            int
	Aborted          []AbortedTxn
	Notify           <-chan struct{}
}

// readerFresh is how long a reader's offset paces the stream after its
// last read: longer than a reader takes between fetches while it reads,
// so a reader that stopped reading (gone, or stuck) holds no stream back
// for long.
const readerFresh = 10 * time.Second

// Log is the cached tail of one partition: raw batches as upstream sent
// them, in offset order, with the watermarks of the last upstream answer.
// It does no I/O; the actor feeds it upstream chunks, asks it reads and
// asks it whether the stream should bring more (Hungry). Not safe for
// concurrent use.
type Log struct {
	batches []cached
	head    int // batches[head:] are live; the prefix is evicted

	start, end int64 // reads in [start, end) are served from memory
	known      bool  // an upstream answer has arrived
	err        int16 // sticky stream error, reported to readers

	hw, lso, logStart int64

	open    map[int64]int64 // producer id → first offset of its open transaction
	aborted []AbortedTxn

	size, max int64
	budget    *Budget
	appended  int64 // bytes ever appended: the position after the last batch

	// front is the furthest offset a reader asked for, at frontAt; -1
	// before any reader. The stream runs at most half the cache ahead of
	// it, so a reader that reads slower than upstream answers is never
	// overtaken by evictions and read from upstream a second time.
	front   int64
	frontAt time.Time

	notify chan struct{}
}

// cached is a batch with its position in the bytes appended.
type cached struct {
	records.Batch
	pos int64
}

// NewLog starts an empty cache whose stream begins at offset.
func NewLog(offset, max int64, budget *Budget) *Log {
	return &Log{start: offset, end: offset, hw: -1, lso: -1, logStart: -1, max: max, budget: budget,
		front: -1, open: make(map[int64]int64), notify: make(chan struct{})}
}

// End is the offset the stream will bring next.
func (l *Log) End() int64 { return l.end }

// Size is the bytes the cache holds.
func (l *Log) Size() int64 { return l.size }

// Append takes one upstream chunk and wakes waiting readers.
func (l *Log) Append(c *upstream.Chunk) {
	defer l.wake()
	l.known = true
	if c.Err != 0 {
		l.err = c.Err
		return
	}
	l.hw, l.lso = c.HighWatermark, c.LastStableOffset
	l.SetLogStart(c.LogStartOffset)
	total := 0
	for i := range c.Batches {
		if c.Batches[i].Last >= l.end {
			total += len(c.Batches[i].Data)
		}
	}
	if total == 0 {
		return
	}
	// The node budget is settled before the new batches join, so making
	// room for them only evicts older ones.
	l.takeBudget(int64(total))
	l.size += int64(total)
	// The cache must hold about what it counts. A chunk whose buffer is
	// its own is kept as it came; one sharing its buffer with much else
	// (other partitions of the upstream response) is copied, once.
	var buf []byte
	if c.Shared {
		buf = make([]byte, 0, total)
	}
	for _, b := range c.Batches {
		if b.Last < l.end {
			continue
		}
		if c.Shared {
			off := len(buf)
			buf = append(buf, b.Data...)
			b.Data = buf[off:len(buf):len(buf)]
		}
		l.track(&b)
		if len(l.batches) == l.head && b.Base < l.start {
			l.start = b.Base
		}
		l.batches = append(l.batches, cached{Batch: b, pos: l.appended})
		l.appended += int64(len(b.Data))
		l.end = b.Next()
	}
	// The partition bound keeps the newest batch even when it alone is
	// larger: a reader must be able to get it.
	for l.size > l.max && len(l.batches)-l.head > 1 {
		l.evictOne()
	}
}

// track keeps the open and aborted transactions that read_committed needs.
func (l *Log) track(b *records.Batch) {
	switch {
	case b.Control():
		first, had := l.open[b.ProducerID]
		delete(l.open, b.ProducerID)
		if typ, ok := b.ControlType(); ok && typ == 0 {
			if !had {
				first = l.start // began before the window; every cached batch of it is aborted
			}
			l.aborted = append(l.aborted, AbortedTxn{ProducerID: b.ProducerID, FirstOffset: first, LastOffset: b.Last})
		}
	case b.Transactional():
		if _, ok := l.open[b.ProducerID]; !ok {
			l.open[b.ProducerID] = b.Base
		}
	}
}

// takeBudget accounts n new bytes to the node budget, evicting this
// cache's oldest batches while other partitions hold the rest. With nothing
// left to evict the bytes are kept anyway: readers need them, and the next
// append frees them.
func (l *Log) takeBudget(n int64) {
	for !l.budget.take(n) {
		if l.head == len(l.batches) {
			l.budget.force(n)
			return
		}
		l.evictOne()
	}
}

func (l *Log) evictOne() {
	b := l.batches[l.head]
	l.batches[l.head] = cached{}
	l.head++
	n := int64(len(b.Data))
	l.size -= n
	l.budget.give(n)
	l.budget.Stats.Evictions.Add(1)
	l.start = b.Next()
	if l.head == len(l.batches) {
		l.batches, l.head = l.batches[:0], 0
	} else if l.head > 64 && l.head*2 > len(l.batches) {
		l.batches = append(l.batches[:0], l.batches[l.head:]...)
		l.head = 0
	}
	i := 0
	for i < len(l.aborted) && l.aborted[i].LastOffset < l.start {
		i++
	}
	l.aborted = l.aborted[i:]
}

// SetLogStart records upstream's log start offset and drops cached batches
// wholly below it: records deleted upstream are not served from memory.
func (l *Log) SetLogStart(offset int64) {
	if offset <= l.logStart {
		return
	}
	l.logStart = offset
	for l.head < len(l.batches) && l.batches[l.head].Last < offset {
		l.evictOne()
	}
	if l.start < offset && l.head == len(l.batches) && l.end < offset {
		l.start, l.end = offset, offset
	}
}

// Release drops every cached batch and returns its bytes to the budget.
func (l *Log) Release() {
	l.budget.give(l.size)
	l.size = 0
	l.batches, l.head = nil, 0
	l.wake()
}

// Saw records that a reader asked for offset at now. The furthest
// offset asked recently paces the stream (Hungry).
func (l *Log) Saw(offset int64, now time.Time) {
	if offset >= l.front || now.Sub(l.frontAt) > readerFresh {
		l.front, l.frontAt = offset, now
	}
}

// Hungry reports whether the stream should bring the next chunk: the cache
// holds less than half its bound beyond the furthest offset a reader asked
// for recently, or no reader asked recently. A reader far behind upstream
// then reads the cache as it fills, and the other half of the cache keeps
// what it has read for readers just behind it.
func (l *Log) Hungry(now time.Time) bool {
	if l.front < 0 || now.Sub(l.frontAt) > readerFresh {
		return true
	}
	return l.ahead(l.front) < max(l.max/2, 1)
}

// Restart reports whether a read at offset, below the window and above
// upstream's log start, should restart the stream there rather than read
// through: no reader has read the window recently (none asked, the
// furthest one asked long ago, or it too is below the window). The cache
// then chases its reader, which is served ahead of its reads like any
// reader of the stream, instead of reading every fetch through from
// upstream while the stream keeps a tail nobody reads.
func (l *Log) Restart(offset int64, now time.Time) bool {
	if !l.known || offset >= l.start || offset < l.logStart {
		return false
	}
	return l.front < l.start || now.Sub(l.frontAt) > readerFresh
}

// ahead is the cached bytes at or beyond offset.
func (l *Log) ahead(offset int64) int64 {
	live := l.batches[l.head:]
	switch {
	case offset >= l.end || len(live) == 0:
		return 0
	case offset < l.start:
		return l.size
	}
	i := sort.Search(len(live), func(i int) bool { return live[i].Last >= offset })
	if i == len(live) {
		return 0
	}
	return l.appended - live[i].pos
}

func (l *Log) wake() {
	close(l.notify)
	l.notify = make(chan struct{})
}

// Read answers a fetch of offset with at most maxBytes of whole batches; the
// first batch is returned even when larger, as Kafka does (KIP-74).
func (l *Log) Read(offset int64, maxBytes int32, isolation int8) ReadResult {
	r := ReadResult{HighWatermark: l.hw, LastStableOffset: l.lso, LogStartOffset: l.logStart, Notify: l.notify}
	switch {
	case l.err != 0:
		r.Status, r.Err = Failed, l.err
		return r
	case !l.known:
		return r // wait for the first upstream answer
	case offset < l.start || offset > l.end || offset < l.logStart:
		// Outside the window, or deleted upstream: upstream answers,
		// with OFFSET_OUT_OF_RANGE where Kafka would.
		r.Status = ReadThrough
		return r
	case offset == l.end:
		return r
	}
	live := l.batches[l.head:]
	i := sort.Search(len(live), func(i int) bool { return live[i].Last >= offset })
	limit := l.end
	if isolation == ReadCommitted && l.lso >= 0 && l.lso < limit {
		limit = l.lso
	}
	// Find the end first so the result is allocated once at its size: a
	// 1 MiB read of small batches holds thousands, and growing the slice
	// by appending cost a dozen allocations and twice the memory.
	j := i
	for ; j < len(live); j++ {
		b := &live[j]
		if b.Base >= limit || r.Bytes > 0 && r.Bytes+len(b.Data) > int(maxBytes) {
			break
		}
		r.Bytes += len(b.Data)
	}
	var last int64 = -1
	if j > i {
		r.Batches = make([][]byte, j-i)
		for k := range r.Batches {
			r.Batches[k] = live[i+k].Data
		}
		last = live[j-1].Last
	}
	if isolation == ReadCommitted && last >= 0 {
		for _, a := range l.aborted {
			if a.FirstOffset <= last && a.LastOffset >= offset {
				r.Aborted = append(r.Aborted, a)
			}
		}
	}
	return r
}
