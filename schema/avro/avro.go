// Package avro compiles Avro schemas, validates Avro binary payloads and
// checks schema resolution, over github.com/twmb/avro.
package avro

import (
	"errors"
	"fmt"

	tavro "github.com/twmb/avro"

	"github.com/meshka/meshka/schema"
)

// Schema is a compiled Avro schema.
type Schema struct {
	s         *tavro.Schema
	canonical string
	walk      *walker // nil: Validate decodes with the library (walk.go)
}

var _ schema.Schema = (*Schema)(nil)

// Parse compiles text. refs are the named types it uses from other
// schemas, dependencies first; their names are not needed, Avro finds a
// type by the full name its schema defines.
func Parse(text string, refs []schema.Reference) (*Schema, error) {
	canonical, err := schema.NormalizeJSON(text)
	if err != nil {
		return nil, fmt.Errorf("avro schema: %w", err)
	}
	var cache tavro.SchemaCache
	for _, r := range refs {
		if _, err := cache.Parse(r.Schema); err != nil {
			return nil, fmt.Errorf("avro schema: reference %q: %w", r.Name, err)
		}
	}
	s, err := cache.Parse(text)
	if err != nil {
		return nil, fmt.Errorf("avro schema: %w", err)
	}
	out := &Schema{s: s, canonical: canonical}
	if len(refs) == 0 {
		if w, err := compileWalker(s); err == nil {
			out.walk = w
		}
	}
	return out, nil
}

// Type is schema.Avro.
func (*Schema) Type() schema.Type { return schema.Avro }

// Canonical is the schema's JSON normalized (keys sorted, no spaces). Not
// Avro's Parsing Canonical Form, which drops defaults, docs and aliases:
// two schemas differing in a default are different schemas to a registry.
func (s *Schema) Canonical() string { return s.canonical }

// Normalized is the canonical JSON.
func (s *Schema) Normalized() string { return s.canonical }

// ParsingCanonicalForm is Avro's Parsing Canonical Form, from which Avro's
// fingerprints are computed.
func (s *Schema) ParsingCanonicalForm() string { return string(s.s.Canonical()) }

// Avro is the compiled schema of github.com/twmb/avro, for encoding and
// decoding values (schema/convert). It must not be changed.
func (s *Schema) Avro() *tavro.Schema { return s.s }

// Validate decodes payload as one value of the schema, refusing bytes left
// over after it.
func (s *Schema) Validate(payload []byte, _ []int) error {
	if s.walk != nil {
		rest, err := s.walk.walk(payload, 0)
		if err != nil {
			return fmt.Errorf("avro payload: %w", err)
		}
		if len(rest) > 0 {
			return fmt.Errorf("avro payload: %d bytes after the value", len(rest))
		}
		return nil
	}
	return s.decodeValidate(payload)
}

// decodeValidate is Validate by the library's decoder.
func (s *Schema) decodeValidate(payload []byte) error {
	var v any
	rest, err := s.s.Decode(payload, &v)
	if err != nil {
		var se *tavro.SemanticError
		if errors.As(err, &se) {
			return fmt.Errorf("avro payload: %w", se)
		}
		return fmt.Errorf("avro payload: %w", err)
	}
	if len(rest) > 0 {
		return fmt.Errorf("avro payload: %d bytes after the value", len(rest))
	}
	return nil
}

// ReadsFrom runs Avro's schema resolution of writer into s, the reader.
// It stops at the first incompatibility, which names its field path.
func (s *Schema) ReadsFrom(writer schema.Schema) []string {
	w, ok := writer.(*Schema)
	if !ok {
		return []string{fmt.Sprintf("the writer is a %s schema", writer.Type())}
	}
	if err := tavro.CheckCompatibility(w.s, s.s); err != nil {
		return []string{err.Error()}
	}
	return nil
}
