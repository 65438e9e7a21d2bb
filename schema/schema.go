// Package schema is the vocabulary the schema formats share: a schema's
// type, its references, and the compiled form every format gives.
package schema

import "fmt"

// Type is a schema type as the registry's REST API names it.
type Type string

// The types meshka serves.
const (
	Avro     Type = "AVRO"
	JSON     Type = "JSON"
	Protobuf Type = "PROTOBUF"
)

// ParseType reads a schemaType field: empty means Avro, as in Confluent's API.
func ParseType(s string) (Type, error) {
	switch t := Type(s); t {
	case "":
		return Avro, nil
	case Avro, JSON, Protobuf:
		return t, nil
	}
	return "", fmt.Errorf("unknown schema type %q (want AVRO, JSON or PROTOBUF)", s)
}

// Reference is a referenced schema's text under the name the referring
// schema uses for it: for Avro the full name of a type it defines, for JSON
// Schema the URL of a $ref, for Protobuf the path of an import.
//
// A schema is compiled with the transitive closure of its references,
// dependencies before the schemas that use them.
type Reference struct {
	Name   string
	Schema string
}

// Schema is a compiled schema. It is immutable and safe for concurrent use.
type Schema interface {
	Type() Type
	// Canonical is the schema's identity: two schemas of one type with equal
	// canonical forms (and equal references) are the same schema. It is
	// comparable, not necessarily readable.
	Canonical() string
	// Normalized is the schema text meshka stores when asked to normalize.
	Normalized() string
	// Validate says why payload is not a value of this schema, nil when it
	// is. indexes is the Protobuf message-index path and is ignored by the
	// other types.
	Validate(payload []byte, indexes []int) error
	// ReadsFrom says why data written with writer, a schema of the same
	// type, cannot be read with this schema; empty when it can.
	ReadsFrom(writer Schema) []string
}

// Compatible says why data written with writer cannot be read with reader,
// empty when it can: BACKWARD compatibility of a new schema (reader) with an
// old one (writer). FORWARD is Compatible(old, new); FULL both.
func Compatible(reader, writer Schema) []string {
	if reader.Type() != writer.Type() {
		return []string{fmt.Sprintf("the schema type changed from %s to %s", writer.Type(), reader.Type())}
	}
	return reader.ReadsFrom(writer)
}
