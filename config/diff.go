package config

import (
	"reflect"
	"strings"
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
