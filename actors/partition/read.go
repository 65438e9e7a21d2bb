package partition

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// readState holds the reads that came through the mesh and wait for data
// (a FetchRequest with a wait, from a reader on another node, say): the
// partition answers each when data lands or its wait ends. A reader has
// one request out at a time and asks for at most a bounded amount, so a
// slow reader costs the partition nothing while it does not ask; and no
// more than maxParked reads wait at once, so many readers cannot grow it
// either.
type readState struct {
	parked   []parkedRead
	watching bool        // a goroutine waits on the cache's notify channel
	timer    *time.Timer // wakes the actor at the earliest parked deadline
	timerAt  time.Time
}

type parkedRead struct {
	req      *FetchRequest
	to       *actor.PID
	deadline time.Time
}

// maxParked bounds the reads one partition keeps waiting; past it a read
// is answered at once, empty, and its reader asks again.
const maxParked = 1024

// readable says the cache took data since a parked read was last tried.
type readable struct{}

// parkTick says a parked read's wait may be over.
type parkTick struct{}

// fetch answers a read from the cache: at once when there is something to
// say or the reader does not wait, else when data lands or the wait ends.
func (a *Actor) fetch(c actor.Context, m *FetchRequest) {
	r, _ := a.feed.read(m.Offset, max(m.MaxBytes, 1), int8(m.Isolation))
	if m.MaxWaitMillis <= 0 || c.Sender() == nil || !waits(r, m.Offset) || len(a.parked) >= maxParked {
		respond(c, newFetchResponse(r))
		return
	}
	deadline := time.Now().Add(time.Duration(m.MaxWaitMillis) * time.Millisecond)
	a.parked = append(a.parked, parkedRead{req: m, to: c.Sender(), deadline: deadline})
	a.watch(r.Notify)
	a.armTimer(deadline)
}

// waits says whether a read has nothing for its reader yet: the cache has
// nothing past offset, or the reader is ahead of the stream at upstream's
// end.
func waits(r ReadResult, offset int64) bool {
	switch r.Status {
	case Served:
		return r.Bytes == 0
	case ReadThrough:
		return r.HighWatermark == offset
	}
	return false
}

// serveParked tries every parked read again, answering those that got
// data and, when expired, those whose wait is over.
func (a *Actor) serveParked(expired bool) {
	if !expired {
		a.watching = false
	}
	now := time.Now()
	kept := a.parked[:0]
	var notify <-chan struct{}
	for _, p := range a.parked {
		r, _ := a.feed.read(p.req.Offset, max(p.req.MaxBytes, 1), int8(p.req.Isolation))
		if waits(r, p.req.Offset) && now.Before(p.deadline) {
			kept = append(kept, p)
			notify = r.Notify
			continue
		}
		a.root.Send(p.to, newFetchResponse(r))
	}
	clear(a.parked[len(kept):])
	a.parked = kept
	if a.timer != nil {
		a.timer.Stop()
	}
	a.timerAt = time.Time{}
	if len(a.parked) == 0 {
		return
	}
	a.watch(notify)
	earliest := a.parked[0].deadline
	for _, p := range a.parked[1:] {
		if p.deadline.Before(earliest) {
			earliest = p.deadline
		}
	}
	a.armTimer(earliest)
}

// watch wakes the actor when notify closes; one watcher at a time, ended
// by the actor's stop.
func (a *Actor) watch(notify <-chan struct{}) {
	if a.watching || notify == nil {
		return
	}
	a.watching = true
	ctx, root, self := a.ctx, a.root, a.self
	go func() {
		select {
		case <-notify:
			root.Send(self, &readable{})
		case <-ctx.Done():
		}
	}()
}

// armTimer makes sure the actor wakes by at.
func (a *Actor) armTimer(at time.Time) {
	if !a.timerAt.IsZero() && !at.Before(a.timerAt) {
		return
	}
	if a.timer != nil {
		a.timer.Stop()
	}
	a.timerAt = at
	root, self := a.root, a.self
	a.timer = time.AfterFunc(time.Until(at), func() { root.Send(self, &parkTick{}) })
}

// failParked answers every parked read with code.
func (a *Actor) failParked(code int16) {
	if a.timer != nil {
		a.timer.Stop()
	}
	for _, p := range a.parked {
		a.root.Send(p.to, newFetchResponse(ReadResult{Status: Failed, Err: code, HighWatermark: -1, LastStableOffset: -1, LogStartOffset: -1}))
	}
	a.parked = nil
}
