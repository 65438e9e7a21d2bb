package partition

import (
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/records"
	"github.com/meshka/meshka/upstream"
)

// pendingBatch is a batch's handle in the Pipeline: the client's request,
// and whether the client has its answer.
type pendingBatch struct {
	m        *produceArgs
	answered atomic.Bool // set by whoever answers the client, once
}

// produceArgs is an accepted ProduceRequest: what goes upstream, and
// where its answer goes (nowhere for acks 0).
type produceArgs struct {
	Args upstream.ProduceArgs
	to   *actor.PID
	root *actor.RootContext
}

// answer gives the client its answer unless it has one already: the
// upstream connection's goroutine and the stopping actor may race.
func (b *pendingBatch) answer(r upstream.ProduceResult) bool {
	if !b.answered.CompareAndSwap(false, true) {
		return false
	}
	if b.m.to != nil {
		b.m.root.Send(b.m.to, newProduceResponse(r))
	}
	return true
}

// fail answers the client with an error code.
func (b *pendingBatch) fail(code int16) {
	r := kmsg.NewProduceResponseTopicPartition()
	r.ErrorCode = code
	b.answer(r)
}

type pipeAction = Action[*pendingBatch]

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

// pipeline is the produce pipeline, told the leader upstream's metadata
// names now.
func (a *Actor) pipeline() *Pipeline[*pendingBatch] {
	a.pipe.SetLeader(a.cfg.Upstream.Meta().CachedLeader(a.topic, a.partition))
	return a.pipe
}

func (a *Actor) produce(c actor.Context, m *produceArgs) {
	b := &pendingBatch{m: m}
	a.carryOut(c, a.pipeline().Arrive(b, records.ProducerID(m.Args.Records) >= 0))
}

func (a *Actor) produceDone(c actor.Context, d *produceDone) {
	a.cfg.Budget.Stats.InFlight.Add(-1)
	if d.err != nil {
		a.carryOut(c, a.pipeline().Failed(d.b, d.err))
		return
	}
	a.carryOut(c, a.pipeline().Answered(d.b, d.res, d.delivered))
}

// carryOut does what the pipeline asked, in order: it submits batches to
// the upstream connections, answers clients, and starts the timers and
// the resume wait whose ends come back as messages.
func (a *Actor) carryOut(c actor.Context, acts []pipeAction) {
	for len(acts) > 0 {
		act := acts[0]
		acts = acts[1:]
		switch act.Op {
		case OpSubmit:
			if a.submit(act.Batch, act.Leader) {
				a.cfg.Budget.Stats.InFlight.Add(1)
				if act.Retry {
					a.cfg.Budget.Stats.Retried.Add(1)
				}
				acts = append(acts, a.pipeline().Sent(act.Batch)...)
			} else {
				acts = append(acts, a.pipe.Refused(act.Batch)...)
			}
		case OpAnswer:
			if act.Err != nil {
				// One line per topic and interval, with the count of the
				// others: a broken upstream fails every batch.
				a.cfg.Notices.Warn("produce-failed:"+a.topic, "produce failed upstream", "topic", a.topic, "partition", a.partition, "err", act.Err)
			}
			act.Batch.answer(act.Result)
		case OpInvalidate:
			a.cfg.Upstream.Meta().Invalidate(a.topic)
		case OpResume:
			a.resumeAfter(act.Wait)
		case OpRetryBusy:
			root, self := a.root, a.self
			time.AfterFunc(act.Wait, func() { root.Send(self, &produceRetryBusy{}) })
		case OpEmpty:
			c.Stop(c.Self())
		}
	}
}

// submit hands b to the connection to leader; false when its queue is
// full.
func (a *Actor) submit(b *pendingBatch, leader int32) bool {
	root, self := a.root, a.self
	return a.cfg.Upstream.SubmitProduce(leader, &b.m.Args, func(res upstream.ProduceResult, err error) {
		d := &produceDone{b: b, res: res, err: err}
		if err == nil && res.ErrorCode == 0 {
			// Success goes to the client at once; the actor only
			// learns that the batch left its window. Errors go
			// through the actor, which may send the batch again.
			d.delivered = b.answer(res)
		}
		root.Send(self, d)
	})
}

// resumeAfter waits, then asks upstream for the partition's leader and
// tells the actor; it gives up when the actor stops.
func (a *Actor) resumeAfter(wait time.Duration) {
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
