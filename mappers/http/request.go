package httpmap

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/meshka/meshka/mappers/http/position"
	"github.com/meshka/meshka/mesh"
)

// Request-reply headers: the request record carries both, the reply
// record the correlation id back; a reply's status header sets the HTTP
// status.
const (
	HeaderCorrelation = "correlation-id"
	HeaderReplyTo     = "reply-to"
	HeaderStatus      = "status"
)

// Request-reply bounds.
const (
	defaultRequestTimeout = 30 * time.Second
	// maxWaiting bounds the requests waiting for replies on a node;
	// past it a request is answered 503.
	maxWaiting = 10000
)

// replies matches the records of reply topics to the requests waiting
// on this node, one subscription per reply topic for all of them.
type replies struct {
	s  *Server
	mu sync.Mutex
	// hubs by reply topic; each started at its first request, from the
	// topic's end then, and read until the server stops
	hubs    map[string]*replyHub
	waiting int
}

type replyHub struct {
	sub     *mesh.Subscription
	waiting map[string]chan mesh.Record // by correlation id
}

// wait registers a request's correlation id on the reply topic before
// the request is produced, so its reply, however quick, is not missed.
func (rs *replies) wait(ctx context.Context, topic, id string) (<-chan mesh.Record, func(), error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.waiting >= maxWaiting {
		return nil, nil, errors.New("too many requests waiting for replies")
	}
	h, ok := rs.hubs[topic]
	if !ok {
		sub, err := rs.s.env.Mesh.Subscribe(rs.s.ctx, mesh.SubscribeOptions{Topic: topic, Start: mesh.Latest(), Slow: mesh.Pause})
		if err != nil {
			return nil, nil, err
		}
		h = &replyHub{sub: sub, waiting: map[string]chan mesh.Record{}}
		if rs.hubs == nil {
			rs.hubs = map[string]*replyHub{}
		}
		rs.hubs[topic] = h
		rs.s.wg.Add(1)
		go func() { defer rs.s.wg.Done(); rs.read(topic, h) }()
	}
	ch := make(chan mesh.Record, 1)
	h.waiting[id] = ch
	rs.waiting++
	done := func() {
		rs.mu.Lock()
		if h.waiting[id] == ch {
			delete(h.waiting, id)
			rs.waiting--
		}
		rs.mu.Unlock()
	}
	return ch, done, nil
}

// read hands each reply to the request waiting for it.
func (rs *replies) read(topic string, h *replyHub) {
	defer h.sub.Close()
	for {
		rec, err := h.sub.Next(rs.s.ctx)
		if err != nil {
			if rs.s.ctx.Err() == nil {
				rs.s.log.Warn("reply topic no longer read", "topic", topic, "err", err)
				rs.mu.Lock()
				delete(rs.hubs, topic) // the next request starts another
				rs.mu.Unlock()
			}
			return
		}
		id, ok := rec.HeaderValue(HeaderCorrelation)
		if !ok {
			continue
		}
		rs.mu.Lock()
		ch, ok := h.waiting[string(id)]
		if ok {
			delete(h.waiting, string(id))
			rs.waiting--
		}
		rs.mu.Unlock()
		if ok {
			ch <- rec
		}
	}
}

// request produces the body as a request record, with a correlation id
// (the Idempotency-Key header, or a random one) and the reply topic, and
// answers with the reply record: its value as the body, its content type
// and status headers as the response's. No reply within the route's
// timeout is 504. With Prefer: respond-async on an async route the
// answer is 202 at once, with a Location where the reply can be read,
// from any node.
func (s *Server) request(w http.ResponseWriter, r *http.Request, rt *route, params map[string]string) {
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	id := r.Header.Get("Idempotency-Key")
	if id == "" {
		b := make([]byte, 16)
		rand.Read(b)
		id = hex.EncodeToString(b)
	}
	rec := mesh.Record{Topic: rt.cfg.Topic, Partition: -1, Value: body, Timestamp: time.Now(),
		Headers: []mesh.Header{{Key: HeaderCorrelation, Value: []byte(id)}, {Key: HeaderReplyTo, Value: []byte(rt.cfg.ReplyTo)}}}
	if rt.cfg.Key != "" {
		key, ok := resolve(rt.cfg.Key, params, r.Header)
		if !ok {
			problem(w, http.StatusBadRequest, "the route's key %q needs what the request does not have", rt.cfg.Key)
			return
		}
		rec.Key = []byte(key)
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		rec.Headers = append(rec.Headers, mesh.Header{Key: HeaderContentType, Value: []byte(ct)})
	}
	for k, v := range rt.cfg.Headers {
		if val, ok := resolve(v, params, r.Header); ok {
			rec.Headers = append(rec.Headers, mesh.Header{Key: k, Value: []byte(val)})
		}
	}
	if s.refuseInvalid(w, rec) {
		return
	}
	ctx := r.Context()
	if rt.cfg.Async && preferAsync(r) {
		from, err := s.env.Mesh.Offsets(ctx, rt.cfg.ReplyTo, mesh.Latest())
		if err != nil {
			s.unavailable(w, rt.cfg.ReplyTo, err)
			return
		}
		if _, err := s.producers[rt.acks].ProduceSync(ctx, rec); err != nil {
			problem(w, http.StatusServiceUnavailable, "the request was not written: %v", err)
			return
		}
		w.Header().Set("Location", strings.TrimSuffix(r.URL.Path, "/")+"/"+id+"?from="+position.Encode(from))
		w.WriteHeader(http.StatusAccepted)
		return
	}
	ch, done, err := s.replies.wait(ctx, rt.cfg.ReplyTo, id)
	if err != nil {
		problem(w, http.StatusServiceUnavailable, "%v", err)
		return
	}
	defer done()
	if _, err := s.producers[rt.acks].ProduceSync(ctx, rec); err != nil {
		problem(w, http.StatusServiceUnavailable, "the request was not written: %v", err)
		return
	}
	timeout := rt.cfg.Timeout.D()
	if timeout == 0 {
		timeout = defaultRequestTimeout
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case reply := <-ch:
		writeReply(w, id, &reply)
	case <-t.C:
		problem(w, http.StatusGatewayTimeout, "no reply on %s within %s (correlation id %s)", rt.cfg.ReplyTo, timeout, id)
	case <-ctx.Done():
	}
}

