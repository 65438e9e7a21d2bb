// Package format compiles a schema of any type meshka serves, by type.
package format

import (
	"fmt"

	"github.com/meshka/meshka/schema"
	"github.com/meshka/meshka/schema/avro"
	"github.com/meshka/meshka/schema/jsonschema"
	"github.com/meshka/meshka/schema/protobuf"
)

// Types are the schema types meshka serves (GET /schemas/types).
func Types() []schema.Type { return []schema.Type{schema.Avro, schema.JSON, schema.Protobuf} }

// Parse compiles text as a schema of type t; refs are its references'
// transitive closure, dependencies first.
func Parse(t schema.Type, text string, refs []schema.Reference) (schema.Schema, error) {
	switch t {
	case schema.Avro, "":
		return avro.Parse(text, refs)
	case schema.JSON:
		return jsonschema.Parse(text, refs)
	case schema.Protobuf:
		return protobuf.Parse(text, refs)
	}
	return nil, fmt.Errorf("unknown schema type %q", t)
}
