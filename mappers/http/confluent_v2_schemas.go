package httpmap

// v2 produce in the schema formats: application/vnd.kafka.avro.v2+json,
// .jsonschema.v2+json and .protobuf.v2+json. The request's key schema
// and value schema (key_schema or key_schema_id, value_schema or
// value_schema_id) are found or registered once, under the
// TopicNameStrategy subjects <topic>-key and <topic>-value; each record's
// key and value, JSON, is encoded with them.

import (
	"encoding/json"
	"net/http"

	"github.com/meshka/meshka/mesh"
	"github.com/meshka/meshka/schema"
)

// v2SchemaTypes are the v2 schema formats and the schema type of each.
var v2SchemaTypes = map[string]schema.Type{"avro": schema.Avro, "jsonschema": schema.JSON, "protobuf": schema.Protobuf}

// v2Spec is the schema a v2 request names for its keys or values; false:
// none.
func v2Spec(t schema.Type, text, id json.RawMessage, which string) (schemaSpec, bool, *confluentError) {
	spec := schemaSpec{format: t}
	if present(id) {
		if json.Unmarshal(id, &spec.id) != nil || spec.id <= 0 {
			return spec, false, errorf(http.StatusUnprocessableEntity, "%s_schema_id: %s is not a schema id", which, brief(id))
		}
		return spec, true, nil
	}
	if present(text) {
		if json.Unmarshal(text, &spec.text) != nil {
			return spec, false, errorf(http.StatusUnprocessableEntity, "%s_schema: %s is not a string holding a schema", which, brief(text))
		}
		return spec, spec.text != "", nil
	}
	return spec, false, nil
}

// v2Encode sets the keys and values of recs, a v2 request's records in a
// schema format, encoded with the request's schemas, and the schema ids
// of out; a record that does not fit its schema gets its error in out
// and is marked failed. False: the request was answered with an error
// (a schema missing, or one that cannot be found).
func (s *Server) v2Encode(w http.ResponseWriter, r *http.Request, topic, format string, req *v2Request, recs []mesh.Record,
	out *v2Response, failed []bool) bool {
	t := v2SchemaTypes[format]
	if s.env.Mesh.Schemas() == nil {
		v2Fail(w, errorf(http.StatusUnsupportedMediaType,
			"HTTP 415 Unsupported Media Type: the %s embedded format needs a schema registry, which this node does not have (http.schema_registry.enabled); send %s or %s",
			format, v2JSON, v2Binary))
		return false
	}
	var keys, values bool
	for _, in := range req.Records {
		keys = keys || present(in.Key)
		values = values || present(in.Value)
	}
	var schemas [2]*resolvedSchema // key, value
	for i, side := range [...]struct {
		which      string
		text, id   json.RawMessage
		needed     bool
		missing    int
		responseID **int32
	}{{"key", req.KeySchema, req.KeySchemaID, keys, codeKeySchemaMissing, &out.KeySchemaID},
		{"value", req.ValueSchema, req.ValueSchemaID, values, codeValueSchemaMissing, &out.ValueSchemaID}} {
		spec, given, e := v2Spec(t, side.text, side.id, side.which)
		if e != nil {
			v2Fail(w, e)
			return false
		}
		if !given {
			if side.needed {
				msg := "Request includes keys but does not include key schema"
				if side.which == "value" {
					msg = "Request includes values but does not include value schema"
				}
				v2Fail(w, errorf(side.missing, "%s (%s_schema or %s_schema_id)", msg, side.which, side.which))
				return false
			}
			continue
		}
		spec.mayRegister = s.mayRegister(r)
		rs, f := s.resolveSchema(r.Context(), topic, side.which == "key", spec)
		if f != nil {
			v2Fail(w, f.v2Error())
			return false
		}
		schemas[i] = &rs
		id := int32(rs.id)
		*side.responseID = &id
	}
	for i, in := range req.Records {
		for j, raw := range [...]json.RawMessage{in.Key, in.Value} {
			if !present(raw) || failed[i] {
				continue
			}
			b, err := schemas[j].encode(raw)
			if err != nil {
				which := [...]string{"key", "value"}[j]
				out.Offsets[i] = v2Failed(errorf(codeConversion, "Conversion of JSON to Object failed: records[%d].%s: %v", i, which, err))
				failed[i] = true
				continue
			}
			if j == 0 {
				recs[i].Key = b
			} else {
				recs[i].Value = b
			}
		}
	}
	return true
}
