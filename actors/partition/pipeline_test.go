package partition

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/upstream"
)

// These tests feed the produce Pipeline events and compare what it asks
// for, step by step, with what the rules say. A harness stands in for the
// actor: it carries out the actions as the actor does (a Submit is taken
// at once, or refused while the test says the connection is full) and
// writes each down as one line.

var (
	errLost    = errors.New("connection lost")
	errNotSent = fmt.Errorf("%w: dial refused", upstream.ErrNotSent)
)

type pipeHarness struct {
	t        *testing.T
	p        *Pipeline[int]
	leader   int32 // what upstream's metadata names; known at the start
	known    bool
	full     bool         // the connection refuses submits
	answered map[int]bool // by the pipeline
	trace    []string
}

func newPipeHarness(t *testing.T, maxQueue, maxInFlight int) *pipeHarness {
	return &pipeHarness{t: t, p: NewPipeline[int](maxQueue, maxInFlight), leader: 1, known: true, answered: make(map[int]bool)}
}

// pipeEvent is one thing that happens to the partition: an event fed to
// the pipeline, or a change the pipeline learns of with the next one (the
// leader upstream names, the connection filling up).
type pipeEvent struct {
	name string
	feed func(h *pipeHarness) []Action[int]
}

func arrive(b int) pipeEvent {
	return pipeEvent{fmt.Sprintf("arrive %d", b), func(h *pipeHarness) []Action[int] { return h.p.Arrive(b, false) }}
}

func arriveIdem(b int) pipeEvent {
	return pipeEvent{fmt.Sprintf("arrive idempotent %d", b), func(h *pipeHarness) []Action[int] { return h.p.Arrive(b, true) }}
}

// ok is upstream's success, which the connection's goroutine has given
// the client already.
func ok(b int) pipeEvent {
	return pipeEvent{fmt.Sprintf("ok %d", b), func(h *pipeHarness) []Action[int] {
		return h.p.Answered(b, kmsg.NewProduceResponseTopicPartition(), true)
	}}
}

// answered is upstream's answer with code, not given to the client yet.
func answered(b int, code int16) pipeEvent {
	return pipeEvent{fmt.Sprintf("answered %d %s", b, codeName(code)), func(h *pipeHarness) []Action[int] {
		r := kmsg.NewProduceResponseTopicPartition()
		r.ErrorCode = code
		return h.p.Answered(b, r, false)
	}}
}

func lost(b int) pipeEvent {
	return pipeEvent{fmt.Sprintf("lost %d", b), func(h *pipeHarness) []Action[int] { return h.p.Failed(b, errLost) }}
}

func notSent(b int) pipeEvent {
	return pipeEvent{fmt.Sprintf("not sent %d", b), func(h *pipeHarness) []Action[int] { return h.p.Failed(b, errNotSent) }}
}

func resumed(err error) pipeEvent {
	return pipeEvent{fmt.Sprintf("resumed %v", err), func(h *pipeHarness) []Action[int] { return h.p.Resumed(err) }}
}

var (
	busyOver   = pipeEvent{"busy over", func(h *pipeHarness) []Action[int] { return h.p.BusyOver() }}
	relinquish = pipeEvent{"relinquish", func(h *pipeHarness) []Action[int] { return h.p.Relinquish() }}
	stop       = pipeEvent{"stop", func(h *pipeHarness) []Action[int] { return h.p.Stop() }}
	noLeader   = pipeEvent{"no leader", func(h *pipeHarness) []Action[int] { h.known = false; return nil }}
)

func leaderIs(id int32) pipeEvent {
	return pipeEvent{fmt.Sprintf("leader is %d", id), func(h *pipeHarness) []Action[int] {
		h.leader, h.known = id, true
		return nil
	}}
}

func connFull(full bool) pipeEvent {
	return pipeEvent{fmt.Sprintf("connection full %v", full), func(h *pipeHarness) []Action[int] {
		h.full = full
		return nil
	}}
}

