package kafkawire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// inflight is a request read and not yet answered.
type inflight struct {
	key, version int16
	corrID       int32
	finish       func() (kmsg.Response, error)
	read         time.Time // set only when debug logging is on
}

// conn is one client connection: a read goroutine that decodes and hands
// requests on in order, and a write goroutine that finishes and answers
// them in the same order. The queue between them is the in-flight bound:
// when it is full, reading stops.
type conn struct {
	s        *Server
	nc       net.Conn
	remote   string
	clientID string

	queue  chan *inflight
	ctx    context.Context // ends when the connection dies
	cancel context.CancelFunc

	closeOnce sync.Once
}

func newConn(s *Server, nc net.Conn) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	return &conn{s: s, nc: nc, remote: nc.RemoteAddr().String(), queue: make(chan *inflight, s.cfg.MaxInflight), ctx: ctx, cancel: cancel}
}

func (c *conn) serve() {
	defer c.s.forget(c)
	if c.s.debug {
		c.s.log.Debug("Kafka connection opened", "client", c.remote)
		defer func() { c.s.log.Debug("Kafka connection closed", "client", c.remote, "client_id", c.clientID) }()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.writeLoop()
	}()
	c.readLoop()
	<-done
	c.cancel()
	c.nc.Close()
}

// stopReading ends the read loop; requests already read are still answered.
func (c *conn) stopReading() { _ = c.nc.SetReadDeadline(time.Unix(1, 0)) }

// kill ends the connection now.
func (c *conn) kill() {
	c.cancel()
	c.nc.Close()
}

// fail logs why the connection is being closed, once.
func (c *conn) fail(reason string, err error) {
	c.closeOnce.Do(func() {
		c.s.log.Warn("closing Kafka connection", "client", c.remote, "client_id", c.clientID, "reason", reason, "err", err)
	})
}

func (c *conn) readLoop() {
	defer close(c.queue)
	// No read buffer: the size prefix and then exactly the frame are read
	// straight from the socket, so an idle connection holds no buffer, and
	// a frame is allocated only once its size is known and checked.
	var prefix [4]byte
	for {
		if _, err := io.ReadFull(c.nc, prefix[:]); err != nil {
			c.readEnded(err)
			return
		}
		size, err := checkSize(prefix, c.s.cfg.MaxFrameBytes)
		if err != nil {
			c.fail("bad frame", err)
			return
		}
		frame := make([]byte, size)
		if _, err := io.ReadFull(c.nc, frame); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				c.fail("truncated frame", fmt.Errorf("got fewer than the %d bytes announced", size))
			} else {
				c.readEnded(err)
			}
			return
		}
		item, err := c.decode(frame)
		if err != nil {
			c.fail("bad request", err)
			return
		}
		select {
		case c.queue <- item:
		case <-c.ctx.Done():
			return
		}
	}
}

func (c *conn) readEnded(err error) {
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), c.ctx.Err() != nil:
		// The client is gone, as a Kafka broker treats a closed read side:
		// nobody will read answers, so pending long polls end now.
		c.cancel()
	case errors.As(err, &ne) && ne.Timeout(): // stopReading at shutdown
	case errors.Is(err, io.ErrUnexpectedEOF):
		c.fail("truncated frame", err)
	default:
		c.s.log.Debug("Kafka connection read ended", "client", c.remote, "err", err)
	}
}

// decode parses one frame and starts its handler.
func (c *conn) decode(frame []byte) (*inflight, error) {
	h, err := parseHeader(frame)
	if err != nil {
		return nil, err
	}
	if c.clientID == "" && h.clientID != "" {
		c.clientID = h.clientID
	}
	a, ok := apis[h.key]
	if !ok {
		return nil, fmt.Errorf("unsupported API key %d (%s)", h.key, kmsg.NameForKey(h.key))
	}
	if h.version < a.min || h.version > a.max {
		if h.key == apiVersionsKey {
			// Answered with the v0 fallback so the client can retry lower.
			return &inflight{key: h.key, version: 0, corrID: h.corrID, finish: now(apiVersionsFallback(), nil)}, nil
		}
		return nil, fmt.Errorf("unsupported %s version %d (meshka handles %d to %d)", kmsg.NameForKey(h.key), h.version, a.min, a.max)
	}
	if lo, hi, ok := c.s.upstreamRange(h.key); ok && h.key != apiVersionsKey && (h.version < lo || h.version > hi) {
		// Not advertised: upstream cannot take this version.
		return nil, fmt.Errorf("unsupported %s version %d (upstream handles %d to %d)", kmsg.NameForKey(h.key), h.version, lo, hi)
	}
	req := kmsg.RequestForKey(h.key)
	req.SetVersion(h.version)
	body := h.body
	if req.IsFlexible() {
		if body, err = skipTags(body); err != nil {
			return nil, err
		}
	}
	if err := req.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("decoding %s v%d: %w", kmsg.NameForKey(h.key), h.version, err)
	}
	item := &inflight{key: h.key, version: h.version, corrID: h.corrID, finish: a.fn(c, req)}
	if c.s.debug {
		item.read = time.Now()
	}
	return item, nil
}

// flushBytes is how much a write goroutine gathers before writing while
// more answers are queued; when the queue is empty it writes at once.
const flushBytes = 1 << 20

func (c *conn) writeLoop() {
	// The outbox is taken from a pool for each run of queued answers and
	// given back after the write, so an idle connection holds no buffer.
	var out *outbox
	defer func() {
		if out != nil {
			out.release()
		}
	}()
	for item := range c.queue {
		resp, err := item.finish()
		if c.s.debug {
			c.s.log.Debug("Kafka request answered", "client", c.remote, "client_id", c.clientID, "api", kmsg.NameForKey(item.key),
				"version", item.version, "correlation_id", item.corrID, "took", time.Since(item.read), "no_answer", resp == nil && err == nil)
		}
		if err != nil {
			if c.ctx.Err() == nil {
				c.fail("request failed", err)
			}
			c.kill()
			c.drain()
			return
		}
		if resp != nil {
			if out == nil {
				out = outboxes.Get().(*outbox)
			}
			resp.SetVersion(item.version)
			out.add(item, resp)
		}
		if out != nil && (len(c.queue) == 0 || out.size >= flushBytes) {
			err := out.flush(c.nc)
			out.release()
			out = nil
			if err != nil {
				c.kill()
				c.drain()
				return
			}
		}
	}
}

// drain empties the queue so the read loop, blocked on a full queue, ends.
func (c *conn) drain() {
	for range c.queue {
	}
}
