package jsonschema

import (
	"fmt"
	"slices"
	"strings"

	"github.com/meshka/meshka/schema"
)

// maxDepth bounds how deep the check walks nested and recursive schemas.
const maxDepth = 64

// ReadsFrom checks that every document writer accepts, s accepts too, as
// far as these rules can tell (docs/ARCHITECTURE.md lists them). Where a
// keyword is not understood well enough, the check errs on the side of
// reporting an incompatibility, never of missing one; "format" is not
// compared, as validation does not assert it.
func (s *Schema) ReadsFrom(writer schema.Schema) []string {
	w, ok := writer.(*Schema)
	if !ok {
		return []string{fmt.Sprintf("the writer is a %s schema", writer.Type())}
	}
	c := checker{r: s, w: w, seen: map[string]bool{}}
	c.check("", s.doc, w.doc, 0)
	return c.reasons
}

type checker struct {
	r, w    *Schema
	seen    map[string]bool // pairs of $refs already being compared
	reasons []string
}

func (c *checker) fail(path, format string, args ...any) {
	if path == "" {
		path = "/"
	}
	c.reasons = append(c.reasons, path+": "+fmt.Sprintf(format, args...))
}

// check compares the reader's subschema r with the writer's w at the
// instance location path.
func (c *checker) check(path string, r, w any, depth int) {
	if depth > maxDepth {
		c.fail(path, "schemas nest deeper than %d levels, not compared", maxDepth)
		return
	}
	r, rref, rok := c.resolve(c.r, r)
	w, wref, wok := c.resolve(c.w, w)
	if !rok || !wok {
		c.fail(path, "a $ref (%q, %q) is not a JSON pointer into the schema or its references, not compared", rref, wref)
		return
	}
	if rref != "" || wref != "" {
		key := rref + "\x00" + wref
		if c.seen[key] {
			return
		}
		c.seen[key] = true
		defer delete(c.seen, key)
	}
	if w == false {
		return // nothing is written
	}
	if r == false {
		c.fail(path, "the new schema accepts nothing")
		return
	}
	ro, wo := object(r), object(w)
	if len(ro) == 0 {
		return // the reader accepts anything
	}
	if ro == nil || wo == nil {
		c.fail(path, "not a schema")
		return
	}
	if c.combinators(path, ro, wo, depth) {
		return
	}
	c.types(path, ro, wo)
	c.enums(path, ro, wo)
	c.numbers(path, ro, wo)
	c.strings(path, ro, wo)
	c.arrays(path, ro, wo, depth)
	c.objects(path, ro, wo, depth)
	for _, k := range []string{"not", "if", "then", "else", "dependentSchemas", "dependencies", "dependentRequired", "propertyNames", "contains", "unevaluatedProperties", "unevaluatedItems"} {
		if rv, ok := ro[k]; ok && !equalJSON(rv, wo[k]) {
			c.fail(path, "%q was added or changed, which this check does not follow", k)
		}
	}
}

// resolve follows $ref (JSON pointers into the schema, and into its
// references by name), returning the target and the last ref followed.
func (c *checker) resolve(root *Schema, v any) (any, string, bool) {
	var followed string
	for range maxDepth {
		o := object(v)
		ref, ok := o["$ref"].(string)
		if !ok {
			return v, followed, true
		}
		followed = ref
		doc, ptr, _ := strings.Cut(ref, "#")
		target := root.doc
		if doc != "" {
			target = nil
			for name, d := range root.refs {
				if doc == name || strings.HasSuffix(doc, "/"+strings.TrimPrefix(name, "/")) {
					target = d
				}
			}
		}
		if v = pointer(target, ptr); v == nil {
			return nil, followed, false
		}
	}
	return nil, followed, false
}

// pointer walks a JSON pointer (without its #) from doc, nil when absent.
func pointer(doc any, ptr string) any {
	if ptr == "" {
		return doc
	}
	if !strings.HasPrefix(ptr, "/") {
		return nil // $anchor names are not followed
	}
	for _, tok := range strings.Split(ptr[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch d := doc.(type) {
		case map[string]any:
			doc = d[tok]
		case []any:
			var i int
			if _, err := fmt.Sscan(tok, &i); err != nil || i < 0 || i >= len(d) {
				return nil
			}
			doc = d[i]
		default:
			return nil
		}
	}
	return doc
}

// object is a schema as an object: true is {}, false and non-schemas nil.
func object(v any) map[string]any {
	switch v := v.(type) {
	case bool:
		if v {
			return map[string]any{}
		}
	case map[string]any:
		return v
	}
	return nil
}

// combinators compares anyOf, oneOf and allOf. It reports true when it has
// compared everything there is.
func (c *checker) combinators(path string, ro, wo map[string]any, depth int) bool {
	for _, k := range []string{"allOf"} {
		if subs, ok := ro[k].([]any); ok {
			for _, sub := range subs {
				c.check(path, sub, without(wo, "allOf"), depth+1)
			}
			ro = without(ro, k)
		}
	}
	rbranches := branches(ro)
	wbranches := branches(wo)
	if rbranches == nil && wbranches == nil {
		return false
	}
	rest := without(ro, "anyOf", "oneOf")
	if wbranches == nil {
		wbranches = []any{wo}
	}
	wrest := without(wo, "anyOf", "oneOf")
	for i, wb := range wbranches {
		wb = merged(wrest, wb)
		if rbranches == nil {
			c.check(path, ro, wb, depth+1)
			continue
		}
		found := false
		for _, rb := range rbranches {
			sub := checker{r: c.r, w: c.w, seen: c.seen}
			sub.check(path, merged(rest, rb), wb, depth+1)
			if len(sub.reasons) == 0 {
				found = true
				break
			}
		}
		if !found {
			c.fail(path, "no branch of the new schema's anyOf/oneOf reads what the old schema's branch %d allows", i)
		}
	}
	return true
}

func branches(o map[string]any) []any {
	var out []any
	for _, k := range []string{"anyOf", "oneOf"} {
		if subs, ok := o[k].([]any); ok {
			out = append(out, subs...)
		}
	}
	return out
}

// merged is a branch with the keywords beside its combinator: what one
// branch of a oneOf accepts.
func merged(rest map[string]any, branch any) any {
	b := object(branch)
	if b == nil || len(rest) == 0 {
		return branch
	}
	m := map[string]any{}
	for k, v := range rest {
		m[k] = v
	}
	for k, v := range b {
		m[k] = v
	}
	return m
}

func without(o map[string]any, keys ...string) map[string]any {
	m := make(map[string]any, len(o))
	for k, v := range o {
		if !slices.Contains(keys, k) {
			m[k] = v
		}
	}
	return m
}
