package kafkawire

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/auth"
)

// inflight is a request read and not yet answered.
type inflight struct {
	key, version int16
	corrID       int32
	finish       func() (kmsg.Response, error)
	read         time.Time // when it was read whole
	held         int64     // request budget its frame holds until answered
	respHeld     int64     // response budget its answer holds until written
	closeAfter   string    // why the connection closes once this is answered
}

// holder is an answer that holds part of the node's response budget until
// it is written.
type holder interface{ heldBytes() int64 }

// conn is one client connection: a read goroutine that decodes and hands
// requests on in order, and a write goroutine that finishes and answers
// them in the same order. The queue between them is the in-flight bound:
// when it is full, reading stops.
type conn struct {
	s        *Server
	raw      net.Conn // the socket: closed and given deadlines
	nc       net.Conn // what requests are read from and answers written to: raw, or TLS over it
	lst      *Listener
	remote   string
	host     netip.Addr // the client's address, as ACL rules name hosts
	clientID string

	// principal is who the client is (a string): User:ANONYMOUS, the
	// SASL user, or the mapped subject of its certificate.
	principal atomic.Value
	// sasl and closeAfter are the read goroutine's: the SASL handlers
	// run there, and closeAfter, set by a handler, closes the
	// connection once the request it handled is answered.
	sasl       saslState
	closeAfter string

	queue  chan *inflight
	ctx    context.Context // ends when the connection dies
	cancel context.CancelFunc

	release  func()       // the connection's place in the listener's counts
	pending  atomic.Int32 // requests read and not yet answered
	stopping atomic.Bool  // Shutdown: read no more requests

	closeOnce sync.Once
}

func newConn(s *Server, nc net.Conn, release func(), lst *Listener) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{s: s, raw: nc, nc: nc, lst: lst, remote: nc.RemoteAddr().String(), queue: make(chan *inflight, s.cfg.MaxInflight),
		ctx: ctx, cancel: cancel, release: release}
	if ap, err := netip.ParseAddrPort(c.remote); err == nil {
		c.host = ap.Addr().Unmap()
	}
	if lst.TLS != nil {
		c.nc = tls.Server(nc, lst.TLS) // the handshake comes first in serve
	}
	c.principal.Store(auth.Anonymous)
	return c
}

// Principal is who the client is: User:ANONYMOUS until it authenticates.
func (c *conn) Principal() string { return c.principal.Load().(string) }

// handshake runs the TLS handshake within kafka.request_read_timeout and
// takes the principal of the client's certificate, if it sent one.
func (c *conn) handshake() error {
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.s.cfg.RequestReadTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("TLS handshake (listener %s): %w", c.lst.Name, err)
	}
	if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
		p, err := auth.CertPrincipal(certs[0], c.lst.PrincipalRules)
		if err != nil {
			return err
		}
		c.principal.Store(p)
	}
	return nil
}

func (c *conn) serve() {
	defer c.s.forget(c)
	defer c.release()
	if c.s.debugOn() {
		c.s.log.Debug("Kafka connection opened", "client", c.remote)
		defer func() { c.s.log.Debug("Kafka connection closed", "client", c.remote, "client_id", c.clientID) }()
	}
	if err := c.handshake(); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			// The client left before the handshake was done: nothing
			// to tell an operator.
			c.s.log.Debug("Kafka client left during the TLS handshake", "client", c.remote, "listener", c.lst.Name)
		} else {
			c.fail("TLS handshake failed", err)
		}
		c.cancel()
		c.raw.Close()
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.writeLoop()
	}()
	c.readLoop()
	<-done
	c.cancel()
	c.raw.Close()
}

// stopReading ends the read loop; requests already read are still answered.
func (c *conn) stopReading() {
	c.stopping.Store(true)
	_ = c.raw.SetReadDeadline(time.Unix(1, 0))
}

