package jsonschema

import (
	"encoding/json"
	"fmt"
	"math/big"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// The comparisons of one keyword family each: the reader's object ro
// against the writer's wo at one instance location.

func typeSet(o map[string]any) []string {
	switch t := o["type"].(type) {
	case string:
		return []string{t}
	case []any:
		var out []string
		for _, v := range t {
			if s, ok := v.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func (c *checker) types(path string, ro, wo map[string]any) {
	rt := typeSet(ro)
	if rt == nil {
		return
	}
	wt := typeSet(wo)
	if wt == nil {
		wt = valueTypes(wo)
	}
	if wt == nil {
		c.fail(path, "the type was narrowed from any to %s", strings.Join(rt, ", "))
		return
	}
	for _, t := range wt {
		if !slices.Contains(rt, t) && !(t == "integer" && slices.Contains(rt, "number")) {
			c.fail(path, "the type was narrowed: %s is no longer accepted (new: %s)", t, strings.Join(rt, ", "))
		}
	}
}

// valueTypes are the types of an enum's or a const's values.
func valueTypes(o map[string]any) []string {
	vals, ok := enumValues(o)
	if !ok {
		return nil
	}
	var out []string
	for _, v := range vals {
		t := jsonType(v)
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

func jsonType(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	case json.Number:
		if r, ok := new(big.Rat).SetString(string(v)); ok && r.IsInt() {
			return "integer"
		}
	}
	return "number"
}

func enumValues(o map[string]any) ([]any, bool) {
	if v, ok := o["const"]; ok {
		return []any{v}, true
	}
	vals, ok := o["enum"].([]any)
	return vals, ok
}

func (c *checker) enums(path string, ro, wo map[string]any) {
	rv, ok := enumValues(ro)
	if !ok {
		return
	}
	wv, ok := enumValues(wo)
	if !ok {
		c.fail(path, "an enum or const was added")
		return
	}
	for _, v := range wv {
		if !slices.ContainsFunc(rv, func(r any) bool { return equalJSON(r, v) }) {
			c.fail(path, "the enum value %s was removed", encode(v))
		}
	}
}

func (c *checker) numbers(path string, ro, wo map[string]any) {
	c.bound(path, "minimum", ro, wo, "minimum", "exclusiveMinimum", 1)
	c.bound(path, "maximum", ro, wo, "maximum", "exclusiveMaximum", -1)
	if rm := number(ro["multipleOf"]); rm != nil {
		wm := number(wo["multipleOf"])
		if wm == nil || !new(big.Rat).Quo(wm, rm).IsInt() {
			c.fail(path, "multipleOf %s was added or changed", rm.RatString())
		}
	}
}

// bound checks a lower (sign 1) or upper (sign -1) bound: the reader's must
// be no tighter than the writer's. Draft 4's boolean exclusiveMinimum is read
// as making minimum exclusive.
func (c *checker) bound(path, what string, ro, wo map[string]any, inclusive, exclusive string, sign int) {
	rv, rx := limit(ro, inclusive, exclusive, sign)
	if rv == nil {
		return
	}
	wv, wx := limit(wo, inclusive, exclusive, sign)
	cmp := 0
	if wv != nil {
		cmp = wv.Cmp(rv) * sign
	}
	if wv == nil || cmp < 0 || (cmp == 0 && rx && !wx) {
		c.fail(path, "the %s was added or tightened", what)
	}
}

func limit(o map[string]any, inclusive, exclusive string, sign int) (*big.Rat, bool) {
	in, ex := number(o[inclusive]), number(o[exclusive])
	if b, ok := o[exclusive].(bool); ok && b && in != nil {
		return in, true
	}
	switch {
	case ex != nil && (in == nil || ex.Cmp(in)*sign >= 0):
		return ex, true
	case in != nil:
		return in, false
	}
	return nil, false
}

func number(v any) *big.Rat {
	n, ok := v.(json.Number)
	if !ok {
		return nil
	}
	r, ok := new(big.Rat).SetString(string(n))
	if !ok {
		return nil
	}
	return r
}

// atLeast checks a lower limit on a size (minLength, minItems,
// minProperties), atMost an upper one.
func (c *checker) atLeast(path, k string, ro, wo map[string]any) {
	if r := number(ro[k]); r != nil && r.Sign() > 0 {
		if w := number(wo[k]); w == nil || w.Cmp(r) < 0 {
			c.fail(path, "%s was added or raised to %s", k, r.RatString())
		}
	}
}

func (c *checker) atMost(path, k string, ro, wo map[string]any) {
	if r := number(ro[k]); r != nil {
		if w := number(wo[k]); w == nil || w.Cmp(r) > 0 {
			c.fail(path, "%s was added or lowered to %s", k, r.RatString())
		}
	}
}

func (c *checker) strings(path string, ro, wo map[string]any) {
	c.atLeast(path, "minLength", ro, wo)
	c.atMost(path, "maxLength", ro, wo)
	if p, ok := ro["pattern"]; ok && !equalJSON(p, wo["pattern"]) {
		c.fail(path, "the pattern was added or changed")
	}
}

func (c *checker) arrays(path string, ro, wo map[string]any, depth int) {
	c.atLeast(path, "minItems", ro, wo)
	c.atMost(path, "maxItems", ro, wo)
	if u, _ := ro["uniqueItems"].(bool); u {
		if wu, _ := wo["uniqueItems"].(bool); !wu {
			c.fail(path, "uniqueItems was added")
		}
	}
	// Tuples: prefixItems (2020-12) or an array under items (earlier drafts),
	// then items or additionalItems for the rest.
	rpre, ritems := tuple(ro)
	wpre, witems := tuple(wo)
	for i := 0; i < max(len(rpre), len(wpre)); i++ {
		rs, ws := ritems, witems
		if i < len(rpre) {
			rs = rpre[i]
		}
		if i < len(wpre) {
			ws = wpre[i]
		}
		c.check(fmt.Sprintf("%s/%d", path, i), rs, ws, depth+1)
	}
	c.check(path+"/*", ritems, witems, depth+1)
}

func tuple(o map[string]any) ([]any, any) {
	if pre, ok := o["prefixItems"].([]any); ok {
		return pre, orTrue(o["items"])
	}
	if pre, ok := o["items"].([]any); ok {
		return pre, orTrue(o["additionalItems"])
	}
	return nil, orTrue(o["items"])
}

func orTrue(v any) any {
	if v == nil {
		return true
	}
	return v
}

func (c *checker) objects(path string, ro, wo map[string]any, depth int) {
	c.atLeast(path, "minProperties", ro, wo)
	c.atMost(path, "maxProperties", ro, wo)
	rprops, _ := ro["properties"].(map[string]any)
	wprops, _ := wo["properties"].(map[string]any)
	for _, name := range sortedKeys(wprops) {
		p := path + "/" + name
		if rp, ok := rprops[name]; ok {
			c.check(p, rp, wprops[name], depth+1)
			continue
		}
		extra := additional(ro, name)
		if extra == false {
			c.fail(p, "the property was removed from a closed content model")
			continue
		}
		c.check(p, extra, wprops[name], depth+1)
	}
	for _, name := range sortedKeys(rprops) {
		if _, ok := wprops[name]; ok {
			continue
		}
		p := path + "/" + name
		extra := additional(wo, name)
		if extra == false {
			continue // old documents never have it
		}
		sub := checker{r: c.r, w: c.w, seen: c.seen}
		sub.check(p, rprops[name], extra, depth+1)
		if len(sub.reasons) > 0 {
			c.fail(p, "the property was added to an open content model, and the old schema allowed other values under its name")
		}
	}
	if ra, ok := ro["additionalProperties"]; ok {
		c.check(path+"/*", ra, orTrue(wo["additionalProperties"]), depth+1)
	}
	if rp, ok := ro["patternProperties"]; ok && !equalJSON(rp, wo["patternProperties"]) {
		c.fail(path, "patternProperties were added or changed")
	}
	wreq := stringSet(wo["required"])
	for _, name := range stringSet(ro["required"]) {
		if !slices.Contains(wreq, name) {
			c.fail(path+"/"+name, "the property became required")
		}
	}
}

// additional is the schema an object applies to a property it does not
// list: the first patternProperties that matches, else additionalProperties.
func additional(o map[string]any, name string) any {
	pats, _ := o["patternProperties"].(map[string]any)
	for _, p := range sortedKeys(pats) {
		if re, err := regexp.Compile(p); err == nil && re.MatchString(name) {
			return pats[p]
		}
	}
	return orTrue(o["additionalProperties"])
}

func stringSet(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, e := range l {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func encode(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func equalJSON(a, b any) bool { return encode(a) == encode(b) }
