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

// produceArgs is an accepted batch: what goes upstream, and where its
// answer goes: to the sender of a ProduceRequest, to reply for a batch
// handed over on this node (Writers), or nowhere for acks 0.
type produceArgs struct {
	Args  upstream.ProduceArgs
	to    *actor.PID
	root  *actor.RootContext
	reply func(upstream.ProduceResult)
}

// answer gives the client its answer unless it has one already: the
// upstream connection's goroutine and the stopping actor may race.
func (b *pendingBatch) answer(r upstream.ProduceResult) bool {
	if !b.answered.CompareAndSwap(false, true) {
		return false
	}
	switch {
	case b.m.reply != nil:
		b.m.reply(r)
	case b.m.to != nil:
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

type produceResume struct{ err error }

// produceRetryBusy follows a refused submit: the upstream connection's
// queue was full.
type produceRetryBusy struct{}

// pipeline is the produce pipeline, told the leader upstream's metadata
// names now. Call it with pipeMu held.
func (a *Actor) pipeline() *Pipeline[*pendingBatch] {
	a.pipe.SetLeader(a.cfg.Upstream.Meta().CachedLeader(a.topic, a.partition))
	return a.pipe
}

// step feeds the pipeline one event and carries out what it asks, under
// pipeMu; after the actor stopped it does nothing, since Stop answered
// every batch.
func (a *Actor) step(event func(*Pipeline[*pendingBatch]) []pipeAction) {
	a.pipeMu.Lock()
	defer a.pipeMu.Unlock()
	if !a.closed {
		a.carryOut(event(a.pipeline()))
	}
}

func (a *Actor) produce(m *produceArgs) {
	b := &pendingBatch{m: m}
	idempotent := records.ProducerID(m.Args.Records) >= 0
	a.step(func(p *Pipeline[*pendingBatch]) []pipeAction { return p.Arrive(b, idempotent) })
}

// carryOut does what the pipeline asked, in order: it submits batches to
// the upstream connections, answers clients, and starts the timers and
// the resume wait whose ends come back as messages. Call it with pipeMu
// held; nothing it does waits.
func (a *Actor) carryOut(acts []pipeAction) {
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
			a.root.Stop(a.self)
		}
	}
}

// submit hands b to the connection to leader; false when its queue is
// full. The connection's goroutine reports the answer to the pipeline
// itself (never from within submit, which holds pipeMu): a success goes
// to the client at once, and the pipeline learns that the batch left its
// window; an error goes to the pipeline, which may send the batch again.
func (a *Actor) submit(b *pendingBatch, leader int32) bool {
	return a.cfg.Upstream.SubmitProduce(leader, &b.m.Args, func(res upstream.ProduceResult, err error) {
		a.cfg.Budget.Stats.InFlight.Add(-1)
		if err != nil {
			a.step(func(p *Pipeline[*pendingBatch]) []pipeAction { return p.Failed(b, err) })
			return
		}
		delivered := res.ErrorCode == 0 && b.answer(res)
		a.step(func(p *Pipeline[*pendingBatch]) []pipeAction { return p.Answered(b, res, delivered) })
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
