package config

import (
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// position is a 1-based line and column in the original file.
type position struct{ line, col int }

// decoder walks a yaml.Node tree against a Go value using yaml struct tags.
// Unlike yaml.v3's own decoder it keeps going after an error, so one run
// reports every problem, and it remembers where each value came from so
// validation errors can point into the file.
type decoder struct {
	cols columnMap
	errs Errors
	pos  map[string]position // by dotted path, e.g. "cache.bootstrap[1]"
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// defaulter is an optional section whose keys have defaults: a section
// present in the file starts from them.
type defaulter interface{ defaults() }

func (d *decoder) at(n *yaml.Node) position {
	return position{n.Line, d.cols.orig(n.Line, n.Column)}
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	p := d.at(n)
	d.errs = append(d.errs, Error{Line: p.line, Column: p.col, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// decode stores n into v. A null value leaves v as it was, so "kafka:" with
// nothing under it, or "listen:" with no value, keeps the defaults.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if path != "" {
		d.pos[path] = d.at(n)
	}
	// Aliases cannot loop forever here: each step into a node also steps
	// into a field or element type, and the Go types are finite.
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	if n.Kind == yaml.AliasNode {
		d.fail(n, path, "alias does not resolve to a value")
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return
	}
	if v.Type() == sectionMapType {
		d.sections(n, v, path)
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(unmarshalerType) {
		if err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			d.fail(n, path, "%s", err.Error())
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.mapping(n, v, path)
	case reflect.Slice:
		d.sequence(n, v, path)
	case reflect.Pointer:
		if v.Type().Elem().Kind() != reflect.Struct {
			d.yamlDecode(n, v, path)
			return
		}
		// An optional section: present (even as {}) is on, absent or
		// null is off, and what it holds is decoded as strictly as any.
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
			if d, ok := v.Interface().(defaulter); ok {
				d.defaults()
			}
		}
		d.mapping(n, v.Elem(), path)
	case reflect.String, reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		d.scalar(n, v, path)
	default:
		d.yamlDecode(n, v, path)
	}
}

// yamlDecode leaves a value to yaml.v3: maps and interfaces are rare in
// configuration, and yaml.v3 handles them at the cost of stopping at
// their first error.
func (d *decoder) yamlDecode(n *yaml.Node, v reflect.Value, path string) {
	if err := n.Decode(v.Addr().Interface()); err != nil {
		d.fail(n, path, "%s", cleanYAMLError(err))
	}
}

type field struct {
	name  string
	index int
}

// fields lists the keys a struct accepts, in declaration order so that
// suggestions are deterministic.
func fields(t reflect.Type) []field {
	var fs []field
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fs = append(fs, field{name, i})
	}
	return fs
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping, got %s", describe(n))
		return
	}
	fs := fields(v.Type())
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		if key.Kind != yaml.ScalarNode {
			d.fail(key, path, "keys must be plain strings, got %s", describe(key))
			continue
		}
		name := key.Value
		sub := join(path, name)
		if key.ShortTag() == "!!merge" {
			d.fail(key, path, "merge keys (<<) are not supported; write the keys out")
			continue
		}
		if line, dup := seen[name]; dup {
			d.fail(key, sub, "duplicate key %q (first set at line %d)", name, line)
			continue
		}
		seen[name] = key.Line
		idx := -1
		for _, f := range fs {
			if f.name == name {
				idx = f.index
				break
			}
		}
		if idx < 0 {
			d.fail(key, sub, "%s", unknownKey(name, fs))
			continue
		}
		d.decode(val, v.Field(idx), sub)
	}
}

func unknownKey(name string, fs []field) string {
	best, bestDist := "", 3
	for _, f := range fs {
		if dist := editDistance(strings.ToLower(name), f.name); dist < bestDist {
			best, bestDist = f.name, dist
		}
	}
	if best != "" {
		return fmt.Sprintf("unknown key %q (did you mean %q?)", name, best)
	}
	known := make([]string, len(fs))
	for i, f := range fs {
		known[i] = f.name
	}
	return fmt.Sprintf("unknown key %q (known keys: %s)", name, strings.Join(known, ", "))
}

