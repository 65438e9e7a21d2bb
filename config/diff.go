package config

import (
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Diff names the keys whose values differ between a and b, as the file
// spells them ("cache.node_max_bytes", "http.routes"): a struct is
// compared key by key, anything else (lists, maps, pointers to sections)
// whole.
func Diff(a, b Config) []string {
	var out []string
	diffValue("", reflect.ValueOf(a), reflect.ValueOf(b), &out)
	return out
}

func diffValue(path string, a, b reflect.Value, out *[]string) {
	if sa, ok := a.Interface().(map[string]Section); ok {
		diffSections(path, sa, b.Interface().(map[string]Section), out)
		return
	}
	if a.Kind() != reflect.Struct || a.Type() == reflect.TypeOf(Duration(0)) {
		if !reflect.DeepEqual(a.Interface(), b.Interface()) {
			*out = append(*out, path)
		}
		return
	}
	t := a.Type()
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
		if path != "" {
			name = path + "." + name
		}
		diffValue(name, a.Field(i), b.Field(i), out)
	}
}

// diffSections names the bindings whose sections differ in what they
// say, not in where the file says it.
func diffSections(path string, a, b map[string]Section, out *[]string) {
	names := map[string]bool{}
	for n := range a {
		names[n] = true
	}
	for n := range b {
		names[n] = true
	}
	var changed []string
	for n := range names {
		x, inA := a[n]
		y, inB := b[n]
		if inA != inB || x.content() != y.content() {
			changed = append(changed, path+"."+n)
		}
	}
	slices.Sort(changed)
	*out = append(*out, changed...)
}

// content is the section's YAML without its positions, to compare two.
func (s Section) content() string {
	if s.node == nil {
		return ""
	}
	b, err := yaml.Marshal(s.node)
	if err != nil {
		return "unmarshalable: " + err.Error()
	}
	return string(b)
}
