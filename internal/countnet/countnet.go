// Package countnet counts the bytes a server writes to its clients, so tests
// and benchmarks can measure what an upstream cluster sends.
package countnet

import (
	"io"
	"net"
	"sync/atomic"
)

// ListenFn returns a listen function (as kfake.ListenFn takes) whose
// accepted connections add every byte written to sent. watch, when not
// nil, is given each accepted connection first and returns the one to
// use, so a test can also follow what clients send.
func ListenFn(sent *atomic.Int64, watch func(net.Conn) net.Conn) func(network, address string) (net.Listener, error) {
	return func(network, address string) (net.Listener, error) {
		ln, err := net.Listen(network, address)
		if err != nil {
			return nil, err
		}
		return &listener{Listener: ln, sent: sent, watch: watch}, nil
	}
}

type listener struct {
	net.Listener
	sent  *atomic.Int64
	watch func(net.Conn) net.Conn
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if l.watch != nil {
		c = l.watch(c)
	}
	return &conn{Conn: c, sent: l.sent}, nil
}

type conn struct {
	net.Conn
	sent *atomic.Int64
}

func (c *conn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.sent.Add(int64(n))
	return n, err
}

// ReadFrom keeps io.Copy from bypassing Write through the TCP connection's
// sendfile or splice path, which would go uncounted.
func (c *conn) ReadFrom(r io.Reader) (int64, error) {
	return io.Copy(struct{ io.Writer }{c}, r)
}
