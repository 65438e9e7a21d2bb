package httpmap

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/meshka/meshka/mesh"
)

// HeaderContentType is the record header a produced body's content type
// is kept in.
const HeaderContentType = "content-type"

// readBody reads a request's body, at most http.max_body_bytes; false:
// answered (413 past the bound, 400 for a body that did not arrive).
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(s.cfg.MaxBodyBytes)))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			problem(w, http.StatusRequestEntityTooLarge, "the body is larger than http.max_body_bytes (%d bytes)", tooLarge.Limit)
			return nil, false
		}
		problem(w, http.StatusBadRequest, "reading the body: %v", err)
		return nil, false
	}
	return body, true
}

// produced is a produce's answer.
type produced struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Timestamp int64  `json:"timestamp"`
}

// produce writes the request's body as a record: key and headers from
// the route, the body's content type kept; 201 with where it went (202
// with acks none, which learns no offset).
func (s *Server) produce(w http.ResponseWriter, r *http.Request, rt *route, params map[string]string) {
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	rec := mesh.Record{Topic: rt.cfg.Topic, Partition: -1, Value: body, Timestamp: time.Now()}
	if rt.cfg.Key != "" {
		key, ok := resolve(rt.cfg.Key, params, r.Header)
		if !ok {
			problem(w, http.StatusBadRequest, "the route's key %q needs what the request does not have", rt.cfg.Key)
			return
		}
		rec.Key = []byte(key)
	}
	if r.Method == http.MethodDelete && len(body) == 0 {
		rec.Value = nil // a tombstone
	}
	if rt.cfg.ValueFormat != "" && rec.Value != nil {
		if rec.Value, ok = s.encodeBody(w, r, rt, body); !ok {
			return
		}
	} else if ct := r.Header.Get("Content-Type"); ct != "" && rec.Value != nil {
		rec.Headers = append(rec.Headers, mesh.Header{Key: HeaderContentType, Value: []byte(ct)})
	}
	for k, v := range rt.cfg.Headers {
		val, ok := resolve(v, params, r.Header)
		if !ok {
			continue // a header the request lacks is not written
		}
		rec.Headers = append(rec.Headers, mesh.Header{Key: k, Value: []byte(val)})
	}
	if s.refuseInvalid(w, rec) {
		return
	}
	if ik := r.Header.Get("Idempotency-Key"); ik != "" {
		key := rt.cfg.Method + " " + rt.cfg.Path + " " + ik
		token, done, err := s.idemBegin(r.Context(), key)
		if err != nil {
			if r.Context().Err() == nil {
				problem(w, http.StatusServiceUnavailable, "the Idempotency-Key cannot be checked now: %v", err)
			}
			return
		}
		if done != nil {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Idempotent-Replayed", "true")
			w.WriteHeader(done.Status)
			w.Write(done.Body)
			return
		}
		rw := &recorder{ResponseWriter: w}
		defer func() { s.idemFinish(key, token, rw.status, rw.body.Bytes()) }()
		w = rw
	}
	out, err := s.producers[rt.acks].ProduceSync(r.Context(), rec)
	if err != nil {
		status := http.StatusServiceUnavailable
		var ke *kerr.Error
		if errors.As(err, &ke) {
			switch ke {
			case kerr.MessageTooLarge, kerr.RecordListTooLarge:
				status = http.StatusRequestEntityTooLarge
			case kerr.UnknownTopicOrPartition:
				status = http.StatusNotFound
			case kerr.InvalidRecord, kerr.PolicyViolation:
				status = http.StatusBadRequest
			}
		}
		problem(w, status, "the record was not written: %v", err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	status := http.StatusCreated
	if rt.acks == mesh.AcksNone {
		status = http.StatusAccepted
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(produced{Topic: out[0].Topic, Partition: out[0].Partition, Offset: out[0].Offset,
		Timestamp: rec.Timestamp.UnixMilli()})
}

// recorder keeps what a produce answered, for its idempotency key.
type recorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (r *recorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}

// refuseInvalid answers 400 with the reason when the node's topics rules
// refuse rec (docs/schemas.md), 503 when they cannot check it now (its
// schemas' registry cannot be read), and says whether it did.
func (s *Server) refuseInvalid(w http.ResponseWriter, rec mesh.Record) bool {
	err := s.env.Mesh.Check(rec)
	if err == nil {
		return false
	}
	if _, ok := errors.AsType[*mesh.UncheckedError](err); ok {
		w.Header().Set("Retry-After", "1")
		problem(w, http.StatusServiceUnavailable, "the record was not written: %v", err)
		return true
	}
	problem(w, http.StatusBadRequest, "the record was not written: %v", err)
	return true
}
