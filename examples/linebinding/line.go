package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/mesh"
)

// lineConfig is the binding's section, bindings.line.
type lineConfig struct {
	// Listen is the binding's TCP address; port 0 picks a free one.
	Listen string `yaml:"listen"`
	// MaxConnections bounds the open connections; past it a new one is
	// told "ERR too many connections" and closed.
	MaxConnections int `yaml:"max_connections"`
	// MaxSubscriptions bounds one connection's SUBs.
	MaxSubscriptions int `yaml:"max_subscriptions"`
	// WriteTimeout closes a connection that takes none of what it is sent
	// for this long: a client that stopped reading.
	WriteTimeout config.Duration `yaml:"write_timeout"`
}

func defaultLineConfig() lineConfig {
	return lineConfig{
		Listen:           "127.0.0.1:7070",
		MaxConnections:   256,
		MaxSubscriptions: 16,
		WriteTimeout:     config.Duration(10 * time.Second),
	}
}

const (
	// maxLine bounds a command line, its line end aside; the reader's
	// buffer is its only buffer.
	maxLine = 64 << 10
	// subQueue is each subscription's queue in records; when it is full
	// the subscriber is paused (see slow clients in README.md).
	subQueue = 64
	// outQueue bounds what a connection's writer has not written yet:
	// answers and records, in the order they are to go out.
	outQueue = 64
)

// lineBinding serves the line protocol (see parseLine) on one listener.
// Every goroutine it starts (the accept loop, and per connection a reader,
// a writer and one per subscription) ends by Stop.
type lineBinding struct {
	cfg  lineConfig
	env  mesh.BindingEnv
	log  *slog.Logger
	prod *mesh.Producer

	ln    net.Listener
	slots chan struct{} // one taken per open connection
	wg    sync.WaitGroup

	// soft ends at Stop: no more reading, subscriptions end, answers
	// still go out. hard ends when Stop's context does: connections close.
	soft, hard             context.Context
	cancelSoft, cancelHard context.CancelFunc

	failed atomic.Pointer[error] // why the accept loop ended on its own
}

var _ mesh.Binding = (*lineBinding)(nil)

// newLineBinding is the binding's Factory: it decodes and checks its
// section and starts nothing.
func newLineBinding(env mesh.BindingEnv, section mesh.BindingConfig) (mesh.Binding, error) {
	cfg := defaultLineConfig()
	if err := section.Decode(&cfg); err != nil {
		return nil, err
	}
	var errs config.Errors
	if _, port, err := net.SplitHostPort(cfg.Listen); err != nil {
		errs = append(errs, section.Errorf("listen", "must be host:port, e.g. \"127.0.0.1:7070\", got %q", cfg.Listen))
	} else if p, err := strconv.ParseUint(port, 10, 16); err != nil || strconv.FormatUint(p, 10) != port {
		errs = append(errs, section.Errorf("listen", "port must be a number between 0 and 65535, got %q", port))
	}
	if cfg.MaxConnections < 1 || cfg.MaxConnections > 1<<16 {
		errs = append(errs, section.Errorf("max_connections", "must be between 1 and 65536, got %d", cfg.MaxConnections))
	}
	if cfg.MaxSubscriptions < 1 || cfg.MaxSubscriptions > 1024 {
		errs = append(errs, section.Errorf("max_subscriptions", "must be between 1 and 1024, got %d", cfg.MaxSubscriptions))
	}
	if d := cfg.WriteTimeout.D(); d < 100*time.Millisecond || d > 10*time.Minute {
		errs = append(errs, section.Errorf("write_timeout", "must be between 100ms and 10m, got %s", cfg.WriteTimeout))
	}
	if len(errs) > 0 {
		return nil, errs.Sorted()
	}
	b := &lineBinding{cfg: cfg, env: env, log: env.Logger, slots: make(chan struct{}, cfg.MaxConnections)}
	b.soft, b.cancelSoft = context.WithCancel(context.Background())
	b.hard, b.cancelHard = context.WithCancel(context.Background())
	return b, nil
}

// Start binds the listener and begins accepting.
func (b *lineBinding) Start(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", b.cfg.Listen)
	if err != nil {
		return err
	}
	b.ln = ln
	b.prod = b.env.Mesh.NewProducer(mesh.ProducerOptions{})
	b.log.Info("line binding listening", "addr", ln.Addr().String())
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.accept()
	}()
	return nil
}

// Addr is the bound address.
func (b *lineBinding) Addr() net.Addr { return b.ln.Addr() }

// Stop closes the listener and ends every connection's reading and
// subscriptions; answers to the PUBs already read still go out while ctx
// lasts, after which every connection is closed. It returns once every
// goroutine of the binding has ended.
func (b *lineBinding) Stop(ctx context.Context) error {
	b.cancelSoft()
	if b.ln == nil {
		return nil
	}
	b.ln.Close()
	done := make(chan struct{})
	go func() {
		b.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		b.cancelHard()
		<-done // closed connections end their goroutines at once
		err = ctx.Err()
	}
	b.cancelHard()
	if perr := b.prod.Close(ctx); err == nil {
		err = perr
	}
	b.log.Info("line binding stopped")
	return err
}

