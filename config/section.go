package config

import (
	"fmt"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// Section is a part of the configuration meshka does not decode itself: a
// binding's section under `bindings:`. It is kept as parsed, with where it
// came from, so that the binding decodes it into a struct of its own as
// strictly as meshka decodes the rest: unknown keys and values of the wrong
// type are errors naming the file, line, column and key path. A Section is
// a value that nothing changes after loading; it is safe for concurrent
// use.
type Section struct {
	file string
	path string     // "bindings.<name>"
	key  position   // the section's key in the file; zero when not from a file
	node *yaml.Node // a mapping, or nil for an empty section
	cols columnMap  // the file's, to report columns as written
}

// NewSection is a section built in code rather than read from a file: v is
// what yaml.v3 would marshal, a struct with yaml tags or a map; nil is an
// empty section. Errors decoding it have no line or column.
func NewSection(v any) (Section, error) {
	if v == nil {
		return Section{}, nil
	}
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		return Section{}, fmt.Errorf("config: section: %w", err)
	}
	if n.Kind != yaml.MappingNode {
		return Section{}, fmt.Errorf("config: section: expected a mapping, got %s", describe(&n))
	}
	return Section{node: &n}, nil
}

// Binding is the section of the binding name, to be decoded by that
// binding: its errors name bindings.<name>. The zero Section when the
// configuration names no such binding.
func (c *Config) Binding(name string) Section {
	s := c.Bindings[name]
	s.path = join("bindings", name)
	return s
}

// Path is where the section sits in the configuration, "bindings.<name>".
func (s Section) Path() string { return s.path }

// Empty reports whether the section has no keys.
func (s Section) Empty() bool { return s.node == nil || len(s.node.Content) == 0 }

// Decode stores the section into v, a pointer to a struct whose fields
// carry yaml tags, over the values v already holds, which are therefore
// the defaults. It is as strict as meshka's own decoding: a key v has no
// field for, a duplicate key, or a value of the wrong type is an error,
// and every one is reported, as Errors. Duration and Size fields take
// meshka's formats; environment references were expanded when the file
// was loaded.
func (s Section) Decode(v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("config: %s: Decode needs a non-nil pointer, got %T", s.path, v)
	}
	if s.node == nil {
		return nil
	}
	d := &decoder{cols: s.cols, pos: map[string]position{}}
	d.decode(s.node, rv.Elem(), s.path)
	for i := range d.errs {
		d.errs[i].File = s.file
	}
	return sortErrors(d.errs).Err()
}

// Errorf is a problem with the value of key in the section, for a binding
// that checks what it decoded: key is a field's yaml name, dotted for a
// nested one ("tls.cert"); "" is the section itself. The error points at
// the value in the file, or has no line when the file leaves it at its
// default.
func (s Section) Errorf(key, format string, args ...any) Error {
	e := Error{File: s.file, Path: s.path, Msg: fmt.Sprintf(format, args...)}
	if key == "" {
		e.Line, e.Column = s.key.line, s.key.col
		return e
	}
	e.Path = join(s.path, key)
	n := s.node
	for _, k := range strings.Split(key, ".") {
		n = valueOf(n, k)
	}
	if n != nil && n.Line > 0 {
		e.Line, e.Column = n.Line, s.cols.orig(n.Line, n.Column)
	}
	return e
}

// valueOf is the value of key in the mapping n, or nil.
func valueOf(n *yaml.Node, key string) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// MarshalYAML writes the section as it was read, so a configuration
// marshalled by tooling keeps its bindings.
func (s Section) MarshalYAML() (any, error) {
	if s.node == nil {
		return map[string]any{}, nil
	}
	return s.node, nil
}

var sectionMapType = reflect.TypeFor[map[string]Section]()

// sections decodes `bindings:`, a mapping of names to sections, keeping
// each section as its node. A section must be a mapping or empty; what is
// inside it is its binding's to judge.
func (d *decoder) sections(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping of binding names to their sections, got %s", describe(n))
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		if key.Kind != yaml.ScalarNode || key.ShortTag() == "!!merge" {
			d.fail(key, path, "binding names must be plain strings, got %s", describe(key))
			continue
		}
		name := key.Value
		sub := join(path, name)
		if line, dup := seen[name]; dup {
			d.fail(key, sub, "duplicate key %q (first set at line %d)", name, line)
			continue
		}
		seen[name] = key.Line
		if name == "" {
			d.fail(key, sub, "a binding name must not be empty")
			continue
		}
		d.pos[sub] = d.at(val)
		for j := 0; val.Kind == yaml.AliasNode && val.Alias != nil && j < 100; j++ {
			val = val.Alias
		}
		s := Section{path: sub, key: d.at(key), cols: d.cols}
		switch {
		case val.Kind == yaml.ScalarNode && val.ShortTag() == "!!null":
		case val.Kind == yaml.MappingNode:
			s.node = val
		default:
			d.fail(val, sub, "a binding's section must be a mapping (or empty), got %s", describe(val))
			continue
		}
		m.SetMapIndex(reflect.ValueOf(name), reflect.ValueOf(s))
	}
	v.Set(m)
}
