package partition

import (
	"errors"
	"slices"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/records"
	"github.com/meshka/meshka/upstream"
)

// produceState is the partition's produce pipeline. Batches wait in the
// order they arrived; up to MaxInFlight of them are on their way to the
// upstream leader, written in that order on meshka's one connection to
// it, so upstream appends them in that order. When a batch must be sent
// again (the leader moved, or the connection broke under an idempotent
// batch) the pipeline pauses: it lets the batches in flight answer, puts
// every batch to retry back in its place in the order, waits, refreshes
// the leader and goes on from there.
type produceState struct {
	seq      uint64
	queue    []*pendingBatch // not sent yet, in arrival order
	sent     []*pendingBatch // on their way upstream, in send order
	leader   int32           // the broker the batches in sent went to
	paused   bool            // nothing is sent until produceResume
	resuming bool            // the resume goroutine is running
	failures int             // pauses since the last success, for backoff
	busy     bool            // a produceRetryBusy is on its way
}

type pendingBatch struct {
	m        *Produce
	seq      uint64
	attempt  int
	answered atomic.Bool // set by whoever answers the client, once
}

// answer gives the client its answer unless it has one already: the
// upstream connection's goroutine and the stopping actor may race.
func (b *pendingBatch) answer(r upstream.ProduceResult) bool {
	if !b.answered.CompareAndSwap(false, true) {
		return false
	}
	r.Partition = b.m.Args.Partition
	if b.m.Reply != nil {
		b.m.Reply <- r
	}
	return true
}

// fail answers the client with an error code.
func (b *pendingBatch) fail(code int16) {
	r := kmsg.NewProduceResponseTopicPartition()
	r.ErrorCode = code
	b.answer(r)
}

type produceDone struct {
	b         *pendingBatch
	res       upstream.ProduceResult
	err       error
	delivered bool // the answer went to the client already
}

type produceResume struct{ err error }

// produceRetryBusy follows a refused submit: the upstream connection's
// queue was full.
type produceRetryBusy struct{}

const pipeBusyWait = time.Millisecond

func (a *Actor) produce(m *Produce) {
	a.seq++
	b := &pendingBatch{m: m, seq: a.seq}
	if len(a.queue)+len(a.sent) >= a.cfg.MaxQueue {
		b.fail(kerr.RequestTimedOut.Code)
		return
	}
	a.queue = append(a.queue, b)
	a.sendNext()
}

// sendNext sends waiting batches while the window has room. Batches in
// flight to one leader answer before any goes to another, so a leader
// change cannot let a later batch overtake an earlier one.
func (a *Actor) sendNext() {
	for !a.paused && len(a.queue) > 0 && len(a.sent) < a.cfg.MaxInFlight {
		leader, ok := a.cfg.Upstream.Meta().CachedLeader(a.topic, a.partition)
		if !ok {
			// No leader known, or upstream said it has none (one is being
			// elected): the resume asks upstream afresh rather than the
			// cache, which would keep that answer for its whole TTL.
			a.cfg.Upstream.Meta().Invalidate(a.topic)
			a.queue[0].attempt++
			a.pause()
			return
		}
		if len(a.sent) > 0 && leader != a.leader {
			return
		}
		b := a.queue[0]
		root, self := a.root, a.self
		accepted := a.cfg.Upstream.SubmitProduce(leader, &b.m.Args, func(res upstream.ProduceResult, err error) {
			d := &produceDone{b: b, res: res, err: err}
			if err == nil && res.ErrorCode == 0 {
				// Success goes to the client at once; the actor only
				// learns that the batch left its window. Errors go
				// through the actor, which may send the batch again.
				d.delivered = b.answer(res)
			}
			root.Send(self, d)
		})
		if !accepted {
			// The connection's queue is full: try again shortly.
			if !a.busy {
				a.busy = true
				time.AfterFunc(pipeBusyWait, func() { root.Send(self, &produceRetryBusy{}) })
			}
			return
		}
		a.queue[0] = nil
		a.queue = a.queue[1:]
		a.leader = leader
		a.sent = append(a.sent, b)
	}
}

