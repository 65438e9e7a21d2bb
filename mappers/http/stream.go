package httpmap

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/meshka/meshka/mappers/http/position"
	"github.com/meshka/meshka/mesh"
)

// Stream bounds and pacing.
const (
	// streamQueue bounds the records waiting for one SSE client; a client
	// slower than the records come is paced (mesh.Pause: it reads on
	// alone at its own speed), so it is not cut off when it falls
	// behind, nor when it resumes far behind; one that takes no bytes
	// for streamWriteTimeout is. Small, as it is allocated whole for
	// every stream.
	streamQueue = 32
	// streamBuffer is the stream's own buffer for an event's lines, in
	// front of net/http's; an event larger than it is written through.
	streamBuffer = 512
	// heartbeatEvery is how often an idle stream sends a comment, so
	// proxies keep it open and a dead client is noticed.
	heartbeatEvery = 15 * time.Second
	// streamWriteTimeout cuts off a client that takes no bytes for this
	// long.
	streamWriteTimeout = 30 * time.Second
	// retryMillis is what the stream tells browsers to wait before they
	// reconnect.
	retryMillis = "2000"
)

// stream serves the topic's records the route matches as Server-Sent
// Events, from the position in Last-Event-ID (or ?lastEventId=), else
// from now. Each event's id is the position after it, over every
// partition, so a client that reconnects anywhere with it gets exactly
// the events after the last it received; a delete is event: delete with
// the key as data.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, rt *route, params map[string]string) {
	m, ok := s.matcher(w, r, rt, params)
	if !ok {
		return
	}
	start := mesh.Latest()
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = r.URL.Query().Get("lastEventId")
	}
	if last != "" {
		at, err := position.Decode(last)
		if err != nil {
			problem(w, http.StatusBadRequest, "Last-Event-ID %q is not an event id of this stream", last)
			return
		}
		start = mesh.AtOffsets(at)
	}
	ctx := r.Context()
	sub, err := s.env.Mesh.Subscribe(ctx, mesh.SubscribeOptions{Topic: rt.cfg.Topic, Start: start, Filter: m.filter(),
		Queue: streamQueue, Slow: mesh.Pause})
	if err != nil {
		s.unavailable(w, rt.cfg.Topic, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	if r.ProtoMajor == 1 && s.takeOver(w, sub, m) {
		return
	}
	defer sub.Close()
	s.m.sse.Inc()
	defer s.m.sse.Dec()
	rc := http.NewResponseController(w)
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, streamBuffer)
	s.events(r.Context(), sub, m, bw, func() bool {
		rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		return bw.Flush() == nil && rc.Flush() == nil
	})
}

// takeOver serves an HTTP/1.x stream on the connection itself: the
// handler answers the head and hands the connection and the subscription
// to a goroutine of the stream's own, then returns, so net/http's
// goroutine for the connection (and the stack it grew while the stream
// subscribed), its buffers and its background read all go, and an idle
// stream costs one small goroutine and its queue. Without a reader, a
// client that left is noticed at the next event or heartbeat. The body
// ends with the connection (Connection: close). False: the connection
// cannot be taken over, and the handler serves the stream itself.
func (s *Server) takeOver(w http.ResponseWriter, sub *mesh.Subscription, m matcher) bool {
	w.Header().Set("Connection", "close")
	nc, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		w.Header().Del("Connection")
		return false
	}
	// The head goes into the stream's buffer here, so that nothing but
	// the buffer, the connection and the subscription stays with the
	// stream's goroutine.
	bw := bufio.NewWriterSize(nc, streamBuffer)
	bw.WriteString("HTTP/1.1 200 OK\r\n")
	w.Header().Write(bw)
	bw.WriteString("\r\n")
	// A GET's stream reads nothing more: the reader Hijack returns, and
	// its buffer, are dropped.
	if !s.trackSocket(nc) {
		nc.Close()
		sub.Close()
		return true
	}
	go func() {
		defer s.untrackSocket(nc)
		defer nc.Close()
		defer sub.Close()
		s.m.sse.Inc()
		defer s.m.sse.Dec()
		s.events(s.ctx, sub, m, bw, func() bool {
			nc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
			return bw.Flush() == nil
		})
	}()
	return true
}

// events writes the stream: the retry advice, then each record the
// route matches as an event, and a comment when nothing came for
// heartbeatEvery; it returns when ctx ends, the partition fails or a
// write does (flush writes what bw holds, within streamWriteTimeout).
func (s *Server) events(ctx context.Context, sub *mesh.Subscription, m matcher, bw *bufio.Writer, flush func() bool) {
	bw.WriteString("retry: " + retryMillis + "\n\n")
	if !flush() {
		return
	}
	for {
		nctx, cancel := context.WithTimeout(ctx, heartbeatEvery)
		rec, err := sub.Next(nctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !errors.Is(err, nctx.Err()) {
				return // the partition failed: the client reconnects with its last id
			}
			bw.WriteString(": ping\n\n")
			if !flush() {
				return
			}
			continue
		}
		if !m.match(&rec) {
			continue // the route's filters with keys of their own are checked here
		}
		if m.json && rec.Value != nil {
			var ok bool
			if rec.Value, ok = s.decodeValue(ctx, rec.Value); !ok {
				continue
			}
		}
		bw.WriteString("id: " + position.Encode(sub.Positions()) + "\n")
		if rec.Value == nil {
			bw.WriteString("event: delete\n")
			writeData(bw, rec.Key)
		} else {
			writeData(bw, rec.Value)
		}
		bw.WriteByte('\n')
		if !flush() {
			return
		}
	}
}

// writeData writes v as an event's data lines: one per line of v.
func writeData(bw *bufio.Writer, v []byte) {
	for {
		line, rest, more := bytes.Cut(v, []byte("\n"))
		bw.WriteString("data: ")
		bw.Write(bytes.TrimSuffix(line, []byte("\r")))
		bw.WriteByte('\n')
		if !more {
			return
		}
		v = rest
	}
}