// Health is not OK once the binding stopped or its listener failed.
func (b *lineBinding) Health() mesh.Health {
	switch err := b.failed.Load(); {
	case err != nil:
		return mesh.Health{Detail: "accept: " + (*err).Error()}
	case b.soft.Err() != nil:
		return mesh.Health{Detail: "stopped"}
	}
	return mesh.Health{OK: true, Detail: fmt.Sprintf("listening on %s, %d connections", b.ln.Addr(), len(b.slots))}
}

// accept takes connections until Stop. An accept error other than the
// listener's closing (out of file descriptors, say) is retried with
// backoff rather than ending the binding.
func (b *lineBinding) accept() {
	var backoff time.Duration
	for {
		nc, err := b.ln.Accept()
		if err != nil {
			if b.soft.Err() != nil {
				return
			}
			if errors.Is(err, net.ErrClosed) {
				b.failed.Store(&err)
				b.log.Error("line binding: listener closed", "err", err)
				return
			}
			if backoff == 0 {
				b.log.Warn("line binding: accept failed; retrying", "err", err)
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-b.soft.Done():
				t.Stop()
				return
			}
			continue
		}
		backoff = 0
		select {
		case b.slots <- struct{}{}:
		default:
			// A fresh socket's buffer takes this line at once.
			nc.SetWriteDeadline(time.Now().Add(time.Second))
			io.WriteString(nc, "ERR too many connections\n")
			nc.Close()
			continue
		}
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			defer func() { <-b.slots }()
			newConn(b, nc).serve()
		}()
	}
}

// conn is one client connection: its reader runs the commands in order,
// its writer writes their answers in that order, and each subscription's
// goroutine hands the writer its records.
type conn struct {
	b   *lineBinding
	nc  net.Conn
	log *slog.Logger

	// soft ends when the client closes its side or Stop comes: reading
	// and subscriptions end, but what is queued is still written. hard
	// ends when the connection must close at once.
	soft, hard             context.Context
	cancelSoft, cancelHard context.CancelFunc

	out   chan item // closed by serve once the reader and subscriptions ended
	subs  []*mesh.Subscription
	subWG sync.WaitGroup
}

// item is one thing for the writer: a line, or the answer to come of a
// PUB, which the writer waits for in its turn.
type item struct {
	line  []byte
	reply chan []byte // buffered: the producer's callback never waits
}

func newConn(b *lineBinding, nc net.Conn) *conn {
	c := &conn{b: b, nc: nc, log: b.log.With("client", nc.RemoteAddr().String()), out: make(chan item, outQueue)}
	c.soft, c.cancelSoft = context.WithCancel(b.soft)
	c.hard, c.cancelHard = context.WithCancel(b.hard)
	return c
}

func (c *conn) serve() {
	c.log.Debug("line client connected")
	// On Stop a past read deadline wakes the reader; closing wakes
	// everyone.
	stopRead := context.AfterFunc(c.b.soft, func() { c.nc.SetReadDeadline(time.Unix(1, 0)) })
	stopClose := context.AfterFunc(c.hard, func() { c.nc.Close() })
	defer stopRead()
	defer stopClose()
	written := make(chan struct{})
	go func() {
		defer close(written)
		c.write()
	}()

	unread := c.read()

	c.cancelSoft()
	for _, s := range c.subs {
		s.Close()
	}
	c.subWG.Wait()
	close(c.out)
	<-written
	if unread && c.hard.Err() == nil {
		c.linger()
	}
	c.cancelHard()
	c.nc.Close()
	c.log.Debug("line client gone")
}

// read runs the client's commands until it closes its side, sends a line
// too long, or Stop. It reports whether it left the client's bytes
// unread.
func (c *conn) read() (unread bool) {
	r := bufio.NewReaderSize(c.nc, maxLine+2)
	for c.soft.Err() == nil {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) || len(trimLineEnd(line)) > maxLine {
			c.send(item{line: []byte("ERR line too long\n")})
			return true
		}
		if err != nil && (!errors.Is(err, io.EOF) || len(line) == 0) {
			return false // closed, Stop's read deadline, or a broken connection
		}
		c.run(trimLineEnd(line))
		if err != nil {
			return false // a last line without a line end, then EOF
		}
	}
	return false
}

// linger closes the connection's sending side and reads what the client
// still sends, for a while: closed with unread bytes, the connection
// would be reset, and a reset can lose the client the lines it was sent
// last (the ERR saying why).
func (c *conn) linger() {
	if tc, ok := c.nc.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	c.nc.SetReadDeadline(time.Now().Add(time.Second))
	io.Copy(io.Discard, io.LimitReader(c.nc, 4<<20))
}

func trimLineEnd(line []byte) []byte {
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line
}