func (a *Actor) produceDone(d *produceDone) {
	i := slices.Index(a.sent, d.b)
	if i < 0 {
		return // answered by stop already
	}
	a.sent = slices.Delete(a.sent, i, i+1)
	b := d.b
	switch {
	case d.delivered:
		a.failures = 0
	case a.mayRetry(d) && b.attempt < produceRetries:
		b.attempt++
		if d.err == nil && upstream.RetriableLeaderErr(d.res.ErrorCode) {
			a.cfg.Upstream.Meta().Invalidate(a.topic)
		}
		a.requeue(b)
		a.pause()
	case d.err == nil:
		b.answer(d.res)
	default:
		b.fail(failCode(d.err))
		a.log.Warn("produce failed upstream", "err", d.err)
	}
	a.maybeResume()
	a.sendNext()
}

// mayRetry says whether meshka sends the batch again. It does when that
// cannot duplicate it and the client would only retry it too: upstream
// refused it because the leader moved; it never left meshka; or the
// connection broke under it and it carries a producer id, so upstream
// discards a copy it already appended. And it does for an idempotent
// batch refused as out of sequence while an earlier batch of the partition
// waits to be sent again: it was written behind that batch, and goes
// again behind it.
func (a *Actor) mayRetry(d *produceDone) bool {
	idempotent := records.ProducerID(d.b.m.Args.Records) >= 0
	switch {
	case d.err != nil:
		return errors.Is(d.err, upstream.ErrNotSent) || idempotent
	case upstream.RetriableLeaderErr(d.res.ErrorCode):
		return true
	case d.res.ErrorCode == kerr.OutOfOrderSequenceNumber.Code:
		return a.paused && idempotent
	}
	return false
}

// requeue puts b back among the waiting batches in arrival order; every
// batch waiting arrived after every batch sent, so it goes near the front.
func (a *Actor) requeue(b *pendingBatch) {
	i, _ := slices.BinarySearchFunc(a.queue, b.seq, func(x *pendingBatch, seq uint64) int {
		switch {
		case x.seq < seq:
			return -1
		case x.seq > seq:
			return 1
		}
		return 0
	})
	a.queue = slices.Insert(a.queue, i, b)
}

func (a *Actor) pause() {
	a.paused = true
	a.maybeResume()
}

// maybeResume starts the wait before a retry once nothing is in flight.
func (a *Actor) maybeResume() {
	if !a.paused || a.resuming || len(a.sent) > 0 {
		return
	}
	a.resuming = true
	// The first retry follows a metadata refresh at once, as a Kafka
	// producer's does; later ones back off.
	var wait time.Duration
	if a.failures > 0 {
		wait = upstream.Backoff(a.failures - 1)
	}
	a.failures++
	ctx, root, self := a.ctx, a.root, a.self
	topic, partition := a.topic, a.partition
	meta := a.cfg.Upstream.Meta()
	go func() {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		_, err := meta.Partition(ctx, topic, partition)
		root.Send(self, &produceResume{err: err})
	}()
}

func (a *Actor) produceResume(r *produceResume) {
	a.resuming, a.paused = false, false
	var ke *kerr.Error
	if errors.As(r.err, &ke) && !upstream.RetriableLeaderErr(ke.Code) {
		// Upstream answered for the partition with an error (the topic
		// was deleted, say): what waits gets that answer, as a broker
		// would give it. A leader still being elected is waited for,
		// within each batch's retries.
		a.failProduce(ke.Code)
		return
	}
	// Batches that have been tried too often go back to the client.
	for len(a.queue) > 0 && a.queue[0].attempt > produceRetries {
		a.queue[0].fail(kerr.NotLeaderForPartition.Code)
		a.queue[0] = nil
		a.queue = a.queue[1:]
	}
	a.sendNext()
}

// failProduce answers every batch waiting or in flight with code.
func (a *Actor) failProduce(code int16) {
	for _, b := range a.sent {
		b.fail(code)
	}
	for _, b := range a.queue {
		b.fail(code)
	}
	a.sent, a.queue = nil, nil
}
