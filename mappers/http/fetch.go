package httpmap

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/mappers/http/position"
	"github.com/meshka/meshka/mesh"
)

// fetchMaxBytes bounds the values one fetch answers with; past it the
// array ends early and its ETag is where it ended.
const fetchMaxBytes = 8 << 20

// matcher is a route's record filter for one request: the key, and the
// headers every record must have.
type matcher struct {
	key     []byte // nil: any
	headers []mesh.Header
	any     []matcher // the route's filters: one must match, when there are any
	json    bool      // values are decoded to JSON (value_format json)
}

func (s *Server) matcher(w http.ResponseWriter, r *http.Request, rt *route, params map[string]string) (matcher, bool) {
	m := matcher{json: rt.cfg.ValueFormat == config.ValueFormatJSON}
	if rt.cfg.Key != "" {
		k, ok := resolve(rt.cfg.Key, params, r.Header)
		if !ok {
			problem(w, http.StatusBadRequest, "the route's key %q needs what the request does not have", rt.cfg.Key)
			return m, false
		}
		m.key = []byte(k)
	}
	for k, v := range rt.cfg.Headers {
		val, ok := resolve(v, params, r.Header)
		if !ok {
			problem(w, http.StatusBadRequest, "the route's header %s %q needs what the request does not have", k, v)
			return m, false
		}
		m.headers = append(m.headers, mesh.Header{Key: k, Value: []byte(val)})
	}
	for _, f := range rt.cfg.Filters {
		sub, ok := s.matcher(w, r, &route{cfg: config.HTTPRoute{Key: f.Key, Headers: f.Headers}}, params)
		if !ok {
			return m, false
		}
		m.any = append(m.any, sub)
	}
	return m, true
}

// filter is the part of m the mesh checks in the partitions' shared
// readers: the key and the headers. The route's filters, which may have
// keys of their own, are left to match.
func (m matcher) filter() mesh.Filter {
	var f mesh.Filter
	if m.key != nil {
		f.Key = mesh.KeyExact(m.key)
	}
	if len(m.headers) > 0 {
		all := make([]mesh.HeaderMatch, 0, len(m.headers))
		for _, h := range m.headers {
			all = append(all, mesh.HeaderMatch{Name: h.Key, Value: h.Value})
		}
		f.Headers = [][]mesh.HeaderMatch{all}
	}
	return f
}

func (m matcher) match(rec *mesh.Record) bool {
	if m.key != nil && !bytes.Equal(rec.Key, m.key) {
		return false
	}
	for _, h := range m.headers {
		v, ok := rec.HeaderValue(h.Key)
		if !ok || !bytes.Equal(v, h.Value) {
			return false
		}
	}
	if len(m.any) == 0 {
		return true
	}
	for _, a := range m.any {
		if a.match(rec) {
			return true
		}
	}
	return false
}