// kill ends the connection now.
func (c *conn) kill() {
	c.cancel()
	c.raw.Close()
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
	// a frame's buffer grows only as its bytes arrive (readFrame).
	var prefix [4]byte
	for {
		if err := c.awaitFrame(prefix[:]); err != nil {
			c.readEnded(err)
			return
		}
		limit := c.s.cfg.MaxFrameBytes
		if c.lst.sasl() && !c.sasl.authed {
			// Before authentication a client may send only small
			// frames, as Kafka's sasl.server.max.receive.size holds.
			limit = min(limit, maxUnauthenticatedFrame)
		}
		size, err := checkSize(prefix, limit)
		if err != nil {
			c.fail("bad frame", err)
			return
		}
		frame, held, err := c.readFrame(size)
		if err != nil {
			c.s.cfg.RequestBudget.Release(held)
			switch {
			case errors.Is(err, errReadTimeout):
				c.fail("slow request", err)
			case errors.Is(err, io.ErrUnexpectedEOF):
				c.fail("truncated frame", err)
			default:
				c.readEnded(err)
			}
			return
		}
		c.s.m.received.Add(float64(4 + size))
		item, err := c.decode(frame)
		if err != nil {
			c.s.cfg.RequestBudget.Release(held)
			c.fail("bad request", err)
			return
		}
		item.held = held
		c.pending.Add(1)
		select {
		case c.queue <- item:
		case <-c.ctx.Done():
			c.answered(item)
			return
		}
		if item.closeAfter != "" {
			// Read no more: the connection closes once this is answered.
			c.fail(item.closeAfter, nil)
			return
		}
	}
}

// maxUnauthenticatedFrame bounds a frame before SASL authentication.
const maxUnauthenticatedFrame = 512 << 10

// awaitFrame reads the next size prefix. A connection with nothing in
// flight that sends nothing for kafka.idle_timeout is closed, as Kafka's
// connections.max.idle.ms does; one whose requests are still being
// answered (a long poll) is not idle and waits on. Once the first byte of
// a prefix is in, the frame has begun and kafka.request_read_timeout
// applies.
func (c *conn) awaitFrame(prefix []byte) error {
	idle := c.s.cfg.IdleTimeout
	for {
		var deadline time.Time
		if idle > 0 {
			deadline = time.Now().Add(idle)
		}
		if err := c.readDeadline(deadline); err != nil {
			return err
		}
		_, err := io.ReadFull(c.nc, prefix[:1])
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() && !c.stopping.Load() {
			if c.pending.Load() > 0 {
				continue
			}
			c.s.idleClosed.Add(1)
			if c.s.debugOn() {
				c.s.log.Debug("closing idle Kafka connection", "client", c.remote, "client_id", c.clientID, "idle", idle)
			}
			return io.EOF
		}
		if err != nil {
			return err
		}
		if err := c.readDeadline(time.Now().Add(c.s.cfg.RequestReadTimeout)); err != nil {
			return err
		}
		if _, err := io.ReadFull(c.nc, prefix[1:]); err != nil {
			if errors.As(err, &ne) && ne.Timeout() && !c.stopping.Load() {
				c.fail("slow request", errReadTimeout)
				return io.EOF
			}
			if errors.Is(err, io.EOF) {
				return io.ErrUnexpectedEOF
			}
			return err
		}
		return nil
	}
}

func (c *conn) readEnded(err error) {
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), c.ctx.Err() != nil:
		// The client is gone, as a Kafka broker treats a closed read side:
		// nobody will read answers, so pending long polls end now.
		c.cancel()
	case errors.Is(err, errStopping), errors.As(err, &ne) && ne.Timeout(): // stopReading at shutdown
	case errors.Is(err, io.ErrUnexpectedEOF):
		c.fail("truncated frame", err)
	default:
		c.s.log.Debug("Kafka connection read ended", "client", c.remote, "err", err)
	}
}

// answered frees what a request held once its answer is written, or will
// never be.
func (c *conn) answered(item *inflight) {
	c.s.cfg.RequestBudget.Release(item.held)
	c.s.cfg.ResponseBudget.Release(item.respHeld)
	item.held, item.respHeld = 0, 0
	c.pending.Add(-1)
}

// decode parses one frame and starts its handler.
func (c *conn) decode(frame []byte) (*inflight, error) {
	if c.sasl.unframed {
		return c.token(frame)
	}
	h, req, err := parseRequest(frame, c.s.deps.Upstream.CachedApiVersions())
	if c.clientID == "" && h.clientID != "" {
		c.clientID = h.clientID
	}
	if err != nil {
		return nil, err
	}
	if err := c.gate(h.key); err != nil {
		return nil, err
	}
	if req == nil {
		// Answered with the v0 fallback so the client can retry lower.
		return &inflight{key: h.key, version: 0, corrID: h.corrID, finish: now(apiVersionsFallback(), nil)}, nil
	}
	item := &inflight{key: h.key, version: h.version, corrID: h.corrID, finish: apis[h.key].fn(c, req)}
	item.closeAfter, c.closeAfter = c.closeAfter, ""
	item.read = time.Now()
	return item, nil
}