func codeName(code int16) string {
	if code == 0 {
		return "ok"
	}
	if e := kerr.TypedErrorForCode(code); e != nil {
		return e.Message
	}
	return fmt.Sprintf("code %d", code)
}

// feed runs one event as the actor would: the pipeline learns the leader
// first, and again before each Sent.
func (h *pipeHarness) feed(ev pipeEvent) []string {
	h.trace = nil
	h.p.SetLeader(h.leader, h.known)
	acts := ev.feed(h)
	for len(acts) > 0 {
		act := acts[0]
		acts = acts[1:]
		switch act.Op {
		case OpSubmit:
			if len(acts) > 0 {
				h.t.Errorf("%s: the submit of %d is not the last action", ev.name, act.Batch)
			}
			if h.full {
				h.note("submit %d to %d refused", act.Batch, act.Leader)
				acts = append(acts, h.p.Refused(act.Batch)...)
				continue
			}
			h.note("submit %d to %d", act.Batch, act.Leader)
			h.p.SetLeader(h.leader, h.known)
			acts = append(acts, h.p.Sent(act.Batch)...)
		case OpAnswer:
			if h.answered[act.Batch] {
				h.t.Errorf("%s: batch %d answered twice", ev.name, act.Batch)
			}
			h.answered[act.Batch] = true
			if act.Err != nil {
				h.note("answer %d %s: %v", act.Batch, codeName(act.Result.ErrorCode), act.Err)
			} else {
				h.note("answer %d %s", act.Batch, codeName(act.Result.ErrorCode))
			}
		case OpInvalidate:
			h.note("invalidate")
		case OpResume:
			h.note("resume after %v", act.Wait)
		case OpRetryBusy:
			h.note("retry-busy after %v", act.Wait)
		case OpEmpty:
			h.note("empty")
		default:
			h.t.Errorf("%s: action %v", ev.name, act.Op)
		}
	}
	return h.trace
}

func (h *pipeHarness) note(format string, args ...any) {
	h.trace = append(h.trace, fmt.Sprintf(format, args...))
}

type pipeStep struct {
	ev   pipeEvent
	want []string
}

func step(ev pipeEvent, want ...string) pipeStep { return pipeStep{ev, want} }

const nl = "NOT_LEADER_FOR_PARTITION"

