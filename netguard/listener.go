// Package netguard protects a node's listeners from too many, idle, slow
// or hostile clients: a listener that survives accept errors and counts
// connections against bounds, and byte budgets shared by all connections.
// The Kafka edge uses it; so will the MQTT, HTTP and mesh listeners.
package netguard

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshka/meshka/internal/ratelog"
)

// Limits bound one listener's connections. Zero means no bound.
type Limits struct {
	MaxConns      int // open connections at once
	MaxConnsPerIP int // open connections at once from one remote address
}

// Accept retries back off from acceptMinDelay, doubling up to
// acceptMaxDelay, as net/http's server does.
const (
	acceptMinDelay = 5 * time.Millisecond
	acceptMaxDelay = time.Second
)

// Listener accepts connections within its Limits. An error from the
// underlying Accept (no file descriptors left, a connection reset before
// it was taken) is logged once per interval and retried with backoff; it
// never ends Accept, only Close does. Safe for concurrent use.
type Listener struct {
	ln     net.Listener
	name   string
	limits Limits
	warn   *ratelog.Limiter

	closed  chan struct{}
	closeMu sync.Once

	mu    sync.Mutex
	open  int
	perIP map[string]int

	accepted  atomic.Int64
	refused   atomic.Int64
	acceptErr atomic.Int64
}

// Listen guards ln; name says which listener it is in logs ("kafka").
func Listen(ln net.Listener, name string, limits Limits, log *slog.Logger) *Listener {
	if log == nil {
		log = slog.Default()
	}
	return &Listener{ln: ln, name: name, limits: limits, warn: ratelog.New(log, 10*time.Second),
		closed: make(chan struct{}), perIP: make(map[string]int)}
}

// Addr is the listener's address.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Close stops Accept, including one waiting out a retry.
func (l *Listener) Close() error {
	err := net.ErrClosed
	l.closeMu.Do(func() {
		close(l.closed)
		err = l.ln.Close()
	})
	return err
}

// Accepted is how many connections were admitted.
func (l *Listener) Accepted() int64 { return l.accepted.Load() }

// Refused is how many connections were closed at once for being over a
// limit; AcceptErrors how many accepts failed and were retried.
func (l *Listener) Refused() int64      { return l.refused.Load() }
func (l *Listener) AcceptErrors() int64 { return l.acceptErr.Load() }

// Open is the number of connections accepted and not yet released.
func (l *Listener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// Accept waits for the next connection within the limits. It returns the
// connection as the network gave it (a *net.TCPConn keeps its writev) and
// a release func to call once when the connection is closed; the error is
// net.ErrClosed once Close was called.
func (l *Listener) Accept() (net.Conn, func(), error) {
	var delay time.Duration
	for {
		nc, err := l.ln.Accept()
		if err != nil {
			select {
			case <-l.closed:
				return nil, nil, net.ErrClosed
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return nil, nil, err
			}
			l.acceptErr.Add(1)
			delay = min(max(2*delay, acceptMinDelay), acceptMaxDelay)
			l.warn.Warn("accept", "accepting a connection failed; retrying", "listener", l.name, "err", err, "retry_in", delay)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-l.closed:
				t.Stop()
				return nil, nil, net.ErrClosed
			}
			continue
		}
		delay = 0
		ip := remoteIP(nc.RemoteAddr())
		if why := l.admit(ip); why != "" {
			// Counted before the close, so whoever sees the connection
			// closed sees it counted.
			l.refused.Add(1)
			nc.Close()
			l.warn.Warn("refused/"+why, "connection refused: "+why, "listener", l.name, "client", nc.RemoteAddr().String())
			continue
		}
		l.accepted.Add(1)
		var once sync.Once
		return nc, func() { once.Do(func() { l.release(ip) }) }, nil
	}
}

// admit counts a new connection from ip, or says which limit it is over.
func (l *Listener) admit(ip string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.limits.MaxConns > 0 && l.open >= l.limits.MaxConns {
		return "max_connections reached"
	}
	if l.limits.MaxConnsPerIP > 0 && l.perIP[ip] >= l.limits.MaxConnsPerIP {
		return "max_connections_per_ip reached"
	}
	l.open++
	l.perIP[ip]++
	return ""
}

func (l *Listener) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.perIP[ip]--; l.perIP[ip] <= 0 {
		delete(l.perIP, ip)
	}
}

func remoteIP(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// fallbackMaxConns is the bound MaxConnsFromFileLimit gives when the open
// file limit cannot be read.
const fallbackMaxConns = 10000

// MaxConnsFromFileLimit is a bound on client connections that leaves file
// descriptors for the rest of the process (upstream connections, files): a
// quarter of the open-file limit, and at least 64 of them.
func MaxConnsFromFileLimit() int {
	n := openFileLimit()
	if n == 0 || n > 1<<30 {
		return fallbackMaxConns
	}
	reserve := max(n/4, 64)
	if n <= reserve {
		return 1
	}
	return int(n - reserve)
}
