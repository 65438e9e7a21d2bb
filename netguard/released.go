package netguard

import (
	"net"
	"sync"
)

// Released is a connection Accept gave, whose Close also releases its
// place under the listener's limits (once). Unwrap is the connection as
// the network gave it, for what needs the *net.TCPConn itself (writev).
type Released struct {
	net.Conn
	once    sync.Once
	release func()
}

// Release wraps c so that closing it calls release once.
func Release(c net.Conn, release func()) *Released { return &Released{Conn: c, release: release} }

// Close closes the connection and releases its place.
func (r *Released) Close() error {
	err := r.Conn.Close()
	r.once.Do(r.release)
	return err
}

// Unwrap is the connection as accepted.
func (r *Released) Unwrap() net.Conn { return r.Conn }

// NetListener is l as a net.Listener (for http.Server): each connection
// it returns releases its place when closed.
func (l *Listener) NetListener() net.Listener { return netListener{l} }

type netListener struct{ *Listener }

func (l netListener) Accept() (net.Conn, error) {
	c, release, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return Release(c, release), nil
}