// asyncReply serves GET on an async request route's Location: the reply
// if it came (read from the reply topic from where it stood when the
// request was made, on whichever node this is), else 202 again, after
// waiting up to Prefer: wait=N for it.
func (s *Server) asyncReply(w http.ResponseWriter, r *http.Request, rt *route, id string) {
	from, err := position.Decode(r.URL.Query().Get("from"))
	if err != nil {
		problem(w, http.StatusBadRequest, "the from parameter is not a position meshka gave")
		return
	}
	ctx := r.Context()
	wait := s.preferWait(r)
	ends, err := s.env.Mesh.Offsets(ctx, rt.cfg.ReplyTo, mesh.Latest())
	if err != nil {
		s.unavailable(w, rt.cfg.ReplyTo, err)
		return
	}
	if wait > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, wait)
		defer cancel()
	}
	reply, ok := s.findReply(ctx, rt.cfg.ReplyTo, from, ends, id, wait > 0)
	if !ok {
		if r.Context().Err() != nil {
			return
		}
		w.Header().Set("Location", r.URL.RequestURI())
		w.WriteHeader(http.StatusAccepted)
		return
	}
	writeReply(w, id, reply)
}

// findReply reads the reply topic from from for the record of
// correlation id: up to ends, or, when waiting, until ctx ends.
func (s *Server) findReply(ctx context.Context, topic string, from, ends map[int32]int64, id string, waiting bool) (*mesh.Record, bool) {
	left := map[int32]bool{}
	for p, end := range ends {
		if from[p] < end {
			left[p] = true
		}
	}
	if len(left) == 0 && !waiting {
		return nil, false
	}
	start := maps.Clone(from)
	for p, end := range ends {
		if _, ok := start[p]; !ok {
			start[p] = end
		}
	}
	sub, err := s.env.Mesh.Subscribe(ctx, mesh.SubscribeOptions{Topic: topic, Start: mesh.AtOffsets(start)})
	if err != nil {
		return nil, false
	}
	defer sub.Close()
	for waiting || len(left) > 0 {
		rec, err := sub.Next(ctx)
		if err != nil {
			return nil, false
		}
		if v, ok := rec.HeaderValue(HeaderCorrelation); ok && string(v) == id {
			return &rec, true
		}
		if rec.Offset+1 >= ends[rec.Partition] {
			delete(left, rec.Partition)
		}
	}
	return nil, false
}

// writeReply answers with a reply record.
func writeReply(w http.ResponseWriter, id string, reply *mesh.Record) {
	status := http.StatusOK
	if v, ok := reply.HeaderValue(HeaderStatus); ok {
		if n, err := strconv.Atoi(string(v)); err == nil && n >= 200 && n <= 599 {
			status = n
		}
	}
	if ct, ok := reply.HeaderValue(HeaderContentType); ok {
		w.Header().Set("Content-Type", string(ct))
	}
	w.Header().Set("Correlation-Id", id)
	w.WriteHeader(status)
	w.Write(reply.Value)
}

// preferAsync says whether the request prefers an asynchronous answer.
func preferAsync(r *http.Request) bool {
	for _, v := range r.Header.Values("Prefer") {
		for _, p := range strings.Split(v, ",") {
			if strings.TrimSpace(p) == "respond-async" {
				return true
			}
		}
	}
	return false
}
