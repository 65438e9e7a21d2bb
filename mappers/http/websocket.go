package httpmap

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/meshka/meshka/mappers/http/position"
	"github.com/meshka/meshka/mesh"
	"github.com/meshka/meshka/schema/convert"
)

// WebSocket bounds and pacing.
const (
	// wsSubprotocol is the one subprotocol a socket speaks; a client may
	// also ask for none.
	wsSubprotocol = "meshka.json"
	// wsQueue bounds the records waiting for one socket; a client slower
	// than the records come is paced (mesh.Pause: its subscription reads
	// on alone at the client's speed), not closed. Small, as it is
	// allocated whole for every socket.
	wsQueue = 64
	// wsInFlight bounds the client's frames produced and not yet
	// acknowledged; past it the socket is not read until acks go out.
	wsInFlight = 256
	// wsPingEvery is how often a socket is pinged; one that does not
	// answer within wsPongWait is closed.
	wsPingEvery = 15 * time.Second
	wsPongWait  = 15 * time.Second
	// wsWriteTimeout cuts off a client that takes no frame for this long.
	wsWriteTimeout = 30 * time.Second
	// maxCloseReason is what a close frame holds of a reason (RFC 6455:
	// 125 bytes of payload, less the code).
	maxCloseReason = 123
)

// connKey is the context key of a request's connection (ConnContext), so
// that Stop can close the connections of WebSockets it must drop.
type connKey struct{}

// wsOptions is what an upgrade request asks for, checked before the
// upgrade.
type wsOptions struct {
	subscribe bool
	start     mesh.Start
	raw       bool    // ?format=raw: values as binary frames
	m         matcher // what the subscription delivers
	key       []byte  // published records' key; nil: none
	headers   []mesh.Header
}

// websocket upgrades the request to a WebSocket that streams the topic's
// records the route matches (from ?from=, as ?format=) and produces every
// frame the client sends as a record, answering each with an ack frame.
func (s *Server) websocket(w http.ResponseWriter, r *http.Request, rt *route, params map[string]string) {
	o, ok := s.wsOptions(w, r, rt, params)
	if !ok {
		return
	}
	nc, _ := r.Context().Value(connKey{}).(net.Conn)
	if nc == nil || !s.trackSocket(nc) {
		problem(w, http.StatusServiceUnavailable, "meshka is stopping")
		return
	}
	defer s.untrackSocket(nc)
	var sub *mesh.Subscription
	if o.subscribe {
		var err error
		sub, err = s.env.Mesh.Subscribe(r.Context(), mesh.SubscribeOptions{Topic: rt.cfg.Topic, Start: o.start, Filter: o.m.filter(),
			Queue: wsQueue, Slow: mesh.Pause})
		if err != nil {
			s.unavailable(w, rt.cfg.Topic, err)
			return
		}
		defer sub.Close()
	}
	conn, err := websocket.Accept(w, r, s.acceptOptions())
	if err != nil {
		return // Accept answered the request
	}
	conn.SetReadLimit(int64(s.cfg.MaxBodyBytes))
	k := &socket{s: s, rt: rt, conn: conn, o: o, sub: sub, noWrite: r.Context().Value(noWriteKey{})}
	// The socket's context ends at Stop or when any of its goroutines
	// ends it; reads and writes are not bound to it, since coder/websocket
	// drops the connection when their context ends, and the socket is
	// closed with a close frame instead.
	k.ctx, k.cancel = context.WithCancel(s.ctx)
	defer k.cancel()
	pending := make(chan *frameAck, wsInFlight)
	var wg sync.WaitGroup
	wg.Go(func() { k.read(pending) })
	wg.Go(func() { k.ack(pending) })
	wg.Go(k.ping)
	if sub != nil {
		wg.Go(k.deliver)
	}
	<-k.ctx.Done()
	k.end(websocket.StatusGoingAway, "meshka is stopping") // unless something ended it first
	conn.Close(k.code, k.reason)
	wg.Wait()
	s.log.Debug("WebSocket closed", "remote", r.RemoteAddr, "topic", rt.cfg.Topic, "code", int(k.code), "reason", k.reason)
}