func (d *decoder) sequence(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, path, "expected a list, got %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, e := range n.Content {
		// An element whose keys have defaults starts from them.
		if el, ok := s.Index(i).Addr().Interface().(defaulter); ok {
			el.defaults()
		}
		d.decode(e, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
	}
	v.Set(s)
}

var integerText = regexp.MustCompile(`^[-+]?[0-9_]+$`)

// scalar decodes basic kinds itself because yaml.v3 is too lenient for a
// configuration file: it silently truncates 1.5 into an int.
func (d *decoder) scalar(n *yaml.Node, v reflect.Value, path string) {
	want := map[reflect.Kind]string{reflect.String: "a string", reflect.Bool: "true or false",
		reflect.Float32: "a number", reflect.Float64: "a number"}[v.Kind()]
	if want == "" {
		want = "an integer"
	}
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "expected %s, got %s", want, describe(n))
		return
	}
	tag := n.ShortTag()
	switch v.Kind() {
	case reflect.String:
		// Any scalar is fine as text: "client_id: 42" means "42".
		v.SetString(n.Value)
	case reflect.Bool:
		var b bool
		if tag != "!!bool" || n.Decode(&b) != nil {
			d.fail(n, path, "expected %s, got %s", want, describe(n))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		// Shifting the int64 limits right keeps their sign, giving the
		// limits of the narrower type. A key's own range, when it has one,
		// is what the operator must stay within, so that is what a number
		// too large for the type is told.
		lo, hi := int64(math.MinInt64)>>(64-v.Type().Bits()), int64(math.MaxInt64)>>(64-v.Type().Bits())
		if r, ok := intRanges[path]; ok {
			lo, hi = r.lo, r.hi
		}
		var i int64
		if tag != "!!int" || n.Decode(&i) != nil {
			d.fail(n, path, "%s", notInteger(n, lo, hi))
			return
		}
		if v.OverflowInt(i) {
			d.fail(n, path, "%s", outOfRange(lo, hi, strconv.FormatInt(i, 10)))
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		var u uint64
		if tag != "!!int" || n.Decode(&u) != nil || v.OverflowUint(u) {
			d.fail(n, path, "must be an integer between 0 and %d, got %s", uint64(math.MaxUint64)>>(64-v.Type().Bits()), n.Value)
			return
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		var f float64
		if (tag != "!!int" && tag != "!!float") || n.Decode(&f) != nil || v.OverflowFloat(f) {
			d.fail(n, path, "expected %s, got %s", want, describe(n))
			return
		}
		v.SetFloat(f)
	}
}

func notInteger(n *yaml.Node, lo, hi int64) string {
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0 && integerText.MatchString(n.Value) {
		return outOfRange(lo, hi, n.Value)
	}
	return fmt.Sprintf("expected an integer, got %s", describe(n))
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.DocumentNode:
		return "a document"
	case yaml.AliasNode:
		return "an alias"
	}
	if n.ShortTag() == "!!str" {
		return strconv.Quote(n.Value)
	}
	return n.Value
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// editDistance is the Levenshtein distance, used to suggest the key an
// operator probably meant.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	row := make([]int, len(rb)+1)
	for j := range row {
		row[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		diag := row[0]
		row[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			diag, row[j] = row[j], min(row[j]+1, row[j-1]+1, diag+cost)
		}
	}
	return row[len(rb)]
}

var yamlLinePrefix = regexp.MustCompile(`^(?:yaml: )?(?:unmarshal errors:\s*)?(?:line \d+: )?`)

func cleanYAMLError(err error) string {
	return yamlLinePrefix.ReplaceAllString(err.Error(), "")
}
