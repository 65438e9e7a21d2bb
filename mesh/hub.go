package mesh

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/meshka/meshka/actors/partition"
	"github.com/meshka/meshka/records"
)

// A hub is one node's shared reader of one partition: it reads the
// partition from its owner's cache through the mesh (partition.Reader),
// decodes each batch once, and offers every record to each of the node's
// subscribers of the partition whose filter matches it. A subscriber
// that starts behind the hub, or falls behind it (Pause), reads alone
// from its own offset until it has caught up, then rejoins. The hub's
// loop owns its state; the Mesh owns its goroutines.
type hub struct {
	m    *Mesh
	key  hubKey
	cmds chan hubCmd
	refs int // subscriptions attached; the Mesh's mu guards it

	// the loop's
	subs    []*subPart
	cursor  int64 // the next offset the shared reader hands over
	reading context.CancelFunc
	batches chan fetched // from the current shared reader
}

type hubKey struct {
	topic     string
	partition int32
}

type hubCmd struct {
	sp     *subPart
	joined chan<- bool // a catch-up reader asking to rejoin: may it?
}

// fetched is one read's decoded records, or why the read failed.
type fetched struct {
	recs []records.Record
	next int64 // the offset after the read
	err  error
}

const (
	// hubIdle is how long a hub with no subscriber keeps its goroutine.
	hubIdle = 30 * time.Second
	// readWait is how long one read through the mesh waits for data.
	readWait = time.Second
	// retryWait paces reads while the partition's owner is moving.
	retryWait = 100 * time.Millisecond
)

// attach adds sp to its partition's hub on this node, starting the hub
// if it must; false once the Mesh is closed.
func (m *Mesh) attach(k hubKey, sp *subPart) bool {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return false
	}
	h := m.hubs[k]
	if h == nil {
		h = &hub{m: m, key: k, cmds: make(chan hubCmd, 64)}
		m.hubs[k] = h
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			h.run()
		}()
	}
	h.refs++
	m.mu.Unlock()
	select {
	case h.cmds <- hubCmd{sp: sp}:
		return true
	case <-m.ctx.Done():
		return false
	}
}

// detach lets a hub go once no subscription holds it; the subscription's
// parts are dropped from it lazily, once it sees they ended.
func (m *Mesh) detach(k hubKey) {
	m.mu.Lock()
	if h := m.hubs[k]; h != nil {
		h.refs--
	}
	m.mu.Unlock()
}

// quit removes the hub if nothing holds it, so no attach can reach it.
func (h *hub) quit() bool {
	h.m.mu.Lock()
	defer h.m.mu.Unlock()
	if h.refs > 0 || len(h.cmds) > 0 {
		return false
	}
	delete(h.m.hubs, h.key)
	return true
}

func (h *hub) run() {
	purge := time.NewTicker(time.Second)
	defer purge.Stop()
	idleSince := time.Now()
	defer h.stopReading()
	for {
		select {
		case <-h.m.ctx.Done():
			for _, sp := range h.subs {
				sp.sub.end(ErrClosed)
			}
			return
		case c := <-h.cmds:
			h.join(c)
		case f := <-h.batches:
			h.deliver(f)
		case <-purge.C:
			h.purge()
			if len(h.subs) > 0 {
				idleSince = time.Now()
			} else if time.Since(idleSince) >= hubIdle && h.quit() {
				return
			}
		}
	}
}

// join takes a subscriber at its offset: it shares the hub's reads from
// there if it is not behind them; otherwise it reads alone until it is.
func (h *hub) join(c hubCmd) {
	sp := c.sp
	if sp.sub.ended() {
		answer(c.joined, true)
		return
	}
	if h.reading == nil {
		h.startReading(sp.next)
	}
	if sp.next < h.cursor {
		if c.joined != nil {
			answer(c.joined, false) // its catch-up reader goes on
			return
		}
		h.catchUp(sp)
		return
	}
	h.subs = append(h.subs, sp)
	answer(c.joined, true)
}

func answer(ch chan<- bool, v bool) {
	if ch != nil {
		ch <- v
	}
}

// deliver offers one read's records to every subscriber at them.
func (h *hub) deliver(f fetched) {
	if f.err != nil {
		for _, sp := range h.subs {
			sp.sub.end(f.err)
		}
		h.subs = nil
		h.stopReading()
		return
	}
	valid := h.m.fetchCheck(h.key.topic)
	for i := range f.recs {
		rec := &f.recs[i]
		if valid != nil && !valid(rec.Key, rec.Value) {
			// checked once for every subscriber, and skipped by all
			for _, sp := range h.subs {
				sp.next = max(sp.next, rec.Offset+1)
			}
			continue
		}
		for j := 0; j < len(h.subs); j++ {
			sp := h.subs[j]
			if rec.Offset < sp.next {
				continue
			}
			if sp.sub.filter.Match(rec.Key, rec.Headers) && !sp.sub.offer(h.record(rec)) {
				h.tooSlow(sp)
				h.subs = append(h.subs[:j], h.subs[j+1:]...)
				j--
				continue
			}
			sp.next = rec.Offset + 1
		}
	}
	h.cursor = f.next
	for _, sp := range h.subs {
		sp.next = max(sp.next, f.next)
		sp.read.Store(sp.next)
	}
	h.purge()
}