// wsOptions reads and checks an upgrade request's query; false: answered
// 400.
func (s *Server) wsOptions(w http.ResponseWriter, r *http.Request, rt *route, params map[string]string) (wsOptions, bool) {
	q := r.URL.Query()
	o := wsOptions{subscribe: true, start: mesh.Latest()}
	if v := q.Get("subscribe"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			problem(w, http.StatusBadRequest, "subscribe=%q: want true or false", v)
			return o, false
		}
		o.subscribe = b
	}
	switch from := q.Get("from"); from {
	case "", "latest":
	case "earliest":
		o.start = mesh.Earliest()
	default:
		at, err := position.Decode(from)
		if err != nil {
			problem(w, http.StatusBadRequest, "from=%q: want latest, earliest or a position meshka gave (an envelope's position)", from)
			return o, false
		}
		o.start = mesh.AtOffsets(at)
	}
	switch f := q.Get("format"); f {
	case "", "json":
	case "raw":
		o.raw = true
	default:
		problem(w, http.StatusBadRequest, "format=%q: want json or raw", f)
		return o, false
	}
	if offered := wsProtocols(r.Header); len(offered) > 0 && !slices.ContainsFunc(offered, func(p string) bool {
		return strings.EqualFold(p, wsSubprotocol)
	}) {
		problem(w, http.StatusBadRequest, "subprotocols %s offered; meshka speaks %s (or none)", strings.Join(offered, ", "), wsSubprotocol)
		return o, false
	}
	if o.subscribe {
		m, ok := s.matcher(w, r, rt, params)
		if !ok {
			return o, false
		}
		o.m = m
	}
	switch {
	case rt.cfg.Key != "":
		key, ok := resolve(rt.cfg.Key, params, r.Header)
		if !ok {
			problem(w, http.StatusBadRequest, "the route's key %q needs what the request does not have", rt.cfg.Key)
			return o, false
		}
		o.key = []byte(key)
	case q.Has("key"):
		o.key = []byte(q.Get("key"))
	}
	for name, v := range rt.cfg.Headers {
		if val, ok := resolve(v, params, r.Header); ok {
			o.headers = append(o.headers, mesh.Header{Key: name, Value: []byte(val)})
		}
	}
	return o, true
}

