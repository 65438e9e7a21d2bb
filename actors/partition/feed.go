package partition

import (
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/meshka/meshka/internal/ratelog"
	"github.com/meshka/meshka/upstream"
)

// feed is one partition's cache and the upstream stream that fills it.
// The actor creates and closes it and drives its timers; the stream's
// goroutine appends to it (Deliver) and connections read it (read, through
// Feeds) without a message to the actor, so a chunk reaches a waiting
// reader through no mailbox: from upstream's answer to the reader's
// response are two goroutine hand-offs, to the stream's goroutine and to
// the reader's connection.
// Safe for concurrent use; every method may block briefly on the lock,
// none on I/O.
type feed struct {
	topic     string
	partition int32
	up        *upstream.Client
	budget    *Budget
	maxBytes  int64
	log       *slog.Logger
	notices   *ratelog.Limiter // one line per topic for what all its partitions would log alike
	// restart asks the actor to warm a bootstrap partition again after
	// its stream ended; called without the lock held.
	restart func()

	mu        sync.Mutex
	cache     *Log
	sub       *upstream.Subscription
	unacked   int         // chunks of sub appended and not yet Done: the stream waits for readers
	pace      *time.Timer // re-checks a waiting stream once its readers may have gone
	lastRead  time.Time
	bootstrap bool
	closed    bool // the actor stopped: readers go through the mesh to its successor
}

var _ upstream.Sink = (*feed)(nil)

// read answers a reader from the cache, starting the stream at offset
// when none runs. Once the feed is closed ok is false and r says
// NOT_LEADER_OR_FOLLOWER, so a client asks again where the partition is.
func (f *feed) read(offset int64, maxBytes int32, isolation int8) (r ReadResult, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return ReadResult{Status: Failed, Err: kerr.NotLeaderForPartition.Code, HighWatermark: -1, LastStableOffset: -1, LogStartOffset: -1}, false
	}
	now := time.Now()
	f.lastRead = now
	if f.cache == nil {
		f.startLocked(offset)
	}
	r = f.cache.Read(offset, maxBytes, isolation)
	if r.Status == ReadThrough && f.cache.Restart(offset, now) {
		f.startLocked(offset)
		r = f.cache.Read(offset, maxBytes, isolation)
	}
	switch {
	case r.Status == ReadThrough:
		f.budget.Stats.Misses.Add(1)
	case r.Status == Served && r.Bytes > 0:
		f.budget.Stats.Hits.Add(1)
	}
	if r.Status == Failed {
		// The stream cannot go on (offset out of range, topic deleted):
		// report it once and start afresh at the next reader's offset.
		f.stopLocked()
		return r, true
	}
	f.cache.Saw(offset, now)
	f.releaseLocked()
	return r, true
}

// Deliver appends a stream chunk; it is called on the stream's goroutine.
func (f *feed) Deliver(sub *upstream.Subscription, c *upstream.Chunk) {
	f.mu.Lock()
	if sub != f.sub || f.cache == nil {
		f.mu.Unlock()
		return // from a stream since replaced
	}
	f.cache.Append(c)
	if c.Err == 0 {
		f.unacked++
		f.releaseLocked()
		f.mu.Unlock()
		return
	}
	err := kerr.ErrorForCode(c.Err)
	f.log.Debug("partition stream stopped by upstream", "err", err)
	f.notices.Log(slog.LevelInfo, "stream-stopped/"+f.topic+"/"+err.Error(), "partition streams stopped by upstream", "topic", f.topic, "err", err)
	restart := f.bootstrap
	if restart {
		f.stopLocked()
	} else {
		f.sub.Stop()
		f.sub = nil // the cache keeps the error for the next reader
	}
	f.mu.Unlock()
	if restart {
		f.restart()
	}
}

// releaseLocked lets the stream bring more when the cache is hungry for
// it, and otherwise makes sure it is asked again once its readers may
// have gone.
func (f *feed) releaseLocked() {
	if f.sub == nil || f.unacked == 0 {
		return
	}
	if !f.cache.Hungry(time.Now()) {
		if f.pace == nil {
			f.pace = time.AfterFunc(readerFresh, f.paceTick)
		}
		return
	}
	for ; f.unacked > 0; f.unacked-- {
		f.sub.Done()
	}
}

func (f *feed) paceTick() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pace = nil
	f.releaseLocked()
}

func (f *feed) startLocked(offset int64) {
	f.stopLocked()
	f.cache = NewLog(offset, f.maxBytes, f.budget)
	f.sub = f.up.Streams().Subscribe(f.topic, f.partition, offset, f)
	f.log.Debug("partition stream started", "offset", offset)
}

func (f *feed) stopLocked() {
	if f.sub != nil {
		f.sub.Stop()
		f.sub = nil
	}
	f.unacked = 0
	if f.pace != nil {
		f.pace.Stop()
		f.pace = nil
	}
	if f.cache != nil {
		f.cache.Release()
		f.cache = nil
	}
}

// warm marks the partition a bootstrap one and reports whether it needs a
// stream started (none runs).
func (f *feed) warm() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bootstrap = true
	return f.sub == nil && !f.closed
}

// warmAt starts a bootstrap partition's stream at offset unless one runs.
func (f *feed) warmAt(offset int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sub == nil && !f.closed {
		f.startLocked(offset)
	}
}

// checkIdle stops the stream and frees the cache of a partition nobody
// has read for idle.
func (f *feed) checkIdle(idle time.Duration) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.bootstrap && f.cache != nil && time.Since(f.lastRead) > idle {
		f.stopLocked()
		return true
	}
	return false
}

// setLogStart drops cached batches below upstream's new log start.
func (f *feed) setLogStart(offset int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cache != nil {
		f.cache.SetLogStart(offset)
	}
}

// close stops the stream for good; later reads report !ok.
func (f *feed) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	f.stopLocked()
}

// Feeds finds the feeds of this node's partition actors by identity, so a
// connection reads a partition's cache without a message to its actor.
// Partitions are node-local (see Fetch), as are feeds. Safe for
// concurrent use; never blocks on I/O.
type Feeds struct {
	m sync.Map // identity → *feed
}

// NewFeeds returns an empty registry.
func NewFeeds() *Feeds { return &Feeds{} }

// Read answers a fetch of the partition with this identity from its
// cache, as a Fetch message to its actor would. ok is false when the
// actor is not running on this node (not activated yet, or stopped): then
// send the Fetch message, which activates it.
func (fs *Feeds) Read(identity string, offset int64, maxBytes int32, isolation int8) (ReadResult, bool) {
	if fs == nil {
		return ReadResult{}, false
	}
	v, ok := fs.m.Load(identity)
	if !ok {
		return ReadResult{}, false
	}
	return v.(*feed).read(offset, maxBytes, isolation)
}

func (fs *Feeds) add(identity string, f *feed) {
	if fs != nil {
		fs.m.Store(identity, f)
	}
}

func (fs *Feeds) remove(identity string, f *feed) {
	if fs != nil {
		fs.m.CompareAndDelete(identity, f)
	}
}
