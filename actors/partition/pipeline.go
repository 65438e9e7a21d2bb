package partition

import (
	"errors"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/upstream"
)

// produceRetries bounds how often meshka sends one batch again.
const produceRetries = 3

// busyWait is how long a batch refused by a full upstream connection waits
// before it is offered again.
const busyWait = time.Millisecond

// Op is what an Action asks of the caller.
type Op uint8

const (
	// OpSubmit: hand Batch to meshka's produce connection to broker
	// Leader, then report Sent if the connection took it or Refused if
	// its queue was full. A Submit is the last action of its list, and
	// the pipeline takes no other event until Sent or Refused.
	OpSubmit Op = iota + 1
	// OpAnswer: give Batch's client Result. Err, when not nil, is the
	// connection error the batch failed with.
	OpAnswer
	// OpInvalidate: drop the topic's cached metadata, so the next lookup
	// asks upstream.
	OpInvalidate
	// OpResume: after Wait, ask upstream for the partition's metadata and
	// report Resumed with the lookup's error.
	OpResume
	// OpRetryBusy: after Wait, report BusyOver.
	OpRetryBusy
	// OpEmpty: the pipeline was relinquished and holds no batch now; the
	// partition actor may stop.
	OpEmpty
)

func (o Op) String() string {
	switch o {
	case OpSubmit:
		return "submit"
	case OpAnswer:
		return "answer"
	case OpInvalidate:
		return "invalidate"
	case OpResume:
		return "resume"
	case OpRetryBusy:
		return "retry-busy"
	case OpEmpty:
		return "empty"
	}
	return "none"
}

// Action is one thing the pipeline asks its caller to do.
type Action[B comparable] struct {
	Op     Op
	Batch  B                      // OpSubmit, OpAnswer
	Leader int32                  // OpSubmit
	Retry  bool                   // OpSubmit: the batch was sent before
	Result upstream.ProduceResult // OpAnswer
	Err    error                  // OpAnswer
	Wait   time.Duration          // OpResume, OpRetryBusy
}

// Pipeline is a partition's produce pipeline: the order and retry rules
// of the batches meshka forwards upstream. Batches wait in the order they
// arrived; up to maxInFlight of them are on their way to the upstream
// leader, written in that order on meshka's one connection to it, so
// upstream appends them in that order. When a batch must be sent again
// (the leader moved, or the connection broke under an idempotent batch)
// the pipeline pauses: it lets the batches in flight answer, puts every
// batch to retry back in its place in the order, waits, refreshes the
// leader and goes on from there.
//
// It does no I/O and reads no clock. The caller names each batch by a
// handle B of its choosing, feeds events in (each returns the actions to
// carry out, in order) and tells it, with SetLeader, the leader upstream's
// metadata names before each event and before Sent. Not safe for
// concurrent use.
type Pipeline[B comparable] struct {
	maxQueue    int // batches waiting or in flight
	maxInFlight int

	seq   uint64
	queue []pending[B] // not sent yet, in arrival order
	sent  []pending[B] // on their way upstream, in send order

	leader  int32 // the broker the batches in sent went to
	route   int32 // the leader upstream's metadata names now
	routed  bool  // route is known
	offered bool  // queue[0] is offered to offerTo: Sent or Refused follows
	offerTo int32

	paused       bool // nothing is sent until Resumed
	resuming     bool // an OpResume is under way
	failures     int  // pauses since the last success, for backoff
	busy         bool // an OpRetryBusy is under way
	relinquished bool // another node owns the partition: OpEmpty once empty

	out []Action[B] // what the current event returns
}

type pending[B comparable] struct {
	b          B
	seq        uint64
	attempt    int
	sends      int  // how many times it left for upstream
	idempotent bool // it carries a producer id
}

// NewPipeline returns an empty pipeline holding at most maxQueue batches,
// maxInFlight of them on their way upstream.
func NewPipeline[B comparable](maxQueue, maxInFlight int) *Pipeline[B] {
	return &Pipeline[B]{maxQueue: maxQueue, maxInFlight: maxInFlight}
}

// Len is the number of batches waiting and in flight.
func (p *Pipeline[B]) Len() (waiting, inFlight int) { return len(p.queue), len(p.sent) }

// SetLeader tells the pipeline the partition's leader as upstream's
// metadata names it now; known is false when it names none (no entry, an
// error, a leader being elected). The pipeline sends to it the next time
// it sends.
func (p *Pipeline[B]) SetLeader(leader int32, known bool) {
	p.route, p.routed = leader, known
}

