package httpmap

// Decoding a v3 produce body: the framer splits it into its JSON objects,
// and decodeV3Record reads each into a record (FuzzV3Record checks both).

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/meshka/meshka/mesh"
)

// v3Input is one record of a produce request as sent (the API's
// ProduceRequest). Unknown fields are refused: a misspelt partition_id
// must not send a record elsewhere.
type v3Input struct {
	PartitionID *int32     `json:"partition_id"`
	Headers     []v3Header `json:"headers"`
	Key         *v3Data    `json:"key"`
	Value       *v3Data    `json:"value"`
	Timestamp   *string    `json:"timestamp"`
}

type v3Header struct {
	Name  *string `json:"name"`
	Value *string `json:"value"` // base64; null: Kafka's null
}

// v3Data is a key or a value: its type and data, or the schema fields
// of the types that need a schema registry.
type v3Data struct {
	Type                *string         `json:"type"`
	Data                json.RawMessage `json:"data"`
	Subject             json.RawMessage `json:"subject"`
	SubjectNameStrategy json.RawMessage `json:"subject_name_strategy"`
	SchemaID            json.RawMessage `json:"schema_id"`
	SchemaVersion       json.RawMessage `json:"schema_version"`
	Schema              json.RawMessage `json:"schema"`
}

// v3Record is one record of a produce request, decoded: what to produce
// and the types its key and value came in, or why it cannot be.
type v3Record struct {
	rec                    mesh.Record
	key, value             *v3Size       // nil: none given
	keySchema, valueSchema *v3SchemaData // non-nil: to encode with a schema
	err                    *confluentError
}

// decodeV3Record decodes one JSON object of a produce request. It never
// panics, whatever the bytes: the worst is a record with its error.
func decodeV3Record(frame []byte) v3Record {
	var in v3Input
	dec := json.NewDecoder(bytes.NewReader(frame))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return v3Record{err: errorf(http.StatusBadRequest, "Error processing JSON: %v", err)}
	}
	if dec.More() {
		return v3Record{err: errorf(http.StatusBadRequest, "Error processing JSON: more than one value in a record")}
	}
	out := v3Record{rec: mesh.Record{Partition: -1}}
	if in.PartitionID != nil {
		if *in.PartitionID < 0 {
			return v3Record{err: errorf(codePartitionNotFound, "Partition not found: partition_id %d.", *in.PartitionID)}
		}
		out.rec.Partition = *in.PartitionID
	}
	var e *confluentError
	if out.rec.Key, out.key, out.keySchema, e = in.Key.decode("key"); e != nil {
		return v3Record{err: e}
	}
	if out.rec.Value, out.value, out.valueSchema, e = in.Value.decode("value"); e != nil {
		return v3Record{err: e}
	}
	for i, h := range in.Headers {
		if h.Name == nil {
			return v3Record{err: errorf(http.StatusBadRequest, "headers[%d]: no name", i)}
		}
		hd := mesh.Header{Key: *h.Name}
		if h.Value != nil {
			v, err := decodeBase64(*h.Value)
			if err != nil {
				return v3Record{err: errorf(http.StatusBadRequest, "headers[%d] (%s): the value is not base64: %v", i, *h.Name, err)}
			}
			hd.Value = v
			if hd.Value == nil {
				hd.Value = []byte{} // empty, not null
			}
		}
		out.rec.Headers = append(out.rec.Headers, hd)
	}
	if in.Timestamp != nil {
		ts, err := time.Parse(time.RFC3339Nano, *in.Timestamp)
		if err != nil {
			return v3Record{err: errorf(http.StatusBadRequest, "timestamp %q is not an RFC 3339 date-time such as 2021-02-05T19:14:42Z", *in.Timestamp)}
		}
		if ts.UnixMilli() < 0 {
			return v3Record{err: errorf(http.StatusBadRequest, "timestamp %s is before 1970", *in.Timestamp)}
		}
		out.rec.Timestamp = ts
	}
	return out
}

