package httpmap

// The Confluent REST Proxy's v2 API, its producing and topics: POST
// /topics/{topic} and /topics/{topic}/partitions/{partition} in the json
// and binary embedded formats, and in the schema formats avro, jsonschema
// and protobuf (confluent_v2_schemas.go), GET /topics and /topics/{topic}.
// Answers are application/vnd.kafka.v2+json. Its consumer instances
// (/consumers) are in consumers.go.

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/meshka/meshka/acl"
	"github.com/meshka/meshka/mesh"
)

const (
	v2ContentType = "application/vnd.kafka.v2+json"
	v2Binary      = "application/vnd.kafka.binary.v2+json"
	v2JSON        = "application/vnd.kafka.json.v2+json"
)

func (s *Server) v2Routes(mux *http.ServeMux) {
	ct := v2ContentType
	confluentRoutes(mux, ct, "/topics", map[string]http.HandlerFunc{http.MethodGet: s.v2Topics})
	confluentRoutes(mux, ct, "/topics/{topic}", map[string]http.HandlerFunc{http.MethodGet: s.v2Topic, http.MethodPost: s.v2Produce})
	confluentRoutes(mux, ct, "/topics/{topic}/partitions/{partition}", map[string]http.HandlerFunc{http.MethodPost: s.v2Produce})
	s.v2ConsumerRoutes(mux)
}

func v2Fail(w http.ResponseWriter, e *confluentError) {
	writeConfluent(w, v2ContentType, e.status(), e)
}

// GET /topics: the names of upstream's topics but its internal ones
// (with ACLs on, those the principal may describe).
func (s *Server) v2Topics(w http.ResponseWriter, r *http.Request) {
	ts, err := s.env.Mesh.Topics(r.Context())
	if err != nil {
		v2Fail(w, upstreamError("", err))
		return
	}
	names := []string{}
	for _, t := range ts {
		if !t.Internal && s.allowed(r, acl.Describe, acl.Topic, t.Name) {
			names = append(names, t.Name)
		}
	}
	writeConfluent(w, v2ContentType, http.StatusOK, names)
}

// v2TopicData is GET /topics/{topic}'s answer, without the configs and
// the partitions' leaders and replicas, which the mesh API does not say.
type v2TopicData struct {
	Name       string            `json:"name"`
	Partitions []v2PartitionData `json:"partitions"`
}

type v2PartitionData struct {
	Partition int32 `json:"partition"`
}

// GET /topics/{topic}
func (s *Server) v2Topic(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("topic")
	if !s.mayTopic(w, r, v2ContentType, acl.Describe, name) {
		return
	}
	t, err := s.env.Mesh.Topic(r.Context(), name)
	if err != nil {
		v2Fail(w, v2TopicError(name, err))
		return
	}
	out := v2TopicData{Name: t.Name, Partitions: make([]v2PartitionData, 0, t.Partitions)}
	for p := range t.Partitions {
		out.Partitions = append(out.Partitions, v2PartitionData{Partition: p})
	}
	writeConfluent(w, v2ContentType, http.StatusOK, out)
}

func v2TopicError(topic string, err error) *confluentError {
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return errorf(codeTopicNotFound, "Topic not found: %s.", topic)
	}
	return upstreamError(topic, err)
}

// v2Request is a v2 produce request. The schema fields are for the
// schema formats; json and binary ignore them, as the REST Proxy does.
type v2Request struct {
	Records       []v2Input       `json:"records"`
	KeySchema     json.RawMessage `json:"key_schema"`
	KeySchemaID   json.RawMessage `json:"key_schema_id"`
	ValueSchema   json.RawMessage `json:"value_schema"`
	ValueSchemaID json.RawMessage `json:"value_schema_id"`
}

type v2Input struct {
	Key       json.RawMessage `json:"key"`
	Value     json.RawMessage `json:"value"`
	Partition *int32          `json:"partition"`
}

type v2Response struct {
	KeySchemaID   *int32     `json:"key_schema_id"`
	ValueSchemaID *int32     `json:"value_schema_id"`
	Offsets       []v2Offset `json:"offsets"`
}

// v2Offset is where a record went, or its error (partition and offset
// null).
type v2Offset struct {
	Partition *int32  `json:"partition"`
	Offset    *int64  `json:"offset"`
	ErrorCode *int    `json:"error_code"`
	Error     *string `json:"error"`
}

func v2Failed(e *confluentError) v2Offset { return v2Offset{ErrorCode: &e.Code, Error: &e.Message} }

