package netguard

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"syscall"
	"testing"
	"time"
)

func TestBudget(t *testing.T) {
	b := NewBudget(100)
	ctx := context.Background()
	if err := b.Acquire(ctx, 60); err != nil {
		t.Fatal(err)
	}
	if b.TryAcquire(50) {
		t.Fatal("took 50 with 40 free")
	}
	if got := b.AcquireUpTo(50); got != 40 {
		t.Fatalf("AcquireUpTo(50) with 40 free took %d", got)
	}
	if got := b.AcquireUpTo(10); got != 0 {
		t.Fatalf("AcquireUpTo with nothing free took %d", got)
	}
	if err := b.Acquire(ctx, 101); err == nil {
		t.Fatal("took more than the whole budget")
	}

	// A blocked Acquire is woken by a Release that makes room.
	got := make(chan error, 1)
	go func() { got <- b.Acquire(ctx, 30) }()
	for b.waitingNow() == 0 {
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-got:
		t.Fatalf("Acquire returned (%v) with nothing free", err)
	default:
	}
	b.Release(40)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if b.Used() != 90 {
		t.Fatalf("used %d, want 90", b.Used())
	}

	// A blocked Acquire ends with its context.
	cctx, cancel := context.WithCancel(ctx)
	go func() { got <- b.Acquire(cctx, 20) }()
	for b.waitingNow() == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Acquire: %v", err)
	}
	if b.Used() != 90 {
		t.Fatalf("a cancelled Acquire took bytes: used %d", b.Used())
	}
}

func (b *Budget) waitingNow() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.waiting
}

func TestUnboundedBudget(t *testing.T) {
	b := NewBudget(0)
	if err := b.Acquire(context.Background(), 1<<40); err != nil || !b.TryAcquire(1<<40) || b.AcquireUpTo(7) != 7 {
		t.Fatal("an unbounded budget refused bytes")
	}
}

// refused reports whether the server closed c at once: a read returns EOF
// (or a reset) rather than blocking. Called only where the server's answer
// is either that or a connection it keeps, which the test sees accepted.
func refused(c net.Conn) bool {
	_, err := c.Read(make([]byte, 1))
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestListenerLimits(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Listen(raw, "test", Limits{MaxConns: 3, MaxConnsPerIP: 2}, slog.New(slog.DiscardHandler))
	defer l.Close()
	accepted := make(chan func(), 10) // closes and releases one kept connection
	go func() {
		for {
			nc, release, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- func() { nc.Close(); release() }
		}
	}()
	addr := l.Addr().String()
	var kept []func()
	for i := 0; i < 2; i++ {
		dial(t, addr)
		kept = append(kept, <-accepted) // blocks until the listener kept it
	}
	if !refused(dial(t, addr)) {
		t.Fatal("a third connection from one address was not closed at once under a per-address limit of 2")
	}
	if l.Refused() != 1 || l.Open() != 2 {
		t.Fatalf("refused %d, open %d; want 1 and 2", l.Refused(), l.Open())
	}
	// Another address has room of its own, up to the listener's bound.
	other := func() net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	other()
	kept = append(kept, <-accepted)
	if !refused(other()) {
		t.Fatal("a fourth connection was not closed at once under a listener limit of 3")
	}
	kept[2]()
	kept[0]()
	if l.Open() != 1 {
		t.Fatalf("open %d after a release, want 1", l.Open())
	}
	dial(t, addr)
	kept[0] = <-accepted // kept again once its address had room
	kept[1]()
	kept[0]()
	if l.Open() != 0 {
		t.Fatalf("open %d after every release, want 0", l.Open())
	}
}

// failingListener fails its first n accepts with err, then accepts.
type failingListener struct {
	net.Listener
	n   int
	err error
}

func (f *failingListener) Accept() (net.Conn, error) {
	if f.n > 0 {
		f.n--
		return nil, f.err
	}
	return f.Listener.Accept()
}

func TestListenerRetriesAcceptErrors(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	emfile := &net.OpError{Op: "accept", Net: "tcp", Err: &osSyscallError{syscall.EMFILE}}
	l := Listen(&failingListener{Listener: raw, n: 5, err: emfile}, "test", Limits{}, slog.New(slog.DiscardHandler))
	defer l.Close()
	go func() {
		if c, err := net.Dial("tcp", raw.Addr().String()); err == nil {
			defer c.Close()
			time.Sleep(time.Second)
		}
	}()
	nc, release, err := l.Accept()
	if err != nil {
		t.Fatalf("Accept gave up after accept errors: %v", err)
	}
	nc.Close()
	release()
	if l.AcceptErrors() != 5 {
		t.Fatalf("counted %d accept errors, want 5", l.AcceptErrors())
	}

	// Close ends an Accept that is waiting out a retry.
	l2 := Listen(&failingListener{Listener: raw, n: 1 << 30, err: emfile}, "test", Limits{}, slog.New(slog.DiscardHandler))
	done := make(chan error, 1)
	go func() { _, _, err := l2.Accept(); done <- err }()
	for l2.AcceptErrors() < 3 {
		time.Sleep(time.Millisecond)
	}
	l2.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
}

type osSyscallError struct{ errno syscall.Errno }

func (e *osSyscallError) Error() string { return "accept4: " + e.errno.Error() }
func (e *osSyscallError) Unwrap() error { return e.errno }
