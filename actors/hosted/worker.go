package hosted

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// pending is a call waiting for its worker.
type pending struct {
	body     []byte
	deadline time.Time
	reply    func(*Answer) // nil: nobody waits for the answer
}

// worker runs one activation's handler in a goroutine of its own, one
// call at a time, from a bounded queue.
type worker struct {
	h      Handler
	f      Factory
	prev   *worker // done before this one runs a call; nil: none
	calls  chan pending
	ctx    context.Context // ends at stop: the running call's ends with it
	cancel context.CancelFunc
	onDone func(*worker)

	mu       sync.Mutex
	stopping bool
	reason   StopReason
	quit     chan struct{} // closed at stop
	done     chan struct{} // closed once Stop has returned
}

func newWorker(h Handler, f Factory, prev *worker, onDone func(*worker)) *worker {
	ctx, cancel := context.WithCancel(context.Background())
	return &worker{h: h, f: f, prev: prev, calls: make(chan pending, f.Queue), ctx: ctx, cancel: cancel,
		onDone: onDone, quit: make(chan struct{}), done: make(chan struct{})}
}

// offer queues p, or says why not: BUSY when the queue is full, MOVED
// when the worker is stopping.
func (w *worker) offer(p pending) Code {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopping {
		return Code_MOVED
	}
	select {
	case w.calls <- p:
		return Code_OK
	default:
		return Code_BUSY
	}
}

// stop asks the worker to stop for reason (the first reason given
// stands) and returns at once: the running call's context ends, queued
// calls are answered MOVED, then the handler's Stop runs.
func (w *worker) stop(reason StopReason) {
	w.mu.Lock()
	if !w.stopping {
		w.stopping, w.reason = true, reason
		close(w.quit)
	}
	w.mu.Unlock()
	w.cancel()
}

// isStopping says whether the worker takes no more calls.
func (w *worker) isStopping() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stopping
}

func (w *worker) stopReason() StopReason {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.reason
}

func (w *worker) run() {
	defer func() {
		close(w.done)
		w.onDone(w)
	}()
	if w.prev != nil {
		select {
		case <-w.prev.done:
		case <-w.quit:
		}
		w.prev = nil
	}
	idle := time.NewTimer(w.f.IdleAfter)
	defer idle.Stop()
	for {
		select {
		case <-w.quit:
			w.finish()
			return
		default:
		}
		select {
		case p := <-w.calls:
			w.serve(p)
			if d, ok := w.h.(Doner); ok && d.Done() {
				w.stop(Idle)
				continue
			}
			idle.Reset(w.f.IdleAfter)
		case <-idle.C:
			w.stop(Idle)
		case <-w.quit:
		}
	}
}

// finish answers the queued calls MOVED and stops the handler.
func (w *worker) finish() {
	for {
		select {
		case p := <-w.calls:
			if p.reply != nil {
				p.reply(&Answer{Code: Code_MOVED, Error: "the actor stopped before it ran the call"})
			}
			continue
		default:
		}
		break
	}
	w.h.Stop(w.stopReason())
}

// serve runs one call and answers it.
func (w *worker) serve(p pending) {
	if !p.deadline.IsZero() && !time.Now().Before(p.deadline) {
		if p.reply != nil {
			p.reply(&Answer{Code: Code_TIMEOUT, Error: "the call waited in the actor's queue past its timeout"})
		}
		return
	}
	ctx, cancel := w.ctx, context.CancelFunc(func() {})
	if !p.deadline.IsZero() {
		ctx, cancel = context.WithDeadline(w.ctx, p.deadline)
	}
	body, err := w.receive(ctx, p.body)
	cancel()
	if p.reply == nil {
		return
	}
	if err != nil {
		p.reply(&Answer{Code: Code_FAILED, Error: err.Error()})
		return
	}
	p.reply(&Answer{Code: Code_OK, Body: body})
}

// receive is the handler's Receive; a panic in it is the call's error.
func (w *worker) receive(ctx context.Context, body []byte) (out []byte, err error) {
	defer func() {
		if v := recover(); v != nil {
			out, err = nil, fmt.Errorf("hosted: the actor panicked: %v", v)
		}
	}()
	return w.h.Receive(ctx, body)
}
