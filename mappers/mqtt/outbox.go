package mqtt

import (
	"bytes"
	"io"
	"net"
	"sync"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/meshka/meshka/mappers/mqtt/wire"
	"github.com/meshka/meshka/netguard"
)

// writeTimeout bounds one write to a client; a client that takes no bytes
// for this long is cut off.
const writeTimeout = 30 * time.Second

// What is put in an outbox, which decides what happens when it is full.
type putKind int8

const (
	// kindControl: acknowledgements and other answers, never dropped; a
	// client that lets them pile up past four times the bound is cut off.
	kindControl putKind = iota
	// kindQoS0: a QoS 0 message, dropped when the outbox is full.
	kindQoS0
	// kindQoS12: a QoS 1 or 2 message; it waits for room (and the
	// subscription behind it stops reading Kafka meanwhile).
	kindQoS12
)

// outbox holds what waits to be written to one client, at most max bytes
// of messages, and writes it on a goroutine started when there is
// something to write and ended when there is not, so an idle connection
// has no writer.
type outbox struct {
	nc net.Conn
	w  io.Writer // nc, or the connection it wraps: see newOutbox
	// vectored: w is a TCP connection, which writes many buffers at once
	vectored bool
	// wrote counts bytes written past the listener's wrapper, which
	// counts those written through it; nil when w is the wrapper's.
	wrote func(n int)
	max   int
	wg    *sync.WaitGroup // the connection's: the writer is counted in it

	mu      sync.Mutex
	room    *sync.Cond
	queue   [][]byte
	bytes   int
	writing bool
	closed  bool
	drained chan struct{} // closed by the writer when it empties the queue after flushThenClose
}

func newOutbox(nc net.Conn, max int, wg *sync.WaitGroup) *outbox {
	o := &outbox{nc: nc, w: nc, max: max, wg: wg}
	// net.Buffers writes with one writev only to the *net.TCPConn itself;
	// through the listener's wrapper it writes each packet on its own.
	if g, ok := nc.(*netguard.Released); ok {
		o.w, o.wrote = g.Unwrap(), g.Wrote
	}
	_, o.vectored = o.w.(*net.TCPConn)
	o.room = sync.NewCond(&o.mu)
	return o
}

// writeAll writes bufs: with one writev to a TCP connection; to any
// other (TLS, WebSocket), which would make each buffer a record or a
// frame of its own, joined into one write.
func (o *outbox) writeAll(bufs net.Buffers, n int) error {
	if o.vectored || len(bufs) == 1 {
		m, err := bufs.WriteTo(o.w)
		if o.wrote != nil {
			o.wrote(int(m))
		}
		return err
	}
	joined := make([]byte, 0, n)
	for _, b := range bufs {
		joined = append(joined, b...)
	}
	m, err := o.w.Write(joined)
	if o.wrote != nil {
		o.wrote(m)
	}
	return err
}

// put queues buf and says whether it was (false: dropped, or the outbox
// closed).
func (o *outbox) put(buf []byte, kind putKind) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch kind {
	case kindQoS0:
		if o.bytes+len(buf) > o.max && o.bytes > 0 {
			return false
		}
	case kindQoS12:
		for !o.closed && o.bytes+len(buf) > o.max && o.bytes > 0 {
			o.room.Wait()
		}
	case kindControl:
		if o.bytes > 4*o.max {
			o.closeLocked()
			o.nc.Close()
			return false
		}
	}
	if o.closed {
		return false
	}
	o.queue = append(o.queue, buf)
	o.bytes += len(buf)
	if !o.writing {
		o.writing = true
		o.wg.Add(1)
		go o.write()
	}
	return true
}

// write writes until the queue is empty.
func (o *outbox) write() {
	defer o.wg.Done()
	for {
		o.mu.Lock()
		if len(o.queue) == 0 || o.closed && o.drained == nil {
			o.writing = false
			if o.drained != nil {
				close(o.drained)
				o.drained = nil
			}
			o.mu.Unlock()
			return
		}
		bufs := net.Buffers(o.queue)
		n := o.bytes
		o.queue, o.bytes = nil, 0
		o.mu.Unlock()
		o.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
		err := o.writeAll(bufs, n)
		o.mu.Lock()
		o.room.Broadcast()
		if err != nil {
			o.closeLocked()
			o.nc.Close()
		}
		o.mu.Unlock()
	}
}

// close drops what is queued and refuses what comes.
func (o *outbox) close() {
	o.mu.Lock()
	o.closeLocked()
	o.mu.Unlock()
}

func (o *outbox) closeLocked() {
	o.closed = true
	o.queue, o.bytes = nil, 0
	o.room.Broadcast()
}

// flushThenClose refuses what comes and waits up to d for what is
// queued to be written.
func (o *outbox) flushThenClose(d time.Duration) {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return
	}
	o.closed = true
	o.room.Broadcast()
	if !o.writing || len(o.queue) == 0 && !o.writing {
		o.mu.Unlock()
		return
	}
	done := make(chan struct{})
	o.drained = done
	o.mu.Unlock()
	select {
	case <-done:
	case <-time.After(d):
		o.nc.SetWriteDeadline(time.Now()) // the writer gives up
	}
}

// encode is pk's bytes.
func encode(pk *packets.Packet) ([]byte, error) {
	var buf bytes.Buffer
	if err := wire.Encode(&buf, pk); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