// run runs one command line.
func (c *conn) run(line []byte) {
	cmd, err := parseLine(line)
	if err != nil {
		c.send(errItem(err))
		return
	}
	switch cmd.verb {
	case pub:
		c.publish(cmd)
	case sub:
		c.subscribe(cmd)
	}
}

// publish writes the record keyed, as a Kafka producer would place it;
// its answer goes out in the command's turn.
func (c *conn) publish(cmd command) {
	reply := make(chan []byte, 1)
	if !c.send(item{reply: reply}) {
		return
	}
	rec := mesh.Record{Topic: cmd.topic, Partition: -1, Key: cmd.key, Value: cmd.value}
	err := c.b.prod.Produce(c.soft, rec, func(w mesh.Record, err error) {
		if err != nil {
			reply <- errItem(err).line
			return
		}
		reply <- fmt.Appendf(nil, "OK %d %d\n", w.Partition, w.Offset)
	})
	if err != nil {
		reply <- errItem(err).line
	}
}

// subscribe answers OK once every record produced from then on will be
// delivered, then forwards the records as MSG lines.
func (c *conn) subscribe(cmd command) {
	if len(c.subs) >= c.b.cfg.MaxSubscriptions {
		c.send(errItem(fmt.Errorf("at most %d subscriptions per connection", c.b.cfg.MaxSubscriptions)))
		return
	}
	s, err := c.b.env.Mesh.Subscribe(c.soft, mesh.SubscribeOptions{Topic: cmd.topic, Start: mesh.Latest(),
		Filter: mesh.Filter{Key: cmd.filter}, Queue: subQueue, Slow: mesh.Pause})
	if err != nil {
		c.send(errItem(err))
		return
	}
	c.subs = append(c.subs, s)
	if !c.send(item{line: []byte("OK\n")}) {
		return
	}
	c.subWG.Add(1)
	go func() {
		defer c.subWG.Done()
		c.forward(s, cmd.topic)
	}()
}

// forward hands the writer the subscription's records. While the writer
// is blocked on a client that reads slowly, this waits too, the
// subscription's queue fills, and the mesh pauses it: it reads on alone at
// the client's pace, losing nothing and slowing no one.
func (c *conn) forward(s *mesh.Subscription, topic string) {
	for {
		r, err := s.Next(c.soft)
		if err != nil {
			if c.soft.Err() == nil && !errors.Is(err, mesh.ErrClosed) {
				c.send(errItem(fmt.Errorf("subscription to %s ended: %w", topic, err)))
			}
			return
		}
		if !c.send(item{line: appendMsg(nil, r)}) {
			return
		}
	}
}

// send queues it for the writer, waiting for room; false once the
// connection is closing.
func (c *conn) send(it item) bool {
	select {
	case c.out <- it:
		return true
	case <-c.hard.Done():
		return false
	}
}

// write writes what is queued, in order, flushing when nothing more is
// waiting. A write that makes no progress for write_timeout closes the
// connection.
func (c *conn) write() {
	w := bufio.NewWriterSize(deadlineWriter{c.nc, c.b.cfg.WriteTimeout.D()}, 16<<10)
	for {
		var it item
		var ok bool
		select {
		case it, ok = <-c.out:
		case <-c.hard.Done():
			return
		}
		if !ok {
			c.flush(w)
			return
		}
		line := it.line
		if it.reply != nil {
			if w.Buffered() > 0 && !c.flush(w) {
				return
			}
			select {
			case line = <-it.reply:
			case <-c.hard.Done():
				return
			}
		}
		if _, err := w.Write(line); err != nil {
			c.failed(err)
			return
		}
		if len(c.out) == 0 && !c.flush(w) {
			return
		}
	}
}

func (c *conn) flush(w *bufio.Writer) bool {
	if err := w.Flush(); err != nil {
		c.failed(err)
		return false
	}
	return true
}

func (c *conn) failed(err error) {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		// Reset rather than closed: what the socket still holds for a
		// client that does not read is dropped at once, not kept by the
		// kernel while it waits for the client's window to open.
		if tc, ok := c.nc.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.log.Info("line client took nothing for write_timeout; closed", "write_timeout", c.b.cfg.WriteTimeout)
	} else {
		c.log.Debug("line client write failed", "err", err)
	}
	c.cancelHard()
}

// deadlineWriter gives every write to the connection write_timeout.
type deadlineWriter struct {
	nc      net.Conn
	timeout time.Duration
}

func (d deadlineWriter) Write(p []byte) (int, error) {
	d.nc.SetWriteDeadline(time.Now().Add(d.timeout))
	return d.nc.Write(p)
}

// errItem is the ERR line of err, on one line whatever err says.
func errItem(err error) item {
	msg := []byte(strings.TrimPrefix(err.Error(), "mesh: "))
	for i, ch := range msg {
		if ch == '\n' || ch == '\r' {
			msg[i] = ' '
		}
	}
	return item{line: append(append([]byte("ERR "), msg...), '\n')}
}