func TestPipeline(t *testing.T) {
	unknownTopic := kerr.UnknownTopicOrPartition
	for _, tc := range []struct {
		name               string
		maxQueue, inFlight int
		steps              []pipeStep
	}{
		{
			// Batches sent again go back in their place, ahead of one
			// that arrived after them, and to the new leader.
			name: "arrival order kept across retries", maxQueue: 16, inFlight: 3,
			steps: []pipeStep{
				step(arrive(1), "submit 1 to 1"),
				step(arrive(2), "submit 2 to 1"),
				step(arrive(3), "submit 3 to 1"),
				step(arrive(4)),
				step(leaderIs(2)),
				step(answered(1, kerr.NotLeaderForPartition.Code), "invalidate"),
				step(answered(2, kerr.NotLeaderForPartition.Code), "invalidate"),
				step(answered(3, kerr.NotLeaderForPartition.Code), "invalidate", "resume after 0s"),
				step(arrive(5)),
				step(resumed(nil), "submit 1 to 2", "submit 2 to 2", "submit 3 to 2"),
				step(ok(1), "submit 4 to 2"),
				step(ok(2), "submit 5 to 2"),
				step(ok(3)), step(ok(4)), step(ok(5)),
			},
		},
		{
			name: "window bound", maxQueue: 16, inFlight: 2,
			steps: []pipeStep{
				step(arrive(1), "submit 1 to 1"),
				step(arrive(2), "submit 2 to 1"),
				step(arrive(3)),
				step(ok(1), "submit 3 to 1"),
				step(arrive(4)),
				step(ok(2), "submit 4 to 1"),
			},
		},
		{
			// The bound counts batches waiting and in flight alike.
			name: "queue full", maxQueue: 2, inFlight: 1,
			steps: []pipeStep{
				step(arrive(1), "submit 1 to 1"),
				step(arrive(2)),
				step(arrive(3), "answer 3 REQUEST_TIMED_OUT"),
				step(ok(1), "submit 2 to 1"),
				step(arrive(4)),
				step(arrive(5), "answer 5 REQUEST_TIMED_OUT"),
				step(ok(2), "submit 4 to 1"),
			},
		},
		{
			name: "a leader change waits for the batches in flight", maxQueue: 16, inFlight: 5,
			steps: []pipeStep{
				step(arrive(1), "submit 1 to 1"),
				step(arrive(2), "submit 2 to 1"),
				step(leaderIs(2)),
				step(arrive(3)),
				step(ok(1)),
				step(ok(2), "submit 3 to 2"),
				step(arrive(4), "submit 4 to 2"),
			},
		},
		{
			// A full connection: the batch keeps its place and is
			// offered again on every event, with one timer at a time.
			name: "busy connection", maxQueue: 16, inFlight: 5,
			steps: []pipeStep{
				step(connFull(true)),
				step(arrive(1), "submit 1 to 1 refused", "retry-busy after 1ms"),
				step(arrive(2), "submit 1 to 1 refused"),
				step(busyOver, "submit 1 to 1 refused", "retry-busy after 1ms"),
				step(connFull(false)),
				step(busyOver, "submit 1 to 1", "submit 2 to 1"),
			},
		},
		{
			// A batch that never left meshka is tried 3 times more, then
			// told NOT_LEADER_OR_FOLLOWER; no metadata is dropped for it.
			name: "not sent: retries run out", maxQueue: 16, inFlight: 5,
			steps: []pipeStep{
				step(arrive(1), "submit 1 to 1"),
				step(notSent(1), "resume after 0s"),
				step(resumed(nil), "submit 1 to 1"),
				step(notSent(1), "resume after 50ms"),
				step(resumed(nil), "submit 1 to 1"),
				step(notSent(1), "resume after 100ms"),
				step(resumed(nil), "submit 1 to 1"),
				step(notSent(1), "answer 1 "+nl+": "+errNotSent.Error()),
			},
		},
		{
			// With no leader the batch asks upstream afresh at each try;
			// after its retries it goes back, and the next batch counts
			// its own.
			name: "no leader: retries run out", maxQueue: 16, inFlight: 5,
			steps: []pipeStep{
				step(noLeader),
				step(arrive(1), "invalidate", "resume after 0s"),
				step(arrive(2)),
				step(resumed(kerr.LeaderNotAvailable), "invalidate", "resume after 50ms"),
				step(resumed(nil), "invalidate", "resume after 100ms"),
				step(resumed(nil), "invalidate", "resume after 200ms"),
				step(resumed(nil), "answer 1 "+nl, "invalidate", "resume after 400ms"),
				step(leaderIs(1)),
				step(resumed(nil), "submit 2 to 1"),
				step(ok(2)),
				step(arrive(3), "submit 3 to 1"),
			},
		},
		{
			// The first retry is at once; later ones back off, doubling
			// up to a second, until a success.
			name: "backoff", maxQueue: 16, inFlight: 5,
			steps: []pipeStep{
				step(arrive(1), "submit 1 to 1"),
				step(answered(1, kerr.NotLeaderForPartition.Code), "invalidate", "resume after 0s"),
				step(resumed(nil), "submit 1 to 1"),
				step(answered(1, kerr.FencedLeaderEpoch.Code), "invalidate", "resume after 50ms"),
				step(resumed(nil), "submit 1 to 1"),
				step(answered(1, kerr.LeaderNotAvailable.Code), "invalidate", "resume after 100ms"),
				step(resumed(nil), "submit 1 to 1"),
				step(answered(1, kerr.NotLeaderForPartition.Code), "answer 1 "+nl),
				step(arrive(2), "submit 2 to 1"),
				step(answered(2, kerr.NotLeaderForPartition.Code), "invalidate", "resume after 200ms"),
				step(resumed(nil), "submit 2 to 1"),
				step(answered(2, kerr.NotLeaderForPartition.Code), "invalidate", "resume after 400ms"),
				step(resumed(nil), "submit 2 to 1"),
				step(answered(2, kerr.NotLeaderForPartition.Code), "invalidate", "resume after 800ms"),
				step(resumed(nil), "submit 2 to 1"),
				step(answered(2, kerr.NotLeaderForPartition.Code), "answer 2 "+nl),
				step(arrive(3), "submit 3 to 1"),
				step(answered(3, kerr.NotLeaderForPartition.Code), "invalidate", "resume after 1s"),
				step(resumed(nil), "submit 3 to 1"),
				step(answered(3, kerr.NotLeaderForPartition.Code), "invalidate", "resume after 1s"),
				step(resumed(nil), "submit 3 to 1"),
				step(ok(3)),
				step(arrive(4), "submit 4 to 1"),
				step(answered(4, kerr.NotLeaderForPartition.Code), "invalidate", "resume after 0s"),
			},
		},
		{
			// Only a batch with a producer id is sent again after the
			// connection broke under it: upstream discards a copy.
			name: "connection lost: plain fails, idempotent goes again", maxQueue: 16, inFlight: 5,
			steps: []pipeStep{
				step(arrive(1), "submit 1 to 1"),
				step(arriveIdem(2), "submit 2 to 1"),
				step(lost(1), "answer 1 NETWORK_EXCEPTION: connection lost"),
				step(lost(2), "resume after 0s"),
				step(resumed(nil), "submit 2 to 1"),
				step(ok(2)),
			},
		},
		{
			name: "other errors pass to the client", maxQueue: 16, inFlight: 5,
			steps: []pipeStep{
				step(arrive(1), "submit 1 to 1"),
				step(answered(1, kerr.InvalidRecord.Code), "answer 1 INVALID_RECORD"),
				step(arriveIdem(2), "submit 2 to 1"),
				step(answered(2, kerr.OutOfOrderSequenceNumber.Code), "answer 2 OUT_OF_ORDER_SEQUENCE_NUMBER"),
				step(arrive(3), "submit 3 to 1"),
				step(answered(3, 0), "answer 3 ok"), // a success the client has not had
			},
		},
		{
			// Written behind a batch that goes again, an idempotent batch
			// is out of sequence; it goes again behind it.
			name: "out of order sequence while paused", maxQueue: 16, inFlight: 5,
			steps: []pipeStep{
				step(arriveIdem(1), "submit 1 to 1"),
				step(arriveIdem(2), "submit 2 to 1"),
				step(arriveIdem(3), "submit 3 to 1"),
				step(answered(1, kerr.NotLeaderForPartition.Code), "invalidate"),
				step(answered(2, kerr.OutOfOrderSequenceNumber.Code)),
				step(answered(3, kerr.OutOfOrderSequenceNumber.Code), "resume after 0s"),
				step(resumed(nil), "submit 1 to 1", "submit 2 to 1", "submit 3 to 1"),
			},
		},
		{
			name: "out of order sequence while paused, without a producer id", maxQueue: 16, inFlight: 5,
			steps: []pipeStep{
				step(arriveIdem(1), "submit 1 to 1"),
				step(arrive(2), "submit 2 to 1"),
				step(answered(1, kerr.NotLeaderForPartition.Code), "invalidate"),
				step(answered(2, kerr.OutOfOrderSequenceNumber.Code), "answer 2 OUT_OF_ORDER_SEQUENCE_NUMBER", "resume after 0s"),
				step(resumed(nil), "submit 1 to 1"),
			},
		},
		{
			// An error no wait cures answers everything waiting; the
			// next batch starts afresh.
			name: "resume error no wait cures", maxQueue: 16, inFlight: 1,
			steps: []pipeStep{
				step(arrive(1), "submit 1 to 1"),
				step(arrive(2)),
				step(arrive(3)),
				step(answered(1, kerr.NotLeaderForPartition.Code), "invalidate", "resume after 0s"),
				step(resumed(unknownTopic), "answer 1 UNKNOWN_TOPIC_OR_PARTITION", "answer 2 UNKNOWN_TOPIC_OR_PARTITION", "answer 3 UNKNOWN_TOPIC_OR_PARTITION"),
				step(arrive(4), "submit 4 to 1"),
			},
		},
		{
			// A lookup that failed without a Kafka error (a timeout) is
			// no answer about the partition: the batch goes on.
			name: "resume error that is no Kafka error", maxQueue: 16, inFlight: 5,
			steps: []pipeStep{
				step(arrive(1), "submit 1 to 1"),
				step(notSent(1), "resume after 0s"),
				step(resumed(context.DeadlineExceeded), "submit 1 to 1"),
			},
		},
		{
			name: "relinquished when empty", maxQueue: 16, inFlight: 5,
			steps: []pipeStep{
				step(relinquish, "empty"),
			},
		},
		{
			// Ownership lost with batches in flight and waiting: those in
			// flight get upstream's answer, those waiting are still sent,
			// retries included, and only then is the pipeline empty.
			name: "relinquished: finishes what it accepted", maxQueue: 16, inFlight: 2,
			steps: []pipeStep{
				step(arrive(1), "submit 1 to 1"),
				step(arrive(2), "submit 2 to 1"),
				step(arrive(3)),
				step(arrive(4)),
				step(relinquish),
				step(ok(1), "submit 3 to 1"),
				step(leaderIs(2)),
				step(answered(2, kerr.NotLeaderForPartition.Code), "invalidate"),
				step(answered(3, kerr.NotLeaderForPartition.Code), "invalidate", "resume after 0s"),
				step(resumed(nil), "submit 2 to 2", "submit 3 to 2"),
				step(ok(2), "submit 4 to 2"),
				step(ok(3)),
				step(ok(4), "empty"),
			},
		},
		{
			name: "relinquished: a failed batch empties it too", maxQueue: 16, inFlight: 5,
			steps: []pipeStep{
				step(arrive(1), "submit 1 to 1"),
				step(relinquish),
				step(lost(1), "answer 1 NETWORK_EXCEPTION: connection lost", "empty"),
			},
		},
		{
			// The leader moves and the old leader's connection breaks
			// under the window: the idempotent batches go to the new
			// leader in their order, the plain one is answered.
			name: "connection lost under idempotent batches during a leader move", maxQueue: 16, inFlight: 3,
			steps: []pipeStep{
				step(arriveIdem(1), "submit 1 to 1"),
				step(arrive(2), "submit 2 to 1"),
				step(arriveIdem(3), "submit 3 to 1"),
				step(arriveIdem(4)),
				step(leaderIs(2)),
				step(lost(1)),
				step(lost(2), "answer 2 NETWORK_EXCEPTION: connection lost"),
				step(lost(3), "resume after 0s"),
				step(resumed(nil), "submit 1 to 2", "submit 3 to 2", "submit 4 to 2"),
				step(ok(1)), step(ok(3)), step(ok(4)),
			},
		},
		{
			name: "leader move: the old leader refuses one, then its connection breaks", maxQueue: 16, inFlight: 3,
			steps: []pipeStep{
				step(arriveIdem(1), "submit 1 to 1"),
				step(arriveIdem(2), "submit 2 to 1"),
				step(arriveIdem(3), "submit 3 to 1"),
				step(leaderIs(2)),
				step(relinquish),
				step(answered(1, kerr.NotLeaderForPartition.Code), "invalidate"),
				step(lost(2)),
				step(lost(3), "resume after 0s"),
				step(resumed(nil), "submit 1 to 2", "submit 2 to 2", "submit 3 to 2"),
				step(ok(1)), step(ok(2)), step(ok(3), "empty"),
			},
		},
		{
			// Stopping answers everything; an answer upstream gives after
			// that is dropped.
			name: "stop answers all", maxQueue: 16, inFlight: 1,
			steps: []pipeStep{
				step(arrive(1), "submit 1 to 1"),
				step(arrive(2)),
				step(stop, "answer 1 "+nl, "answer 2 "+nl),
				step(answered(1, kerr.NotLeaderForPartition.Code)),
				step(ok(1)),
			},
		},
		{
			name: "stop while paused", maxQueue: 16, inFlight: 5,
			steps: []pipeStep{
				step(arrive(1), "submit 1 to 1"),
				step(notSent(1), "resume after 0s"),
				step(stop, "answer 1 "+nl),
				step(resumed(nil)),
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newPipeHarness(t, tc.maxQueue, tc.inFlight)
			for i, s := range tc.steps {
				if got := h.feed(s.ev); !slices.Equal(got, s.want) {
					t.Fatalf("step %d, %s:\n got  %q\n want %q", i+1, s.ev.name, got, s.want)
				}
			}
		})
	}
}