// fetch answers the topic's records the route matches, read from the
// log start to the ends the topic had when the request came, as one
// JSON array of their values (JSON values as they are, others as JSON
// strings; deletes left out). The ETag is the position read to:
// If-None-Match with it answers 304 while the topic has nothing new,
// and with Prefer: wait=N waits up to N seconds for something new.
func (s *Server) fetch(w http.ResponseWriter, r *http.Request, rt *route, params map[string]string) {
	m, ok := s.matcher(w, r, rt, params)
	if !ok {
		return
	}
	ctx := r.Context()
	ends, err := s.env.Mesh.Offsets(ctx, rt.cfg.Topic, mesh.Latest())
	if err != nil {
		s.unavailable(w, rt.cfg.Topic, err)
		return
	}
	if tag := r.Header.Get("If-None-Match"); tag != "" {
		seen, err := position.Decode(strings.Trim(tag, `"`))
		if err == nil && maps.Equal(seen, ends) {
			if wait := s.preferWait(r); wait > 0 {
				if !s.waitForNew(ctx, rt.cfg.Topic, seen, wait) {
					w.Header().Set("ETag", quote(position.Encode(ends)))
					w.WriteHeader(http.StatusNotModified)
					return
				}
				if ends, err = s.env.Mesh.Offsets(ctx, rt.cfg.Topic, mesh.Latest()); err != nil {
					s.unavailable(w, rt.cfg.Topic, err)
					return
				}
			} else {
				w.Header().Set("ETag", quote(position.Encode(ends)))
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
	}
	starts, err := s.env.Mesh.Offsets(ctx, rt.cfg.Topic, mesh.Earliest())
	if err != nil {
		s.unavailable(w, rt.cfg.Topic, err)
		return
	}
	values, reached, err := s.readRange(ctx, rt.cfg.Topic, starts, ends, m)
	if err != nil {
		s.unavailable(w, rt.cfg.Topic, err)
		return
	}
	var buf bytes.Buffer
	buf.WriteByte('[')
	for i, v := range values {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(v)
	}
	buf.WriteString("]\n")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("ETag", quote(position.Encode(reached)))
	w.Write(buf.Bytes())
}

// readRange reads topic from starts to ends (per partition), and returns
// the values of the records m matches, as JSON, and where it got to.
func (s *Server) readRange(ctx context.Context, topic string, starts, ends map[int32]int64, m matcher) ([][]byte, map[int32]int64, error) {
	reached := maps.Clone(ends)
	var parts []int32
	for p, end := range ends {
		if starts[p] < end {
			parts = append(parts, p)
			reached[p] = starts[p]
		}
	}
	if len(parts) == 0 {
		return nil, reached, nil
	}
	sub, err := s.env.Mesh.Subscribe(ctx, mesh.SubscribeOptions{Topic: topic, Partitions: parts, Start: mesh.AtOffsets(starts)})
	if err != nil {
		return nil, nil, err
	}
	defer sub.Close()
	left := len(parts)
	var values [][]byte
	size := 0
	for left > 0 && size < fetchMaxBytes {
		rec, err := sub.Next(ctx)
		if err != nil {
			return nil, nil, err
		}
		end := ends[rec.Partition]
		if rec.Offset >= end {
			continue // written after the request came
		}
		reached[rec.Partition] = rec.Offset + 1
		if rec.Offset+1 >= end {
			left--
		}
		if rec.Value == nil || !m.match(&rec) {
			continue
		}
		var v []byte
		if m.json {
			var ok bool
			if v, ok = s.decodeValue(ctx, rec.Value); !ok {
				continue
			}
		} else {
			v = asJSON(rec.Value)
		}
		values = append(values, v)
		size += len(v)
	}
	return values, reached, nil
}

// asJSON is a value as it goes in a JSON document: as it is when it is
// JSON, else as a JSON string.
func asJSON(v []byte) []byte {
	if json.Valid(v) {
		return bytes.TrimSpace(v)
	}
	b, _ := json.Marshal(string(v))
	return b
}

// waitForNew waits up to d for a record after seen; false: none came.
func (s *Server) waitForNew(ctx context.Context, topic string, seen map[int32]int64, d time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	sub, err := s.env.Mesh.Subscribe(ctx, mesh.SubscribeOptions{Topic: topic, Start: mesh.AtOffsets(seen), Queue: 1})
	if err != nil {
		return false
	}
	defer sub.Close()
	_, err = sub.Next(ctx)
	return err == nil
}

// preferWait is a request's Prefer: wait=N, bounded by http.max_wait.
func (s *Server) preferWait(r *http.Request) time.Duration {
	for _, v := range r.Header.Values("Prefer") {
		for _, p := range strings.Split(v, ",") {
			p = strings.TrimSpace(p)
			if n, ok := strings.CutPrefix(p, "wait="); ok {
				if secs, err := strconv.Atoi(n); err == nil && secs > 0 {
					return min(time.Duration(secs)*time.Second, s.cfg.MaxWait.D())
				}
			}
		}
	}
	return 0
}

func (s *Server) unavailable(w http.ResponseWriter, topic string, err error) {
	if errors.Is(err, context.Canceled) {
		return // the client went away
	}
	problem(w, http.StatusServiceUnavailable, "topic %s: %v", topic, err)
}

func quote(s string) string { return `"` + s + `"` }
