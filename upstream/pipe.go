package upstream

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A pipe is meshka's own connection to one upstream broker for Produce.
//
// Batches handed to a pipe are written to the broker in the order they were
// handed over, several requests at a time on one connection. A Kafka broker
// handles one connection's requests one after another in arrival order, so
// a partition's batches are appended in that order even with several in
// flight. kgo cannot promise this: it issues each request from a goroutine
// of its own, so concurrent requests may overtake each other on the way to
// the connection. Batches of different partitions that wait together are
// sent as one request, as a Kafka producer's sender does.
type pipe struct {
	c    *Client
	node int32
	in   chan *produceCall
	quit chan struct{}
	// closeMu makes close and submit exclusive: once close holds it, no
	// call can enter in behind the writer's last look at it.
	closeMu sync.RWMutex
	closed  bool
	ctx     context.Context // cancelled by close: ends a dial in progress
	stop    context.CancelFunc
	wg      sync.WaitGroup // the writer and each connection's reader

	// Owned by the writer goroutine.
	enc   produceEncoder
	corr  int32
	carry []*produceCall // taken from in but left for later requests, in order
	seen  map[topicPartition]struct{}
	later map[topicPartition]struct{}
}

const (
	pipeQueue       = 4096     // calls waiting for the writer; more are refused
	pipeCarry       = 64       // calls the writer takes ahead, to merge past a busy partition
	pipeInFlight    = 5        // requests written and not yet answered
	pipeMaxRecords  = 4 << 20  // record bytes merged into one request
	pipeMaxResponse = 16 << 20 // larger is not a Produce answer
	pipeKeepBuf     = 1 << 20  // buffers kept between requests
	pipeDialTimeout = 10 * time.Second
)

// ErrNotSent wraps a failure that happened before a batch left meshka, so
// sending it again cannot duplicate it.
var ErrNotSent = errors.New("upstream: batch not sent")

var errPipeClosed = fmt.Errorf("%w: meshka is shutting down", ErrNotSent)

type topicPartition struct {
	topic     string
	partition int32
}

// produceCall is one partition's batch waiting for the writer.
type produceCall struct {
	args *ProduceArgs
	acks int16
	done func(ProduceResult, error)
}

func (a *produceCall) mergeable(b *produceCall) bool {
	return a.args.Version == b.args.Version && a.acks == b.acks &&
		a.args.TimeoutMillis == b.args.TimeoutMillis &&
		equalStringPtr(a.args.TransactionalID, b.args.TransactionalID)
}