// decode is the bytes of a key or value, and its type and size for the
// report; nil d: none given. A key or value in a schema format (AVRO,
// JSONSCHEMA, PROTOBUF, or no type: the schema's) comes back as what
// names its schema, encoded once it is found (v3Send).
func (d *v3Data) decode(which string) ([]byte, *v3Size, *v3SchemaData, *confluentError) {
	if d == nil {
		return nil, nil, nil, nil
	}
	if d.Type == nil {
		sd, e := d.schemaData(which, "")
		return nil, nil, sd, e
	}
	switch t := *d.Type; t {
	case "AVRO", "JSONSCHEMA", "PROTOBUF":
		sd, e := d.schemaData(which, t)
		return nil, nil, sd, e
	case "BINARY", "JSON", "STRING":
	default:
		return nil, nil, nil, errorf(http.StatusBadRequest, "%s: unknown type %q; want BINARY, JSON, STRING, AVRO, JSONSCHEMA or PROTOBUF", which, t)
	}
	for _, f := range [...]struct {
		name string
		raw  json.RawMessage
	}{{"subject", d.Subject}, {"subject_name_strategy", d.SubjectNameStrategy}, {"schema_id", d.SchemaID},
		{"schema_version", d.SchemaVersion}, {"schema", d.Schema}} {
		if name := f.name; present(f.raw) {
			return nil, nil, nil, errorf(http.StatusBadRequest,
				"%s: %s names a schema, which type %s does not take; give type AVRO, JSONSCHEMA or PROTOBUF with one", which, name, *d.Type)
		}
	}
	var b []byte
	switch *d.Type {
	case "BINARY":
		if present(d.Data) {
			var s string
			if json.Unmarshal(d.Data, &s) != nil {
				return nil, nil, nil, errorf(http.StatusBadRequest, "%s: data=%s is not a base64 string.", which, brief(d.Data))
			}
			var err error
			if b, err = decodeBase64(s); err != nil {
				return nil, nil, nil, errorf(http.StatusBadRequest, "%s: data=%s is not a valid base64 string: %v", which, brief(d.Data), err)
			}
			if b == nil {
				b = []byte{}
			}
		}
	case "JSON":
		if present(d.Data) {
			var buf bytes.Buffer
			if err := json.Compact(&buf, d.Data); err != nil {
				return nil, nil, nil, errorf(http.StatusBadRequest, "%s: data is not JSON: %v", which, err)
			}
			b = buf.Bytes()
		}
	case "STRING":
		if present(d.Data) {
			var s string
			if json.Unmarshal(d.Data, &s) != nil {
				return nil, nil, nil, errorf(http.StatusBadRequest, "%s: data=%s is not a string.", which, brief(d.Data))
			}
			b = []byte(s)
		}
	}
	return b, sizeOf(*d.Type, b), nil, nil
}

// sizeOf is the report of a key or value of type t written as b: -1 for
// a null, as Kafka's producers report it.
func sizeOf(t string, b []byte) *v3Size {
	size := len(b)
	if b == nil {
		size = -1
	}
	return &v3Size{Type: t, Size: size}
}

// present says a JSON field was given, and not as null.
func present(raw json.RawMessage) bool {
	return len(raw) > 0 && !bytes.Equal(raw, []byte("null"))
}

var errFrameTooLarge = errors.New("a record larger than http.max_body_bytes")

// framer splits a body into its top-level JSON objects, whitespace
// between them or none, as the v3 API takes records. It reads a byte at
// a time from a buffer, so it survives any split of the body; a record
// is bounded before it is held.
type framer struct {
	r   *bufio.Reader
	max int
	off int64 // bytes read
	buf []byte
}

func newFramer(r io.Reader, max int) *framer {
	return &framer{r: bufio.NewReader(r), max: max}
}

// next is the next object, valid until the next call; io.EOF once the
// body ends between objects.
func (f *framer) next() ([]byte, error) {
	for {
		c, err := f.r.ReadByte()
		if err != nil {
			return nil, err
		}
		f.off++
		if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
			continue
		}
		if c != '{' {
			return nil, fmt.Errorf("at byte %d: want a JSON object for a record, got %q", f.off-1, c)
		}
		break
	}
	f.buf = append(f.buf[:0], '{')
	depth, inString, escaped := 1, false, false
	for depth > 0 {
		c, err := f.r.ReadByte()
		if err == io.EOF {
			return nil, fmt.Errorf("after byte %d: the body ends inside a record: %w", f.off, io.ErrUnexpectedEOF)
		}
		if err != nil {
			return nil, err
		}
		f.off++
		if len(f.buf) >= f.max {
			return nil, fmt.Errorf("at byte %d: %w (%d bytes)", f.off-1, errFrameTooLarge, f.max)
		}
		f.buf = append(f.buf, c)
		switch {
		case inString && escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case inString && c == '"':
			inString = false
		case inString:
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
		}
	}
	return f.buf, nil
}
