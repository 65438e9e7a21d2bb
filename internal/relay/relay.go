// Package relay passes TCP connections on to another address and keeps
// every byte that crosses, so a test can read what went over the wire
// between two nodes.
package relay

import (
	"bytes"
	"net"
	"sync"
	"testing"
)

// Relay listens on a loopback port and connects whatever arrives to its
// target. Safe for concurrent use.
type Relay struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	conns  []net.Conn
	sent   [][]byte // per connection, what the dialling side sent
	answer [][]byte // and what the target answered
	closed bool
	wg     sync.WaitGroup // the accept loop and every copy
}

// Start relays to target until the test ends.
func Start(tb testing.TB, target string) *Relay {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	r := &Relay{ln: ln, target: target}
	r.wg.Add(1)
	go func() { defer r.wg.Done(); r.accept() }()
	tb.Cleanup(r.Close)
	return r
}

// Addr is where the relay listens.
func (r *Relay) Addr() string { return r.ln.Addr().String() }

func (r *Relay) accept() {
	for {
		in, err := r.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", r.target)
		if err != nil {
			in.Close()
			continue
		}
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			in.Close()
			out.Close()
			return
		}
		i := len(r.sent)
		r.conns = append(r.conns, in, out)
		r.sent, r.answer = append(r.sent, nil), append(r.answer, nil)
		r.wg.Add(2)
		r.mu.Unlock()
		go func() { defer r.wg.Done(); r.copy(out, in, &r.sent, i) }()
		go func() { defer r.wg.Done(); r.copy(in, out, &r.answer, i) }()
	}
}

// copy passes src to dst, keeping the bytes in (*into)[i], until either
// side closes.
func (r *Relay) copy(dst, src net.Conn, into *[][]byte, i int) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			r.mu.Lock()
			(*into)[i] = append((*into)[i], buf[:n]...)
			r.mu.Unlock()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Seen is a copy of what crossed so far, per connection: what the
// dialling side sent and what the target answered.
func (r *Relay) Seen() (sent, answered [][]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.sent {
		sent = append(sent, bytes.Clone(r.sent[i]))
		answered = append(answered, bytes.Clone(r.answer[i]))
	}
	return sent, answered
}

// Close stops listening, cuts every connection and waits for the copies
// to end. It may be called more than once.
func (r *Relay) Close() {
	r.mu.Lock()
	r.closed = true
	r.ln.Close()
	for _, c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// IsTLS says whether b opens with a TLS handshake record: content type
// 22, protocol version 3.x.
func IsTLS(b []byte) bool { return len(b) >= 3 && b[0] == 0x16 && b[1] == 0x03 }
