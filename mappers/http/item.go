package httpmap

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/meshka/meshka/mappers/http/position"
	"github.com/meshka/meshka/mesh"
)

// itemListLimit bounds one page of GET on an item route without a key.
const itemListLimit = 1000

// item serves a compacted topic as resources, through the mesh API's
// table of the topic: with a key (the route's key), GET is the latest
// value (404 when absent or deleted), PUT writes it, DELETE writes a
// tombstone; without one, GET lists the entries. Each item's ETag is
// where its value is in the log; If-Match makes a write conditional on
// it (412 when the item changed), If-None-Match on a GET answers 304.
func (s *Server) item(w http.ResponseWriter, r *http.Request, rt *route, params map[string]string) {
	table := s.env.Mesh.Table(rt.cfg.Topic)
	ctx := r.Context()
	if rt.cfg.Key == "" {
		if r.Method != http.MethodGet {
			problem(w, http.StatusMethodNotAllowed, "an item route without a key lists items: GET only")
			return
		}
		s.listItems(w, r, table)
		return
	}
	key, ok := resolve(rt.cfg.Key, params, r.Header)
	if !ok {
		problem(w, http.StatusBadRequest, "the route's key %q needs what the request does not have", rt.cfg.Key)
		return
	}
	cur, found, err := table.Get(ctx, []byte(key))
	if err != nil {
		s.tableError(w, rt.cfg.Topic, err)
		return
	}
	curTag := ""
	if found {
		curTag = itemTag(cur.Partition, cur.Offset)
	}
	if m := r.Header.Get("If-Match"); m != "" && r.Method != http.MethodGet {
		if !found || !etagMatches(m, curTag) {
			problem(w, http.StatusPreconditionFailed, "item %q is not at %s (it is at %s)", key, m, orNone(curTag))
			return
		}
	}
	switch r.Method {
	case http.MethodGet:
		if !found {
			problem(w, http.StatusNotFound, "no item %q", key)
			return
		}
		w.Header().Set("ETag", quote(curTag))
		if m := r.Header.Get("If-None-Match"); m != "" && etagMatches(m, curTag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		ct := "application/octet-stream"
		for _, h := range cur.Headers {
			if h.Key == HeaderContentType {
				ct = string(h.Value)
			}
		}
		w.Header().Set("Content-Type", ct)
		w.Write(cur.Value)
	case http.MethodPut, http.MethodPost, http.MethodPatch:
		body, ok := s.readBody(w, r)
		if !ok {
			return
		}
		if s.refuseInvalid(w, mesh.Record{Topic: rt.cfg.Topic, Key: []byte(key), Value: body}) {
			return
		}
		var headers []mesh.Header
		if ct := r.Header.Get("Content-Type"); ct != "" {
			headers = append(headers, mesh.Header{Key: HeaderContentType, Value: []byte(ct)})
		}
		e, err := table.Put(ctx, []byte(key), body, headers...)
		if err != nil {
			s.tableError(w, rt.cfg.Topic, err)
			return
		}
		w.Header().Set("ETag", quote(itemTag(e.Partition, e.Offset)))
		if found {
			w.WriteHeader(http.StatusNoContent)
		} else {
			w.WriteHeader(http.StatusCreated)
		}
	case http.MethodDelete:
		if !found {
			problem(w, http.StatusNotFound, "no item %q", key)
			return
		}
		if err := table.Delete(ctx, []byte(key)); err != nil {
			s.tableError(w, rt.cfg.Topic, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// listItems answers the table's entries, in key order, from ?after= and
// at most ?limit= (1000), as a JSON array of {key, value}; a Link header
// names the next page.
func (s *Server) listItems(w http.ResponseWriter, r *http.Request, table *mesh.Table) {
	limit := itemListLimit
	if l, err := strconv.Atoi(r.URL.Query().Get("limit")); err == nil && l > 0 && l < limit {
		limit = l
	}
	o := mesh.ScanOptions{Prefix: []byte(r.URL.Query().Get("prefix")), Limit: limit}
	if a := r.URL.Query().Get("after"); a != "" {
		o.After = []byte(a)
	}
	page, err := table.Scan(r.Context(), o)
	if err != nil {
		s.tableError(w, table.Topic(), err)
		return
	}
	var buf bytes.Buffer
	buf.WriteByte('[')
	for i, e := range page.Entries {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString(`{"key":`)
		buf.Write(asJSON(quoteKey(e.Key)))
		buf.WriteString(`,"value":`)
		buf.Write(asJSON(e.Value))
		buf.WriteByte('}')
	}
	buf.WriteString("]\n")
	if page.More && len(page.Entries) > 0 {
		q := r.URL.Query()
		q.Set("after", string(page.Entries[len(page.Entries)-1].Key))
		w.Header().Set("Link", "<"+r.URL.Path+"?"+q.Encode()+`>; rel="next"`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(buf.Bytes())
}

// quoteKey makes a key a JSON string whatever it holds.
func quoteKey(k []byte) []byte { return []byte(strconv.Quote(string(k))) }

// itemTag is the ETag of an item's value at partition and offset.
func itemTag(partition int32, offset int64) string {
	return position.Encode(map[int32]int64{partition: offset})
}

// etagMatches says whether an If-Match or If-None-Match value names tag
// ("*" names any).
func etagMatches(header, tag string) bool {
	for _, v := range strings.Split(header, ",") {
		v = strings.TrimSpace(v)
		if v == "*" || strings.Trim(strings.TrimPrefix(v, "W/"), `"`) == tag {
			return true
		}
	}
	return false
}

func orNone(tag string) string {
	if tag == "" {
		return "none (absent)"
	}
	return tag
}

// tableError answers a table's refusal.
func (s *Server) tableError(w http.ResponseWriter, topic string, err error) {
	switch {
	case errors.Is(err, kerr.UnknownTopicOrPartition):
		problem(w, http.StatusNotFound, "topic %s does not exist", topic)
	case errors.Is(err, mesh.ErrTableMemory):
		problem(w, http.StatusInsufficientStorage, "topic %s: %v", topic, err)
	default:
		s.unavailable(w, topic, err)
	}
}
