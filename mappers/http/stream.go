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
	defer sub.Close()
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, streamBuffer)
	write := func() bool {
		rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		if bw.Flush() != nil || rc.Flush() != nil {
			return false
		}
		return true
	}
	bw.WriteString("retry: " + retryMillis + "\n\n")
	if !write() {
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
			if !write() {
				return
			}
			continue
		}
		if !m.match(&rec) {
			continue // the route's filters with keys of their own are checked here
		}
		bw.WriteString("id: " + position.Encode(sub.Positions()) + "\n")
		if rec.Value == nil {
			bw.WriteString("event: delete\n")
			writeData(bw, rec.Key)
		} else {
			writeData(bw, rec.Value)
		}
		bw.WriteByte('\n')
		if !write() {
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