func (h *hub) record(r *records.Record) Record {
	return Record{Topic: h.key.topic, Partition: h.key.partition, Offset: r.Offset, Key: r.Key, Value: r.Value,
		Headers: r.Headers, Timestamp: time.UnixMilli(r.Timestamp)}
}

// tooSlow takes a subscriber whose queue is full off the shared reader.
func (h *hub) tooSlow(sp *subPart) {
	if sp.sub.slow == CutOff {
		sp.sub.end(&SlowError{})
		return
	}
	h.catchUp(sp)
}

// purge drops the subscribers that ended, and stops reading when none is
// left.
func (h *hub) purge() {
	h.subs = deleteEnded(h.subs)
	if len(h.subs) == 0 {
		h.stopReading()
	}
}

func deleteEnded(subs []*subPart) []*subPart {
	kept := subs[:0]
	for _, sp := range subs {
		if !sp.sub.ended() {
			kept = append(kept, sp)
		}
	}
	clear(subs[len(kept):])
	return kept
}

// startReading starts the shared reader at offset.
func (h *hub) startReading(offset int64) {
	ctx, cancel := context.WithCancel(h.m.ctx)
	out := make(chan fetched, 1)
	if !h.m.goroutine(func() { h.read(ctx, offset, out) }) {
		cancel()
		return
	}
	h.reading, h.batches, h.cursor = cancel, out, offset
}

func (h *hub) stopReading() {
	if h.reading != nil {
		h.reading()
		h.reading, h.batches = nil, nil
	}
}

// read is the shared reader: it reads the partition from offset on and
// sends each read's records, decoded once, to the hub, at most one read
// ahead of it.
func (h *hub) read(ctx context.Context, offset int64, out chan<- fetched) {
	r := partition.NewReader(h.m.cluster, h.m.up, h.m.upstreamName, h.key.topic, h.key.partition, offset, partition.ReadUncommitted)
	defer r.Close()
	for ctx.Err() == nil {
		recs, err := readRecords(ctx, r)
		if err != nil && !retriable(err) {
			select {
			case out <- fetched{err: err}:
			case <-ctx.Done():
			}
			return
		}
		if err != nil || len(recs) == 0 {
			if err != nil {
				pause(ctx, retryWait)
			}
			continue
		}
		select {
		case out <- fetched{recs: recs, next: r.Offset()}:
		case <-ctx.Done():
			return
		}
	}
}

// readRecords is one read's records, decoded.
func readRecords(ctx context.Context, r *partition.Reader) ([]records.Record, error) {
	bufs, err := r.Read(ctx, partition.MaxRemoteRead, readWait)
	if err != nil {
		return nil, err
	}
	var recs []records.Record
	for _, b := range bufs {
		if recs, err = records.DecodeBatch(b, recs); err != nil {
			return nil, err
		}
	}
	return recs, nil
}

// retriable says whether a read error passes once the views agree: the
// owner moving, or a node on the way not answering.
func retriable(err error) bool {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Retriable
	}
	return errors.Is(err, context.DeadlineExceeded)
}

func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// catchUp reads the partition for sp alone, from sp.next, at the pace the
// subscriber takes records, and hands sp back to the hub once it has
// caught up with the shared reader.
func (h *hub) catchUp(sp *subPart) {
	ctx := h.m.ctx
	cmds := h.cmds
	started := h.m.goroutine(func() {
		r := partition.NewReader(h.m.cluster, h.m.up, h.m.upstreamName, h.key.topic, h.key.partition, sp.next, partition.ReadUncommitted)
		defer r.Close()
		defer func() {
			if ctx.Err() != nil {
				sp.sub.end(ErrClosed)
			}
		}()
		joined := make(chan bool, 1)
		for ctx.Err() == nil && !sp.sub.ended() {
			recs, err := readRecords(ctx, r)
			if err != nil && !retriable(err) {
				sp.sub.end(err)
				return
			}
			if err != nil {
				pause(ctx, retryWait)
				continue
			}
			valid := h.m.fetchCheck(h.key.topic)
			for i := range recs {
				rec := &recs[i]
				if rec.Offset < sp.next || !sp.sub.filter.Match(rec.Key, rec.Headers) {
					continue
				}
				if valid != nil && !valid(rec.Key, rec.Value) {
					sp.next = rec.Offset + 1
					continue
				}
				if !sp.sub.give(ctx, h.record(rec)) {
					return
				}
				sp.next = rec.Offset + 1
			}
			sp.next = max(sp.next, r.Offset())
			sp.read.Store(sp.next)
			select {
			case cmds <- hubCmd{sp: sp, joined: joined}:
			case <-sp.sub.done:
				return
			case <-ctx.Done():
				return
			}
			select {
			case ok := <-joined:
				if ok {
					return
				}
			case <-ctx.Done():
				return
			}
		}
	})
	if !started {
		sp.sub.end(ErrClosed)
	}
}