// wsProtocols are the subprotocols a client offers.
func wsProtocols(h http.Header) []string {
	var out []string
	for _, v := range h.Values("Sec-WebSocket-Protocol") {
		for p := range strings.SplitSeq(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// acceptOptions checks Origin against http.cors_origins; with none set,
// only pages of the listener's own origin (and clients that send no
// Origin, which are not browsers) may open a socket.
func (s *Server) acceptOptions() *websocket.AcceptOptions {
	o := &websocket.AcceptOptions{Subprotocols: []string{wsSubprotocol}}
	if slices.Contains(s.cfg.CORSOrigins, "*") {
		o.InsecureSkipVerify = true
	} else {
		o.OriginPatterns = s.cfg.CORSOrigins // "scheme://host[:port]": matched against the Origin's scheme and host
	}
	return o
}

func (s *Server) trackSocket(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		return false
	}
	s.sockets[c] = struct{}{}
	s.sockWG.Add(1)
	return true
}

func (s *Server) untrackSocket(c net.Conn) {
	s.mu.Lock()
	delete(s.sockets, c)
	s.mu.Unlock()
	s.sockWG.Done()
}

// waitSockets waits for the WebSockets' handlers, which close their
// sockets with 1001 once s.ctx has ended; when ctx ends first it closes
// their connections, which ends them at once.
func (s *Server) waitSockets(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.sockWG.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	for c := range s.sockets {
		c.Close()
	}
	s.mu.Unlock()
	<-done
	return ctx.Err()
}

// socket is one WebSocket and its goroutines: read (frames → records),
// ack (acks in frame order), ping, and deliver (records → frames), each
// ended by ctx; writes are safe from any of them.
type socket struct {
	s    *Server
	rt   *route
	conn *websocket.Conn
	o    wsOptions
	sub  *mesh.Subscription // nil: publish only
	// noWrite, when set, is the principal that may not write to the
	// topic: its first frame closes the socket (1008)
	noWrite any

	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once
	code   websocket.StatusCode // why it closes: set once, by end
	reason string
}

// end sets why the socket closes, unless that is set already, and ends
// its context.
func (k *socket) end(code websocket.StatusCode, reason string) {
	k.once.Do(func() {
		if len(reason) > maxCloseReason {
			reason = reason[:maxCloseReason]
			for !utf8.ValidString(reason) {
				reason = reason[:len(reason)-1]
			}
		}
		k.code, k.reason = code, reason
	})
	k.cancel()
}

// write sends one frame, or ends the socket when the client does not take
// it within wsWriteTimeout (coder/websocket drops the connection then).
func (k *socket) write(typ websocket.MessageType, p []byte) bool {
	ctx, cancel := context.WithTimeout(context.Background(), wsWriteTimeout)
	defer cancel()
	if err := k.conn.Write(ctx, typ, p); err != nil {
		if ctx.Err() != nil {
			k.end(websocket.StatusTryAgainLater, "the client took no frame for "+wsWriteTimeout.String())
		} else {
			k.end(websocket.StatusNormalClosure, "") // closed meanwhile
		}
		return false
	}
	return true
}

// frameAck is a client's frame on its way to the topic.
type frameAck struct {
	n    int64 // the frame's number, from 1
	done chan struct{}
	rec  mesh.Record // as written; set before done is closed
	err  error
}

// read produces each frame the client sends as a record, handing it to
// ack in frame order; at most wsInFlight wait for their answer.
func (k *socket) read(pending chan<- *frameAck) {
	p := k.s.producers[k.rt.acks]
	for n := int64(1); ; n++ {
		// Not k.ctx: reading stops when the connection closes, after the
		// close handshake has been read.
		typ, data, err := k.conn.Read(context.Background())
		if err != nil {
			if errors.Is(err, websocket.ErrMessageTooBig) {
				k.end(websocket.StatusMessageTooBig, fmt.Sprintf("a frame is larger than http.max_body_bytes (%d bytes)", k.s.cfg.MaxBodyBytes))
			} else {
				k.end(websocket.StatusNormalClosure, "") // the client closed, or the connection ended
			}
			return
		}
		if who, denied := k.noWrite.(string); denied {
			k.end(websocket.StatusPolicyViolation, fmt.Sprintf("%s may not write to topic %s", who, k.rt.cfg.Topic))
			return
		}
		ct := "application/octet-stream"
		if typ == websocket.MessageText {
			ct = "text/plain"
			if json.Valid(data) {
				ct = "application/json"
			}
		}
		headers := make([]mesh.Header, 0, 1+len(k.o.headers))
		var convErr error
		if k.rt.cfg.ValueFormat != "" {
			data, convErr = k.s.encodeValue(k.ctx, k.rt, data)
		} else {
			headers = append(headers, mesh.Header{Key: HeaderContentType, Value: []byte(ct)})
		}
		headers = append(headers, k.o.headers...)
		rec := mesh.Record{Topic: k.rt.cfg.Topic, Partition: -1, Key: k.o.key, Value: data, Headers: headers, Timestamp: time.Now()}
		f := &frameAck{n: n, done: make(chan struct{})}
		select {
		case pending <- f:
		case <-k.ctx.Done():
			return
		}
		if convErr != nil {
			f.err = convErr // acked as an error, which ends the socket
			close(f.done)
			continue
		}
		if err := k.s.env.Mesh.Check(rec); err != nil {
			// as a record upstream refused: an error ack, then 1008
			f.err = err
			close(f.done)
			return
		}
		err = p.Produce(k.ctx, rec, func(w mesh.Record, err error) {
			f.rec, f.err = w, err
			close(f.done)
		})
		if err != nil {
			f.err = err
			close(f.done)
		}
	}
}

// ack sends each frame's ack once it is written, in frame order; a frame
// that was not written gets an error ack and closes the socket.
func (k *socket) ack(pending <-chan *frameAck) {
	var buf []byte
	for {
		var f *frameAck
		select {
		case f = <-pending:
		case <-k.ctx.Done():
			return
		}
		select {
		case <-f.done:
		case <-k.ctx.Done():
			return
		}
		buf = append(buf[:0], `{"ack":`...)
		buf = strconv.AppendInt(buf, f.n, 10)
		if f.err != nil {
			if k.ctx.Err() != nil {
				return
			}
			buf = append(buf, `,"error":`...)
			buf = appendJSONString(buf, []byte(f.err.Error()))
			buf = append(buf, '}')
			k.write(websocket.MessageText, buf)
			k.end(produceCloseCode(f.err), fmt.Sprintf("frame %d was not written: %v", f.n, f.err))
			return
		}
		buf = append(buf, `,"partition":`...)
		buf = strconv.AppendInt(buf, int64(f.rec.Partition), 10)
		buf = append(buf, `,"offset":`...)
		buf = strconv.AppendInt(buf, f.rec.Offset, 10)
		buf = append(buf, '}')
		if !k.write(websocket.MessageText, buf) {
			return
		}
	}
}

// produceCloseCode is the close code for a frame upstream did not take:
// 1009 or 1008 when it refused the record itself, else 1011.
func produceCloseCode(err error) websocket.StatusCode {
	var ce *convert.Error
	if errors.As(err, &ce) {
		return websocket.StatusInvalidFramePayloadData // 1007: not a value of the route's schema
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		switch ke {
		case kerr.MessageTooLarge, kerr.RecordListTooLarge:
			return websocket.StatusMessageTooBig
		case kerr.InvalidRecord, kerr.PolicyViolation, kerr.CorruptMessage:
			return websocket.StatusPolicyViolation
		}
	}
	return websocket.StatusInternalError
}

// ping pings the client every wsPingEvery and closes a socket that does
// not answer within wsPongWait. The pong is read by read.
func (k *socket) ping() {
	t := time.NewTicker(wsPingEvery)
	defer t.Stop()
	for {
		select {
		case <-k.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), wsPongWait)
		err := k.conn.Ping(ctx)
		cancel()
		if err != nil {
			k.end(websocket.StatusPolicyViolation, "no pong within "+wsPongWait.String())
			return
		}
	}
}

// deliver writes the subscription's records the route matches, each as
// a JSON envelope (or, raw, its value as a binary frame).
func (k *socket) deliver() {
	var buf []byte
	for {
		rec, err := k.sub.Next(k.ctx)
		if err != nil {
			if k.ctx.Err() != nil {
				return
			}
			switch {
			case errors.Is(err, mesh.ErrClosed):
				k.end(websocket.StatusGoingAway, "meshka is stopping")
			default:
				k.end(websocket.StatusInternalError, fmt.Sprintf("topic %s: %v", k.rt.cfg.Topic, err))
			}
			return
		}
		if !k.o.m.match(&rec) {
			continue // the route's filters with keys of their own are checked here
		}
		if k.o.m.json && rec.Value != nil {
			var ok bool
			if rec.Value, ok = k.s.decodeValue(k.ctx, rec.Value); !ok {
				continue
			}
		}
		if k.o.raw {
			typ := websocket.MessageBinary
			if k.o.m.json {
				typ = websocket.MessageText // the value's JSON
			}
			if !k.write(typ, rec.Value) {
				return
			}
			continue
		}
		buf = appendEnvelope(buf[:0], &rec, position.Encode(k.sub.Positions()))
		if !k.write(websocket.MessageText, buf) {
			return
		}
	}
}

// appendEnvelope appends rec as the JSON envelope a socket delivers:
// {"topic","partition","offset","timestamp","key","value","headers",
// "position"}; the value as it is when it is JSON, else as a string.
func appendEnvelope(b []byte, rec *mesh.Record, pos string) []byte {
	b = append(b, `{"topic":`...)
	b = appendJSONString(b, []byte(rec.Topic))
	b = append(b, `,"partition":`...)
	b = strconv.AppendInt(b, int64(rec.Partition), 10)
	b = append(b, `,"offset":`...)
	b = strconv.AppendInt(b, rec.Offset, 10)
	b = append(b, `,"timestamp":`...)
	b = strconv.AppendInt(b, rec.Timestamp.UnixMilli(), 10)
	b = append(b, `,"key":`...)
	if rec.Key == nil {
		b = append(b, "null"...)
	} else {
		b = appendJSONString(b, rec.Key)
	}
	b = append(b, `,"value":`...)
	switch {
	case rec.Value == nil:
		b = append(b, "null"...)
	case json.Valid(rec.Value):
		b = append(b, bytes.TrimSpace(rec.Value)...)
	default:
		b = appendJSONString(b, rec.Value)
	}
	b = append(b, `,"headers":{`...)
	for i, h := range rec.Headers {
		if slices.ContainsFunc(rec.Headers[:i], func(e mesh.Header) bool { return e.Key == h.Key }) {
			continue // a name's first value, as HeaderValue has it
		}
		if b[len(b)-1] != '{' {
			b = append(b, ',')
		}
		b = appendJSONString(b, []byte(h.Key))
		b = append(b, ':')
		b = appendJSONString(b, h.Value)
	}
	b = append(b, `},"position":`...)
	b = appendJSONString(b, []byte(pos))
	return append(b, '}')
}

// appendJSONString appends s as a JSON string; bytes that are not UTF-8
// become U+FFFD, as encoding/json has them.
func appendJSONString(b, s []byte) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029': // valid JSON, but not in JavaScript source
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