// Arrive takes a new batch; idempotent says it carries a producer id, so
// upstream discards a copy of it sent twice. A batch that finds the
// pipeline full is answered REQUEST_TIMED_OUT at once, as a broker past
// its queue bound would.
//
// A relinquished pipeline still takes batches, though the cluster sends
// it none: it is empty only once they are answered too.
func (p *Pipeline[B]) Arrive(b B, idempotent bool) []Action[B] {
	p.seq++
	if len(p.queue)+len(p.sent) >= p.maxQueue {
		p.answer(b, failResult(kerr.RequestTimedOut.Code), nil)
		return p.take()
	}
	p.queue = append(p.queue, pending[B]{b: b, seq: p.seq, idempotent: idempotent})
	p.sendNext()
	return p.take()
}

// Sent reports that the connection took the batch of the last OpSubmit.
func (p *Pipeline[B]) Sent(b B) []Action[B] {
	if !p.offered || p.queue[0].b != b {
		return p.take()
	}
	p.offered = false
	p.queue[0].sends++
	p.sent = append(p.sent, p.queue[0])
	p.leader = p.offerTo
	p.queue[0] = pending[B]{}
	p.queue = p.queue[1:]
	p.sendNext()
	return p.take()
}

// Refused reports that the connection's queue was full: the batch of the
// last OpSubmit stays first in line and is offered again on the next
// event, at the latest after an OpRetryBusy.
func (p *Pipeline[B]) Refused(b B) []Action[B] {
	if !p.offered || p.queue[0].b != b {
		return p.take()
	}
	p.offered = false
	if !p.busy {
		p.busy = true
		p.out = append(p.out, Action[B]{Op: OpRetryBusy, Wait: busyWait})
	}
	return p.take()
}

// BusyOver reports the wait an OpRetryBusy asked for has passed.
func (p *Pipeline[B]) BusyOver() []Action[B] {
	p.busy = false
	p.sendNext()
	return p.take()
}

// Answered reports upstream's answer for b. delivered says a success went
// to the client already, straight from the connection's goroutine: the
// pipeline then only learns that b left its window.
func (p *Pipeline[B]) Answered(b B, res upstream.ProduceResult, delivered bool) []Action[B] {
	return p.done(b, res, nil, delivered)
}

// Failed reports that b got no answer from upstream: err wraps
// upstream.ErrNotSent when b never left meshka, and is otherwise the
// connection's failure under it.
func (p *Pipeline[B]) Failed(b B, err error) []Action[B] {
	return p.done(b, upstream.ProduceResult{}, err, false)
}

func (p *Pipeline[B]) done(b B, res upstream.ProduceResult, err error, delivered bool) []Action[B] {
	i := slices.IndexFunc(p.sent, func(x pending[B]) bool { return x.b == b })
	if i < 0 {
		return p.take() // answered by Stop already
	}
	x := p.sent[i]
	p.sent = slices.Delete(p.sent, i, i+1)
	switch {
	case delivered:
		p.failures = 0
	case p.mayRetry(x, res.ErrorCode, err) && x.attempt < produceRetries:
		x.attempt++
		if err == nil && upstream.RetriableLeaderErr(res.ErrorCode) {
			p.out = append(p.out, Action[B]{Op: OpInvalidate})
		}
		p.requeue(x)
		p.pause()
	case err == nil:
		p.answer(b, res, nil)
	default:
		p.answer(b, failResult(failCode(err)), err)
	}
	p.maybeResume()
	p.sendNext()
	return p.take()
}

// Resumed reports the wait of an OpResume is over, with the error of the
// metadata lookup that ended it, if any.
func (p *Pipeline[B]) Resumed(err error) []Action[B] {
	p.resuming, p.paused = false, false
	var ke *kerr.Error
	if errors.As(err, &ke) && !upstream.RetriableLeaderErr(ke.Code) {
		// Upstream answered for the partition with an error (the topic
		// was deleted, say): what waits gets that answer, as a broker
		// would give it. A leader still being elected is waited for,
		// within each batch's retries.
		p.failAll(ke.Code)
		return p.take()
	}
	// Batches that have been tried too often go back to the client.
	for len(p.queue) > 0 && p.queue[0].attempt > produceRetries {
		p.answer(p.queue[0].b, failResult(kerr.NotLeaderForPartition.Code), nil)
		p.queue[0] = pending[B]{}
		p.queue = p.queue[1:]
	}
	p.sendNext()
	return p.take()
}

// Relinquish reports that another node owns the partition now. The
// pipeline finishes what it accepted, sending what waits, since an error
// would make clients send batches upstream may have appended; OpEmpty
// follows once nothing waits or is in flight.
func (p *Pipeline[B]) Relinquish() []Action[B] {
	p.relinquished = true
	return p.take()
}

// Relinquished says whether Relinquish was reported.
func (p *Pipeline[B]) Relinquished() bool { return p.relinquished }