// The client gets upstream's own answer, every field of it, not a copy of
// its code.
func TestPipelinePassesUpstreamAnswer(t *testing.T) {
	p := NewPipeline[int](16, 5)
	p.SetLeader(1, true)
	if acts := p.Arrive(7, false); len(acts) != 1 || acts[0].Op != OpSubmit {
		t.Fatalf("arrive: %+v", acts)
	}
	p.Sent(7)
	r := kmsg.NewProduceResponseTopicPartition()
	r.ErrorCode = kerr.InvalidRecord.Code
	r.ErrorMessage = kmsg.StringPtr("record 3 has no key")
	r.ErrorRecords = []kmsg.ProduceResponseTopicPartitionErrorRecord{{RelativeOffset: 3}}
	acts := p.Answered(7, r, false)
	if len(acts) != 1 || acts[0].Op != OpAnswer || acts[0].Batch != 7 {
		t.Fatalf("answered: %+v", acts)
	}
	got := acts[0].Result
	if got.ErrorCode != r.ErrorCode || got.ErrorMessage != r.ErrorMessage || len(got.ErrorRecords) != 1 || got.ErrorRecords[0].RelativeOffset != 3 {
		t.Fatalf("the client gets %+v, want upstream's %+v", got, r)
	}
	if w, f := p.Len(); w != 0 || f != 0 {
		t.Fatalf("%d waiting, %d in flight after the answer", w, f)
	}
}

// A batch's client is answered once, whoever comes first: the upstream
// connection's goroutine with a success, or the stopping actor.
func TestPendingBatchAnswersOnce(t *testing.T) {
	system := actor.NewActorSystem()
	t.Cleanup(system.Shutdown)
	ch := make(chan *ProduceResponse, 2)
	client := system.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if r, ok := c.Message().(*ProduceResponse); ok {
			ch <- r
		}
	}))
	b := &pendingBatch{m: &produceArgs{Args: upstream.ProduceArgs{Partition: 4}, to: client, root: system.Root}}
	first := kmsg.NewProduceResponseTopicPartition()
	first.BaseOffset = 7
	if !b.answer(first) {
		t.Fatal("the first answer was not given")
	}
	b.fail(kerr.NotLeaderForPartition.Code)
	if b.answer(kmsg.NewProduceResponseTopicPartition()) {
		t.Fatal("a second answer was given")
	}
	select {
	case r := <-ch:
		if r.ErrorCode != 0 || r.BaseOffset != 7 {
			t.Fatalf("the client got %+v, want the first answer", r)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the client got no answer")
	}
	select {
	case r := <-ch:
		t.Fatalf("the client got a second answer: %+v", r)
	case <-time.After(100 * time.Millisecond):
	}
}
