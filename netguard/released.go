package netguard

import (
	"net"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Released is a connection Accept gave, whose Close also releases its
// place under the listener's limits (once). Unwrap is the connection as
// the network gave it, for what needs the *net.TCPConn itself (writev).
type Released struct {
	net.Conn
	once    sync.Once
	release func()
	in, out prometheus.Counter // bytes read and written; nil: not counted
}

// Read reads from the connection, counting the bytes.
func (r *Released) Read(b []byte) (int, error) {
	n, err := r.Conn.Read(b)
	if r.in != nil && n > 0 {
		r.in.Add(float64(n))
	}
	return n, err
}

// Write writes to the connection, counting the bytes.
func (r *Released) Write(b []byte) (int, error) {
	n, err := r.Conn.Write(b)
	if r.out != nil && n > 0 {
		r.out.Add(float64(n))
	}
	return n, err
}

// Release wraps c so that closing it calls release once.
func Release(c net.Conn, release func()) *Released { return &Released{Conn: c, release: release} }

// Close closes the connection and releases its place.
func (r *Released) Close() error {
	err := r.Conn.Close()
	r.once.Do(r.release)
	return err
}

// Count has the connection count the bytes read and written through it
// on in and out.
func (r *Released) Count(in, out prometheus.Counter) { r.in, r.out = in, out }

// Wrote counts n bytes written to the connection past the wrapper (on
// Unwrap's connection, for writev).
func (r *Released) Wrote(n int) {
	if r.out != nil && n > 0 {
		r.out.Add(float64(n))
	}
}

// Unwrap is the connection as accepted.
func (r *Released) Unwrap() net.Conn { return r.Conn }

// NetListener is l as a net.Listener (for http.Server): each connection
// it returns releases its place when closed.
// With in and out set, they count the bytes read and written.
func (l *Listener) NetListener(in, out prometheus.Counter) net.Listener {
	return netListener{l, in, out}
}

type netListener struct {
	*Listener
	in, out prometheus.Counter
}

func (l netListener) Accept() (net.Conn, error) {
	c, release, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	r := Release(c, release)
	r.in, r.out = l.in, l.out
	return r, nil
}
