// Package convert turns JSON documents into records in Confluent's wire
// format and back: FromJSON encodes a document with a schema of the
// registry (Avro binary, Protobuf binary, or the JSON document itself for
// JSON Schema) behind the wire header; ToJSON reads a record's schema id
// from its header, finds that schema and writes the value as JSON.
//
// The mappings, per format:
//
//   - Avro, in: the Avro JSON encoding as github.com/twmb/avro reads it.
//     A union value may be tagged ({"string": "x"}, the Avro spec's form)
//     or plain ("x", null); a plain value takes the first branch of its
//     JSON kind (a number: the first of int, long, float, double; a
//     string: the first of string, bytes, fixed, enum). bytes and fixed
//     are JSON strings of code points 0 to 255, one per byte ("\u00ff" is
//     the byte 0xff). Fields the schema does not have are ignored; a
//     missing field takes its default.
//   - Avro, out: plain JSON, unions untagged (the branch's value alone),
//     bytes and fixed as strings of code points 0 to 255, enums as their
//     symbol, maps as objects. Untagged output reads back in as the same
//     record whenever the union's branches differ in JSON kind (the usual
//     ["null", T]).
//   - Protobuf, in: protojson (the proto3 JSON mapping: field names as in
//     the .proto or in lowerCamelCase, enums by name or number, 64-bit
//     integers as numbers or strings, bytes as base64, the well-known
//     types in their JSON forms); unknown fields are refused. The message
//     is the one at the message-index path, [0] (the file's first
//     message) when empty.
//   - Protobuf, out: protojson with the field names of the .proto
//     (UseProtoNames), fields at their default value left out, compact.
//   - JSON Schema: the document, checked against the schema, is the
//     payload as it is (white space around it trimmed); out, the payload
//     as it is (it must be JSON; it is not checked against the schema).
package convert

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/meshka/meshka/schema"
	"github.com/meshka/meshka/schema/avro"
	"github.com/meshka/meshka/schema/jsonschema"
	"github.com/meshka/meshka/schema/protobuf"
	"github.com/meshka/meshka/schema/wire"
)

// Lookup finds the compiled schema of an id; validate.Source is one.
type Lookup interface {
	ByID(ctx context.Context, id int) (schema.Schema, schema.Type, error)
}

// Error says why a document or a payload could not be converted with a
// schema: the data's fault, not the lookup's.
type Error struct {
	SchemaID int
	Reason   string
}

func (e *Error) Error() string {
	if e.SchemaID != 0 {
		return fmt.Sprintf("schema id %d: %s", e.SchemaID, e.Reason)
	}
	return e.Reason
}

func fail(id int, format string, args ...any) error {
	return &Error{SchemaID: id, Reason: fmt.Sprintf(format, args...)}
}

// FromJSON encodes doc, one JSON document, as a value of s, the schema
// registered under id: the wire header (with indexes, the message-index
// path, for Protobuf; ignored otherwise), then the value in s's format.
// An *Error says why doc is not a value of s.
func FromJSON(s schema.Schema, id int, indexes []int, doc []byte) ([]byte, error) {
	switch s := s.(type) {
	case *avro.Schema:
		var v any
		if err := s.Avro().DecodeJSON(doc, &v); err != nil {
			return nil, fail(id, "not a value of the avro schema: %v", err)
		}
		out, err := s.Avro().AppendEncode(wire.Append(nil, uint32(id), nil), v)
		if err != nil {
			return nil, fail(id, "not a value of the avro schema: %v", err)
		}
		return out, nil
	case *protobuf.Schema:
		md, err := s.Message(indexes)
		if err != nil {
			return nil, fail(id, "%v", err)
		}
		m := dynamicpb.NewMessage(md)
		if err := protojson.Unmarshal(doc, m); err != nil {
			return nil, fail(id, "not a %s: %v", md.FullName(), err)
		}
		if indexes == nil {
			indexes = []int{}
		}
		out, err := proto.MarshalOptions{Deterministic: true}.MarshalAppend(wire.Append(nil, uint32(id), indexes), m)
		if err != nil {
			return nil, fail(id, "not a %s: %v", md.FullName(), err)
		}
		return out, nil
	case *jsonschema.Schema:
		if err := s.Validate(doc, nil); err != nil {
			return nil, fail(id, "%v", err)
		}
		doc = bytes.TrimSpace(doc)
		return append(wire.Append(make([]byte, 0, wire.HeaderSize+len(doc)), uint32(id), nil), doc...), nil
	case nil:
		return nil, fmt.Errorf("convert: no schema")
	default:
		return nil, fmt.Errorf("convert: schema type %s has no conversion", s.Type())
	}
}

// ToJSON decodes payload, a value in Confluent's wire format, with the
// schema its header names, found with src, and writes it as JSON. An
// *Error says why payload is not a value of its schema; other errors are
// src's (an unknown id among them).
func ToJSON(ctx context.Context, src Lookup, payload []byte) ([]byte, error) {
	if len(payload) < wire.HeaderSize {
		return nil, fail(0, "%d bytes, not a value in the wire format (5 bytes of header at least)", len(payload))
	}
	if payload[0] != wire.Magic {
		return nil, fail(0, "not a value in the wire format: the first byte is %#02x, not %#02x", payload[0], wire.Magic)
	}
	id := int(binary.BigEndian.Uint32(payload[1:5]))
	s, t, err := src.ByID(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("schema id %d: %w", id, err)
	}
	_, indexes, body, err := wire.Decode(payload, t == schema.Protobuf)
	if err != nil {
		return nil, fail(id, "%v", err)
	}
	return Decode(s, id, indexes, body)
}

// Decode writes body, a value of s (registered under id) without the wire
// header, as JSON; indexes is the Protobuf message-index path.
func Decode(s schema.Schema, id int, indexes []int, body []byte) ([]byte, error) {
	switch s := s.(type) {
	case *avro.Schema:
		var v any
		rest, err := s.Avro().Decode(body, &v)
		if err != nil {
			return nil, fail(id, "avro payload: %v", err)
		}
		if len(rest) > 0 {
			return nil, fail(id, "avro payload: %d bytes after the value", len(rest))
		}
		out, err := s.Avro().EncodeJSON(v)
		if err != nil {
			return nil, fail(id, "avro payload: %v", err)
		}
		return out, nil
	case *protobuf.Schema:
		md, err := s.Message(indexes)
		if err != nil {
			return nil, fail(id, "%v", err)
		}
		m := dynamicpb.NewMessage(md)
		if err := proto.Unmarshal(body, m); err != nil {
			return nil, fail(id, "protobuf payload: %s: %v", md.FullName(), err)
		}
		out, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
		if err != nil {
			return nil, fail(id, "protobuf payload: %s: %v", md.FullName(), err)
		}
		// protojson varies its spacing on purpose; the output is compacted
		// so that equal messages give equal bytes.
		var buf bytes.Buffer
		if err := json.Compact(&buf, out); err != nil {
			return nil, fail(id, "protobuf payload: %v", err)
		}
		return buf.Bytes(), nil
	case *jsonschema.Schema:
		if !json.Valid(body) {
			return nil, fail(id, "json payload: not one JSON document")
		}
		return bytes.TrimSpace(body), nil
	case nil:
		return nil, fmt.Errorf("convert: no schema")
	default:
		return nil, fmt.Errorf("convert: schema type %s has no conversion", s.Type())
	}
}