// POST /topics/{topic} and /topics/{topic}/partitions/{partition}: the
// records in the body's embedded format (json: any JSON value, written
// as its JSON text; binary: base64; avro, jsonschema, protobuf: JSON
// encoded with the request's key and value schemas), each to its own
// partition, the path's, or by its key. 200 with each record's partition
// and offset, or its error, in order; 401 or 403 when upstream refused
// the credentials.
func (s *Server) v2Produce(w http.ResponseWriter, r *http.Request) {
	format, ok := v2Format(w, r)
	if !ok {
		return
	}
	topic := r.PathValue("topic")
	if !s.mayTopic(w, r, v2ContentType, acl.Write, topic) {
		return
	}
	n, err := s.env.Mesh.Partitions(r.Context(), topic)
	if err != nil {
		v2Fail(w, v2TopicError(topic, err))
		return
	}
	pathPartition := int32(-1)
	if p := r.PathValue("partition"); p != "" {
		v, err := strconv.ParseInt(p, 10, 32)
		if err != nil || v < 0 || v >= int64(n) {
			v2Fail(w, errorf(codePartitionNotFound, "Partition not found: topic %s has partitions 0 to %d, not %s.", topic, n-1, p))
			return
		}
		pathPartition = int32(v)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(s.cfg.MaxBodyBytes)))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			v2Fail(w, errorf(http.StatusRequestEntityTooLarge, "the body is larger than http.max_body_bytes (%d bytes)", tooLarge.Limit))
			return
		}
		v2Fail(w, errorf(http.StatusBadRequest, "reading the body: %v", err))
		return
	}
	var req v2Request
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		v2Fail(w, errorf(http.StatusBadRequest, "Error processing JSON: %v", err))
		return
	}
	if dec.More() {
		v2Fail(w, errorf(http.StatusBadRequest, "Error processing JSON: more than one value in the body"))
		return
	}
	if len(req.Records) == 0 {
		v2Fail(w, errorf(http.StatusUnprocessableEntity, "records: must not be empty"))
		return
	}
	recs := make([]mesh.Record, len(req.Records))
	for i, in := range req.Records {
		rec := mesh.Record{Topic: topic, Partition: pathPartition}
		if in.Partition != nil {
			rec.Partition = *in.Partition
		}
		if format == "binary" || format == "json" {
			var e *confluentError
			if rec.Key, e = v2Data(format == "binary", in.Key, i, "key"); e != nil {
				v2Fail(w, e)
				return
			}
			if rec.Value, e = v2Data(format == "binary", in.Value, i, "value"); e != nil {
				v2Fail(w, e)
				return
			}
		}
		recs[i] = rec
	}
	out := v2Response{Offsets: make([]v2Offset, len(recs))}
	failed := make([]bool, len(recs))
	if format != "binary" && format != "json" {
		if !s.v2Encode(w, r, topic, format, &req, recs, &out, failed) {
			return
		}
	}
	var wg sync.WaitGroup
	for i, rec := range recs {
		if failed[i] {
			continue
		}
		if p := req.Records[i].Partition; p != nil && (*p < 0 || *p >= n) {
			out.Offsets[i] = v2Failed(errorf(codePartitionNotFound, "Partition not found: topic %s has partitions 0 to %d, not %d.",
				topic, n-1, rec.Partition))
			continue
		}
		if err := s.env.Mesh.Check(rec); err != nil {
			out.Offsets[i] = v2Failed(produceError(topic, err)) // 40002, as Kafka's INVALID_RECORD
			continue
		}
		wg.Add(1)
		err := s.producers[mesh.AcksAll].Produce(r.Context(), rec, func(wr mesh.Record, err error) {
			defer wg.Done()
			if err != nil {
				out.Offsets[i] = v2Failed(produceError(topic, err))
				return
			}
			out.Offsets[i] = v2Offset{Partition: &wr.Partition, Offset: &wr.Offset}
		})
		if err != nil {
			out.Offsets[i] = v2Failed(produceError(topic, err))
			wg.Done()
		}
	}
	wg.Wait()
	status := http.StatusOK
	for _, o := range out.Offsets {
		switch {
		case o.ErrorCode == nil:
		case *o.ErrorCode == codeAuthentication:
			status = http.StatusUnauthorized
		case *o.ErrorCode == codeAuthorization && status == http.StatusOK:
			status = http.StatusForbidden
		}
	}
	writeConfluent(w, v2ContentType, status, out)
}

// v2Format is a produce's embedded format: binary, json, avro,
// jsonschema or protobuf; false: answered 415.
func v2Format(w http.ResponseWriter, r *http.Request) (string, bool) {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil {
		if f, ok := strings.CutPrefix(mt, "application/vnd.kafka."); ok {
			if f, ok = strings.CutSuffix(f, ".v2+json"); ok {
				if _, known := v2SchemaTypes[f]; known || f == "binary" || f == "json" {
					return f, true
				}
			}
		}
	}
	if ct == "" {
		ct = "none"
	}
	v2Fail(w, errorf(http.StatusUnsupportedMediaType, "HTTP 415 Unsupported Media Type: %s; send application/vnd.kafka.{json,binary,avro,jsonschema,protobuf}.v2+json", ct))
	return "", false
}

// v2Data is a record's key or value in the embedded format: null or
// absent is Kafka's null.
func v2Data(binary bool, raw json.RawMessage, i int, which string) ([]byte, *confluentError) {
	if !present(raw) {
		return nil, nil
	}
	if !binary {
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return nil, errorf(http.StatusBadRequest, "records[%d].%s is not JSON: %v", i, which, err)
		}
		return buf.Bytes(), nil
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return nil, errorf(http.StatusBadRequest, "records[%d].%s: %s is not a base64 string", i, which, brief(raw))
	}
	b, err := decodeBase64(s)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "records[%d].%s: %s is not a valid base64 string: %v", i, which, brief(raw), err)
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}