func equalStringPtr(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func newPipe(c *Client, node int32) *pipe {
	ctx, stop := context.WithCancel(context.Background())
	p := &pipe{
		c: c, node: node,
		in:   make(chan *produceCall, pipeQueue),
		quit: make(chan struct{}),
		ctx:  ctx, stop: stop,
		enc:   produceEncoder{fmt: kmsg.NewRequestFormatter(kmsg.FormatterClientID(c.cfg.ClientID))},
		seen:  make(map[topicPartition]struct{}),
		later: make(map[topicPartition]struct{}),
	}
	p.wg.Add(1)
	go p.write()
	return p
}

// submit queues a call; false when the queue is full.
func (p *pipe) submit(call *produceCall) bool {
	p.closeMu.RLock()
	defer p.closeMu.RUnlock()
	if p.closed {
		go call.done(ProduceResult{}, errPipeClosed) // never from the caller's goroutine
		return true
	}
	select {
	case p.in <- call:
		return true
	default:
		return false
	}
}

// close stops the writer, fails what waits and closes the connection, and
// returns once every goroutine of the pipe has ended.
func (p *pipe) close() {
	p.closeMu.Lock()
	p.closed = true
	p.closeMu.Unlock()
	close(p.quit)
	p.stop()
	p.wg.Wait()
}

// write is the writer goroutine: it takes calls in order, merges those
// that wait together into one request, and writes each request once the
// connection has room for another in flight.
func (p *pipe) write() {
	defer p.wg.Done()
	var cx *pipeConn
	defer func() {
		if cx != nil {
			// What is on the connection was written: its fate is unknown.
			cx.fail(errors.New("upstream: meshka is shutting down"))
		}
		p.failQueued(errPipeClosed)
	}()
	for {
		if len(p.carry) == 0 {
			select {
			case c := <-p.in:
				p.carry = append(p.carry, c)
			case <-p.quit:
				return
			}
		}
		if cx != nil && cx.dead() {
			cx = nil
		}
		if cx == nil {
			var err error
			if cx, err = p.dial(); err != nil {
				// The broker cannot be reached now: fail what waits rather
				// than make each call wait for a dial of its own.
				p.failQueued(fmt.Errorf("%w: %v", ErrNotSent, err))
				continue
			}
		}
		if wait := p.c.cfg.slotWait; wait != nil && len(cx.slots) == cap(cx.slots) {
			wait(p.node)
		}
		select {
		case cx.slots <- struct{}{}:
		case <-cx.gone:
			cx = nil // nothing taken is written yet: it goes on a new connection
			continue
		case <-p.quit:
			return
		}
		if !cx.retireAt.IsZero() && !p.c.now().Before(cx.retireAt) {
			// The SASL session nears its end: what is on the connection
			// is answered before anything goes on a new one, as at a
			// leader change, so no batch overtakes an earlier one.
			<-cx.slots
			if hook := p.c.cfg.retired; hook != nil {
				hook(p.node)
			}
			cx.retire()
			select {
			case <-cx.gone:
			case <-p.quit:
				return
			}
			cx = nil
			continue
		}
		p.send(cx, p.gather())
	}
}

// gather builds the next request from the calls carried over and those
// waiting in the queue, in order. A call joins when it has the first
// call's version, acks, timeout and transactional id, its partition is not
// in the request yet, and no earlier call of its partition was left for a
// later request; otherwise it is carried, so each partition's batches
// still go out in the order they came.
func (p *pipe) gather() []*produceCall {
	taken := p.carry
	p.carry = nil
	first := taken[0]
	calls := []*produceCall{first}
	size := len(first.args.Records)
	clear(p.seen)
	clear(p.later)
	p.seen[topicPartition{first.args.Topic, first.args.Partition}] = struct{}{}
	consider := func(c *produceCall) {
		tp := topicPartition{c.args.Topic, c.args.Partition}
		_, inRequest := p.seen[tp]
		_, carried := p.later[tp]
		if inRequest || carried || !first.mergeable(c) || size+len(c.args.Records) > pipeMaxRecords {
			p.carry = append(p.carry, c)
			p.later[tp] = struct{}{}
			return
		}
		p.seen[tp] = struct{}{}
		calls = append(calls, c)
		size += len(c.args.Records)
	}
	for _, c := range taken[1:] {
		consider(c)
	}
	for size < pipeMaxRecords && len(p.carry) < pipeCarry {
		select {
		case c := <-p.in:
			consider(c)
			continue
		default:
		}
		break
	}
	return calls
}

// send encodes one request for calls and writes it. A failed write fails
// the connection and, with it, every request on it.
func (p *pipe) send(cx *pipeConn, calls []*produceCall) {
	first := calls[0]
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(first.args.Version)
	req.Acks = first.acks
	req.TimeoutMillis = first.args.TimeoutMillis
	req.TransactionID = first.args.TransactionalID
	topics := make(map[string]int, 1)
	for _, c := range calls {
		ti, ok := topics[c.args.Topic]
		if !ok {
			ti = len(req.Topics)
			topics[c.args.Topic] = ti
			rt := kmsg.NewProduceRequestTopic()
			rt.Topic = c.args.Topic
			req.Topics = append(req.Topics, rt)
		}
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = c.args.Partition
		rp.Records = c.args.Records
		req.Topics[ti].Partitions = append(req.Topics[ti].Partitions, rp)
	}
	p.corr++
	frame := p.enc.encode(req, p.corr)
	defer p.enc.release()
	wait := p.c.cfg.RequestTimeout + time.Duration(max(first.args.TimeoutMillis, 0))*time.Millisecond
	r := &pipeRequest{corr: p.corr, version: req.Version, calls: calls, deadline: time.Now().Add(wait)}
	if !cx.push(r) {
		// The connection failed after the writer took its slot. Nothing
		// of this request is written, so its calls go on the next
		// connection, first, once the failure has reached what was on
		// this one (fail closes gone last).
		<-cx.gone
		p.carry = append(calls, p.carry...)
		return
	}
	_ = cx.conn.SetWriteDeadline(time.Now().Add(p.c.cfg.RequestTimeout))
	b := brokerLabel(p.node)
	p.c.m.requests.WithLabelValues(b).Inc()
	n, err := frame.WriteTo(cx.conn)
	p.c.m.produced.WithLabelValues(b).Add(float64(n))
	errs := p.c.m.errors.WithLabelValues(b)
	if err != nil {
		errs.Inc()
		cx.fail(fmt.Errorf("upstream broker %d: write: %w", p.node, err))
	}
}

// failQueued fails every call carried or waiting in the queue when it is
// called.
func (p *pipe) failQueued(err error) {
	// Only what waits now: a callback may hand its batch straight back
	// (the partition actor sends it again), and that batch deserves a
	// try of its own rather than this failure.
	waiting := len(p.in)
	for _, c := range p.carry {
		c.done(ProduceResult{}, err)
	}
	p.carry = nil
	for ; waiting > 0; waiting-- {
		select {
		case c := <-p.in:
			c.done(ProduceResult{}, err)
		default:
			return
		}
	}
}

func (p *pipe) dial() (*pipeConn, error) {
	addr, ok := p.c.meta.BrokerAddr(p.node)
	if !ok {
		return nil, fmt.Errorf("upstream broker %d: address unknown", p.node)
	}
	ctx, cancel := context.WithTimeout(p.ctx, pipeDialTimeout)
	defer cancel()
	conn, err := p.c.dialer.dial(ctx, "tcp", addr)
	var retireAt time.Time
	if err == nil && p.c.cfg.SASL != nil {
		if retireAt, err = p.c.authenticate(ctx, conn, addr, p.c.cfg.SASL); err != nil {
			conn.Close()
		}
	}
	if err != nil {
		p.c.log.Warn("upstream produce connection failed", "broker", p.node, "addr", addr, "err", err)
		return nil, fmt.Errorf("upstream broker %d at %s: %w", p.node, addr, err)
	}
	cx := &pipeConn{conn: conn, node: p.node, log: p.c.log, retireAt: retireAt, slots: make(chan struct{}, pipeInFlight), gone: make(chan struct{})}
	p.wg.Add(1)
	go cx.read(&p.wg)
	return cx, nil
}

// pipeRequest is one written request waiting for its answer.
type pipeRequest struct {
	corr     int32
	version  int16
	calls    []*produceCall
	deadline time.Time
}

func (r *pipeRequest) fail(err error) {
	for _, c := range r.calls {
		c.done(ProduceResult{}, err)
	}
}

// deliver hands each call its partition's answer.
func (r *pipeRequest) deliver(resp *kmsg.ProduceResponse) {
	for _, c := range r.calls {
		found := false
		for ti := range resp.Topics {
			t := &resp.Topics[ti]
			if t.Topic != c.args.Topic {
				continue
			}
			for pi := range t.Partitions {
				if t.Partitions[pi].Partition == c.args.Partition {
					c.done(t.Partitions[pi], nil)
					found = true
					break
				}
			}
			if found {
				break
			}
		}
		if !found {
			c.done(ProduceResult{}, errors.New("upstream produce response is missing the partition"))
		}
	}
}

// pipeConn is one connection of a pipe: the writer pushes requests, its
// reader goroutine takes the answers in the same order.
type pipeConn struct {
	conn     net.Conn
	node     int32
	log      *slog.Logger
	retireAt time.Time     // zero: never; else no request is written from then on
	slots    chan struct{} // one per request in flight
	gone     chan struct{} // closed when the connection failed or was retired

	mu         sync.Mutex
	pending    []*pipeRequest
	delivering bool // the reader is handing out an answer it popped
	retiring   bool // closed once nothing is pending or being delivered
	err        error
}

// errRetired closes a connection retired with nothing on it.
var errRetired = errors.New("upstream: produce connection retired before its SASL session ends")

// retire closes the connection once every answer to what was written on
// it has been handed out: now, when nothing is pending, or else by the
// reader after the last. gone closes then.
//
// A pipe retires a connection rather than authenticate on it again: a
// broker reads a connection's requests in order, so a new SASL exchange
// would wait for the answers in flight just as retiring does, and the
// reader would have to tell SASL answers from Produce answers. A new
// connection costs a dial and a handshake once per session lifetime.
func (cx *pipeConn) retire() {
	cx.mu.Lock()
	cx.retiring = true
	idle := len(cx.pending) == 0 && !cx.delivering
	cx.mu.Unlock()
	if idle {
		cx.fail(errRetired)
	}
}

// delivered ends the hand-out of a popped answer; true when the
// connection is retiring and that was the last.
func (cx *pipeConn) delivered() bool {
	cx.mu.Lock()
	defer cx.mu.Unlock()
	cx.delivering = false
	return cx.retiring && len(cx.pending) == 0
}

func (cx *pipeConn) dead() bool {
	select {
	case <-cx.gone:
		return true
	default:
		return false
	}
}

// push records r as written next; false when the connection already failed.
// The read deadline is the oldest pending request's.
func (cx *pipeConn) push(r *pipeRequest) bool {
	cx.mu.Lock()
	defer cx.mu.Unlock()
	if cx.err != nil {
		return false
	}
	cx.pending = append(cx.pending, r)
	if len(cx.pending) == 1 {
		_ = cx.conn.SetReadDeadline(r.deadline)
	}
	return true
}

// pop removes r, the oldest request, once its answer is read; false when
// the connection failed meanwhile (and r was failed with it).
func (cx *pipeConn) pop(r *pipeRequest) bool {
	cx.mu.Lock()
	defer cx.mu.Unlock()
	if cx.err != nil || len(cx.pending) == 0 || cx.pending[0] != r {
		return false
	}
	cx.pending[0] = nil
	cx.pending = cx.pending[1:]
	cx.delivering = true
	if len(cx.pending) > 0 {
		_ = cx.conn.SetReadDeadline(cx.pending[0].deadline)
	} else {
		_ = cx.conn.SetReadDeadline(time.Time{})
	}
	return true
}

func (cx *pipeConn) head() *pipeRequest {
	cx.mu.Lock()
	defer cx.mu.Unlock()
	if len(cx.pending) == 0 {
		return nil
	}
	return cx.pending[0]
}

// fail closes the connection and fails every request on it; the first
// error wins.
func (cx *pipeConn) fail(err error) {
	cx.mu.Lock()
	if cx.err != nil {
		cx.mu.Unlock()
		return
	}
	cx.err = err
	pending := cx.pending
	cx.pending = nil
	cx.mu.Unlock()
	_ = cx.conn.Close()
	if len(pending) > 0 && !errors.Is(err, ErrNotSent) {
		cx.log.Warn("upstream produce connection lost", "broker", cx.node, "requests", len(pending), "err", err)
	}
	// The failures are handed over before the writer may use a new
	// connection, so a partition learns that a batch failed before any
	// answer to a later batch of it can arrive.
	for _, r := range pending {
		r.fail(err)
	}
	close(cx.gone)
}

// read is the connection's reader goroutine. It reads even with nothing
// pending, so a connection upstream closes while idle is noticed before
// the next batch is written to it.
func (cx *pipeConn) read(wg *sync.WaitGroup) {
	defer wg.Done()
	var size [4]byte
	var body []byte
	for {
		if _, err := io.ReadFull(cx.conn, size[:]); err != nil {
			cx.fail(fmt.Errorf("upstream broker %d: read: %w", cx.node, err))
			return
		}
		r := cx.head()
		if r == nil {
			cx.fail(fmt.Errorf("upstream broker %d sent an answer to no request", cx.node))
			return
		}
		n := int(int32(binary.BigEndian.Uint32(size[:])))
		if n < 4 || n > pipeMaxResponse {
			cx.fail(fmt.Errorf("upstream broker %d: answer of %d bytes", cx.node, n))
			return
		}
		if cap(body) < n {
			body = make([]byte, n)
		}
		body = body[:n]
		if _, err := io.ReadFull(cx.conn, body); err != nil {
			cx.fail(fmt.Errorf("upstream broker %d: read: %w", cx.node, err))
			return
		}
		resp, err := decodeProduceResponse(body, r)
		if err != nil {
			cx.fail(fmt.Errorf("upstream broker %d: %w", cx.node, err))
			return
		}
		if !cx.pop(r) {
			return
		}
		r.deliver(resp)
		<-cx.slots
		if cx.delivered() {
			cx.fail(errRetired)
			return
		}
		if cap(body) > pipeKeepBuf {
			body = nil
		}
	}
}

// decodeProduceResponse checks the correlation id, skips the flexible
// header's tagged fields and decodes the body at the request's version.
func decodeProduceResponse(body []byte, r *pipeRequest) (*kmsg.ProduceResponse, error) {
	if corr := int32(binary.BigEndian.Uint32(body)); corr != r.corr {
		return nil, fmt.Errorf("answer for correlation id %d, want %d", corr, r.corr)
	}
	resp := kmsg.NewPtrProduceResponse()
	resp.SetVersion(r.version)
	rest := kbin.Reader{Src: body[4:]}
	if resp.IsFlexible() {
		kmsg.SkipTags(&rest)
		if !rest.Ok() {
			return nil, errors.New("produce answer: bad tagged fields in the header")
		}
	}
	if err := resp.ReadFrom(rest.Src); err != nil {
		return nil, fmt.Errorf("produce answer: %w", err)
	}
	return resp, nil
}