// Stop answers every batch waiting or in flight NOT_LEADER_OR_FOLLOWER, so
// its client re-routes. A batch in flight may be answered by upstream at
// the same moment; the caller gives each client one answer only.
func (p *Pipeline[B]) Stop() []Action[B] {
	p.offered = false
	p.failAll(kerr.NotLeaderForPartition.Code)
	out := p.out
	p.out = nil
	return out
}

// sendNext offers the first waiting batch while the window has room.
// Batches in flight to one leader answer before any goes to another, so a
// leader change cannot let a later batch overtake an earlier one.
func (p *Pipeline[B]) sendNext() {
	if p.paused || p.offered || len(p.queue) == 0 || len(p.sent) >= p.maxInFlight {
		return
	}
	if !p.routed {
		// No leader known, or upstream said it has none (one is being
		// elected): the resume asks upstream afresh rather than the
		// cache, which would keep that answer for its whole TTL.
		p.out = append(p.out, Action[B]{Op: OpInvalidate})
		p.queue[0].attempt++
		p.pause()
		return
	}
	if len(p.sent) > 0 && p.route != p.leader {
		return
	}
	p.offered, p.offerTo = true, p.route
	p.out = append(p.out, Action[B]{Op: OpSubmit, Batch: p.queue[0].b, Leader: p.route, Retry: p.queue[0].sends > 0})
}

// mayRetry says whether meshka sends the batch again. It does when that
// cannot duplicate it and the client would only retry it too: upstream
// refused it because the leader moved; it never left meshka; or the
// connection broke under it and it carries a producer id, so upstream
// discards a copy it already appended. And it does for an idempotent
// batch refused as out of sequence while an earlier batch of the partition
// waits to be sent again: it was written behind that batch, and goes
// again behind it.
func (p *Pipeline[B]) mayRetry(x pending[B], code int16, err error) bool {
	switch {
	case err != nil:
		return errors.Is(err, upstream.ErrNotSent) || x.idempotent
	case upstream.RetriableLeaderErr(code):
		return true
	case code == kerr.OutOfOrderSequenceNumber.Code:
		return p.paused && x.idempotent
	}
	return false
}

// failCode is the error a client gets for a batch meshka could not send
// or lost the connection under; both tell the client to retry.
func failCode(err error) int16 {
	if errors.Is(err, upstream.ErrNotSent) {
		return kerr.NotLeaderForPartition.Code // refresh metadata, then retry
	}
	return kerr.NetworkException.Code
}

func failResult(code int16) upstream.ProduceResult {
	r := kmsg.NewProduceResponseTopicPartition()
	r.ErrorCode = code
	return r
}

// requeue puts x back among the waiting batches in arrival order; every
// batch waiting arrived after every batch sent, so it goes near the front.
func (p *Pipeline[B]) requeue(x pending[B]) {
	i, _ := slices.BinarySearchFunc(p.queue, x.seq, func(y pending[B], seq uint64) int {
		switch {
		case y.seq < seq:
			return -1
		case y.seq > seq:
			return 1
		}
		return 0
	})
	p.queue = slices.Insert(p.queue, i, x)
}

func (p *Pipeline[B]) pause() {
	p.paused = true
	p.maybeResume()
}

// maybeResume starts the wait before a retry once nothing is in flight.
func (p *Pipeline[B]) maybeResume() {
	if !p.paused || p.resuming || len(p.sent) > 0 {
		return
	}
	p.resuming = true
	// The first retry follows a metadata refresh at once, as a Kafka
	// producer's does; later ones back off.
	var wait time.Duration
	if p.failures > 0 {
		wait = upstream.Backoff(p.failures - 1)
	}
	p.failures++
	p.out = append(p.out, Action[B]{Op: OpResume, Wait: wait})
}

// failAll answers every batch in flight or waiting with code.
func (p *Pipeline[B]) failAll(code int16) {
	for _, x := range p.sent {
		p.answer(x.b, failResult(code), nil)
	}
	for _, x := range p.queue {
		p.answer(x.b, failResult(code), nil)
	}
	p.sent, p.queue = nil, nil
}

func (p *Pipeline[B]) answer(b B, r upstream.ProduceResult, err error) {
	p.out = append(p.out, Action[B]{Op: OpAnswer, Batch: b, Result: r, Err: err})
}

// take hands over the current event's actions, with OpEmpty last when the
// relinquished pipeline holds nothing.
func (p *Pipeline[B]) take() []Action[B] {
	if p.relinquished && len(p.queue) == 0 && len(p.sent) == 0 {
		p.out = append(p.out, Action[B]{Op: OpEmpty})
	}
	out := p.out
	p.out = nil
	return out
}
