package httpmap

// v3 records in the schema formats: a key or value {"type": "AVRO" |
// "JSONSCHEMA" | "PROTOBUF" (or none: the schema's), "data": JSON} with
// schema_id, schema_version (of subject, or of the subject_name_strategy
// TOPIC_NAME's subject, <topic>-key or <topic>-value), schema (its text,
// found or registered under that subject), or none of them (the
// subject's latest version).

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/meshka/meshka/schema"
)

// v3SchemaData is a key or value to encode with a schema, as decoded
// from the request.
type v3SchemaData struct {
	spec  schemaSpec
	which string          // key or value
	named string          // what in the request asks for a schema, for errors
	data  json.RawMessage // nil: Kafka's null
}

var v3SchemaTypes = map[string]schema.Type{"AVRO": schema.Avro, "JSONSCHEMA": schema.JSON, "PROTOBUF": schema.Protobuf}

// schemaData reads the schema fields of d, a key or value of type t (""
// when none was given).
func (d *v3Data) schemaData(which, t string) (*v3SchemaData, *confluentError) {
	bad := func(format string, args ...any) (*v3SchemaData, *confluentError) {
		return nil, errorf(http.StatusBadRequest, which+": "+format, args...)
	}
	sd := &v3SchemaData{spec: schemaSpec{format: v3SchemaTypes[t]}, which: which, named: "type " + t}
	if t == "" {
		sd.named = "no type (the schema's own)"
	}
	if present(d.Data) {
		sd.data = d.Data
	}
	given := 0
	if present(d.SchemaID) {
		given++
		if json.Unmarshal(d.SchemaID, &sd.spec.id) != nil || sd.spec.id <= 0 {
			return bad("schema_id=%s is not a schema id", brief(d.SchemaID))
		}
		sd.named = "schema_id"
	}
	if present(d.SchemaVersion) {
		given++
		if json.Unmarshal(d.SchemaVersion, &sd.spec.version) != nil || sd.spec.version <= 0 {
			return bad("schema_version=%s is not a version (1 or more)", brief(d.SchemaVersion))
		}
		sd.named = "schema_version"
	}
	if present(d.Schema) {
		given++
		if json.Unmarshal(d.Schema, &sd.spec.text) != nil || sd.spec.text == "" {
			return bad("schema=%s is not a string holding a schema", brief(d.Schema))
		}
		if t == "" {
			return bad("a schema given as text needs its type: AVRO, JSONSCHEMA or PROTOBUF")
		}
		sd.named = "schema"
	}
	if given > 1 {
		return bad("give one of schema_id, schema_version and schema, not more")
	}
	if present(d.Subject) {
		if json.Unmarshal(d.Subject, &sd.spec.subject) != nil || sd.spec.subject == "" {
			return bad("subject=%s is not a subject name", brief(d.Subject))
		}
		if present(d.SubjectNameStrategy) {
			return bad("give subject or subject_name_strategy, not both")
		}
	}
	if present(d.SubjectNameStrategy) {
		var strategy string
		if json.Unmarshal(d.SubjectNameStrategy, &strategy) != nil {
			return bad("subject_name_strategy=%s is not a string", brief(d.SubjectNameStrategy))
		}
		switch strategy {
		case "TOPIC_NAME":
		case "RECORD_NAME", "TOPIC_RECORD_NAME":
			return bad("subject_name_strategy %s is not served; give TOPIC_NAME (the default) or a subject", strategy)
		default:
			return bad("unknown subject_name_strategy %q; want TOPIC_NAME", strategy)
		}
	}
	return sd, nil
}

// v3Encode finds sd's schema and encodes its data with it: the bytes to
// write and the report of them.
func (s *Server) v3Encode(ctx context.Context, topic string, isKey bool, sd *v3SchemaData) ([]byte, *v3Size, *confluentError) {
	rs, f := s.resolveSchema(ctx, topic, isKey, sd.spec)
	if f != nil {
		if f.kind == failNoRegistry {
			return nil, nil, errorf(http.StatusBadRequest,
				"%s: %s needs a schema registry, which this node does not have (http.schema_registry.enabled); give type BINARY, JSON or STRING", sd.which, sd.named)
		}
		e := f.v3Error()
		e.Message = sd.which + ": " + e.Message
		return nil, nil, e
	}
	var b []byte
	if sd.data != nil {
		var err error
		if b, err = rs.encode(sd.data); err != nil {
			return nil, nil, errorf(http.StatusBadRequest, "Bad Request: %s: Error serializing message: %v", sd.which, err)
		}
	}
	size := sizeOf(typeName(rs.sc.Type()), b)
	id := rs.id
	size.SchemaID, size.Subject = &id, rs.subject
	if rs.version > 0 {
		v := rs.version
		size.SchemaVersion = &v
	}
	return b, size, nil
}
