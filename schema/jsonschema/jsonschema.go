// Package jsonschema compiles JSON Schemas (drafts 4 to 2020-12, 2020-12
// when $schema is absent), validates JSON documents against them over
// github.com/santhosh-tekuri/jsonschema/v6, and checks compatibility by
// meshka's own rules (compat.go).
package jsonschema

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"strings"

	sjson "github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/meshka/meshka/schema"
)

// Schema is a compiled JSON Schema.
type Schema struct {
	s         *sjson.Schema
	canonical string
	doc       any            // the schema as decoded JSON, for compatibility
	refs      map[string]any // referenced documents by reference name
}

var _ schema.Schema = (*Schema)(nil)

// base is where references with relative names live: "address.json" is
// mem:///address.json, so a $ref "address.json" from the schema (at
// mem:///schema.json) finds it.
const base = "mem:///"

// Parse compiles text. refs are the documents its $refs name, by the name
// each reference gives (a URL, absolute or relative). Nothing is ever read
// from the network or the file system: a $ref to anything else than the
// schema itself, the drafts' metaschemas and refs fails the compilation.
func Parse(text string, refs []schema.Reference) (*Schema, error) {
	canonical, err := schema.NormalizeJSON(text)
	if err != nil {
		return nil, fmt.Errorf("json schema: %w", err)
	}
	doc, err := sjson.UnmarshalJSON(strings.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("json schema: %w", err)
	}
	c := sjson.NewCompiler()
	c.DefaultDraft(sjson.Draft2020)
	l := loader{}
	c.UseLoader(l)
	s := &Schema{canonical: canonical, doc: doc, refs: map[string]any{}}
	used := map[string]bool{}
	for _, r := range refs {
		rdoc, err := sjson.UnmarshalJSON(strings.NewReader(r.Schema))
		if err != nil {
			return nil, fmt.Errorf("json schema: reference %q: %w", r.Name, err)
		}
		if err := c.AddResource(refURL(r.Name), rdoc); err != nil {
			return nil, fmt.Errorf("json schema: reference %q: %w", r.Name, err)
		}
		l[r.Name] = rdoc
		used[refURL(r.Name)] = true
		s.refs[r.Name] = rdoc
	}
	main := base + "schema.json"
	for i := 1; used[main]; i++ {
		main = fmt.Sprintf("%sschema-%d.json", base, i)
	}
	if err := c.AddResource(main, doc); err != nil {
		return nil, fmt.Errorf("json schema: %w", err)
	}
	if s.s, err = c.Compile(main); err != nil {
		return nil, fmt.Errorf("json schema: %w", err)
	}
	return s, nil
}

func refURL(name string) string {
	if u, err := url.Parse(name); err == nil && u.IsAbs() {
		return name
	}
	return base + strings.TrimPrefix(name, "/")
}

// loader serves a $ref that resolved against a base other than mem:///
// (the schema's own $id, say https://example.com/order.json referring to
// "customer.json") from the reference whose name ends its path.
type loader map[string]any

func (l loader) Load(u string) (any, error) {
	if doc, ok := l[u]; ok {
		return doc, nil
	}
	for name, doc := range l {
		if strings.HasSuffix(u, "/"+strings.TrimPrefix(name, "/")) {
			return doc, nil
		}
	}
	return nil, errors.New("not one of the schema's references")
}

// Type is schema.JSON.
func (*Schema) Type() schema.Type { return schema.JSON }

// Canonical is the schema's JSON normalized (keys sorted, no spaces).
func (s *Schema) Canonical() string { return s.canonical }

// Normalized is the canonical JSON.
func (s *Schema) Normalized() string { return s.canonical }

// Validate checks that payload is one JSON document the schema accepts;
// the error lists each failing keyword with its instance location.
func (s *Schema) Validate(payload []byte, _ []int) error {
	v, err := sjson.UnmarshalJSON(bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("json payload: not one JSON document: %w", err)
	}
	if err := s.s.Validate(v); err != nil {
		return fmt.Errorf("json payload: %w", err)
	}
	return nil
}