// parseRequest decodes a frame for a key and version meshka handles and,
// once upstream has answered ApiVersions (up; nil before), a version
// upstream takes. A nil request with no error is an ApiVersions version
// meshka does not know, which gets the v0 fallback answer. It keeps
// nothing and does no I/O, so the fuzz targets run exactly this.
func parseRequest(frame []byte, up *kmsg.ApiVersionsResponse) (header, kmsg.Request, error) {
	h, err := parseHeader(frame)
	if err != nil {
		return h, nil, err
	}
	a, ok := apis[h.key]
	if !ok {
		return h, nil, fmt.Errorf("unsupported API key %d (%s)", h.key, kmsg.NameForKey(h.key))
	}
	if h.version < a.min || h.version > a.max {
		if h.key == apiVersionsKey {
			return h, nil, nil
		}
		return h, nil, fmt.Errorf("unsupported %s version %d (meshka handles %d to %d)", kmsg.NameForKey(h.key), h.version, a.min, a.max)
	}
	if lo, hi, ok := versionRange(up, h.key); ok && !selfAnswered(h.key) && (h.version < lo || h.version > hi) {
		// Not advertised: upstream cannot take this version.
		return h, nil, fmt.Errorf("unsupported %s version %d (upstream handles %d to %d)", kmsg.NameForKey(h.key), h.version, lo, hi)
	}
	req := kmsg.RequestForKey(h.key)
	req.SetVersion(h.version)
	body := h.body
	if req.IsFlexible() {
		if body, err = skipTags(body); err != nil {
			return h, nil, err
		}
	}
	if err := req.ReadFrom(body); err != nil {
		return h, nil, fmt.Errorf("decoding %s v%d: %w", kmsg.NameForKey(h.key), h.version, err)
	}
	return h, req, nil
}

// flushBytes is how much a write goroutine gathers before writing while
// more answers are queued; when the queue is empty it writes at once.
const flushBytes = 1 << 20

func (c *conn) writeLoop() {
	// The outbox is taken from a pool for each run of queued answers and
	// given back after the write, so an idle connection holds no buffer.
	var out *outbox
	var written []*inflight // in the outbox, answered once it is written
	defer func() {
		if out != nil {
			out.release()
		}
		for _, item := range written {
			c.answered(item)
		}
	}()
	for item := range c.queue {
		resp, err := item.finish()
		if !item.read.IsZero() {
			c.s.m.request(item.key, err != nil || failed(resp), item.read)
		}
		if c.s.debugOn() {
			c.s.log.Debug("Kafka request answered", "client", c.remote, "client_id", c.clientID, "api", kmsg.NameForKey(item.key),
				"version", item.version, "correlation_id", item.corrID, "took", time.Since(item.read), "no_answer", resp == nil && err == nil)
		}
		if err != nil {
			c.answered(item)
			if c.ctx.Err() == nil {
				c.fail("request failed", err)
			}
			c.kill()
			c.drain()
			return
		}
		if h, ok := resp.(holder); ok {
			item.respHeld = h.heldBytes()
		}
		if resp != nil {
			if out == nil {
				out = outboxes.Get().(*outbox)
			}
			resp.SetVersion(item.version)
			out.add(item, resp)
			written = append(written, item)
		} else {
			c.answered(item)
		}
		if out != nil && (len(c.queue) == 0 || out.size >= flushBytes) {
			err := c.flush(out)
			out.release()
			out = nil
			for _, w := range written {
				c.answered(w)
			}
			written = written[:0]
			if err != nil {
				c.kill()
				c.drain()
				return
			}
		}
	}
}

// flush writes the outbox within kafka.write_timeout; a client that reads
// none of it for that long is a slow consumer and is cut off.
func (c *conn) flush(out *outbox) error {
	if d := c.s.cfg.WriteTimeout; d > 0 {
		_ = c.nc.SetWriteDeadline(time.Now().Add(d))
	}
	size := out.size
	err := out.flush(c.nc)
	if err == nil {
		c.s.m.sent.Add(float64(size))
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.s.slowClosed.Add(1)
		c.fail("slow consumer", fmt.Errorf("answers not read within kafka.write_timeout (%s)", c.s.cfg.WriteTimeout))
	}
	return err
}

// drain empties the queue so the read loop, blocked on a full queue, ends.
func (c *conn) drain() {
	for item := range c.queue {
		c.answered(item)
	}
}
