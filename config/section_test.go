package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// lineSection is what a binding might decode its section into.
type lineSection struct {
	Listen         string   `yaml:"listen"`
	MaxConnections int      `yaml:"max_connections"`
	WriteTimeout   Duration `yaml:"write_timeout"`
	Topics         []string `yaml:"topics"`
	TLS            struct {
		Cert string `yaml:"cert"`
	} `yaml:"tls"`
}

func defaultLine() lineSection {
	return lineSection{Listen: "127.0.0.1:7070", MaxConnections: 1024, WriteTimeout: Duration(10 * time.Second)}
}

// decodeErrors is what Decode returned, as Errors.
func decodeErrors(t *testing.T, err error) Errors {
	t.Helper()
	if err == nil {
		return nil
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Decode returned %T, want Errors: %v", err, err)
	}
	return errs
}

// A binding's section is kept for the binding, which decodes it over its
// defaults; an empty one decodes to the defaults.
func TestBindingSections(t *testing.T) {
	cfg, errs := load(t, "bindings:\n  line:\n    listen: 127.0.0.1:0\n    topics: [a, b]\n    tls: {cert: c.pem}\n  quiet:\n  other: {}\n")
	if errs != nil {
		t.Fatalf("unexpected errors:\n%v", errs)
	}
	if len(cfg.Bindings) != 3 {
		t.Fatalf("bindings %v, want line, quiet and other", cfg.Bindings)
	}
	s := cfg.Binding("line")
	if s.Path() != "bindings.line" || s.Empty() {
		t.Fatalf("section at %q, empty %v", s.Path(), s.Empty())
	}
	got := defaultLine()
	if err := s.Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := defaultLine()
	want.Listen, want.Topics, want.TLS.Cert = "127.0.0.1:0", []string{"a", "b"}, "c.pem"
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded %+v, want %+v", got, want)
	}
	for _, name := range []string{"quiet", "other", "absent"} {
		s := cfg.Binding(name)
		got := defaultLine()
		if err := s.Decode(&got); err != nil || !s.Empty() || !reflect.DeepEqual(got, defaultLine()) {
			t.Errorf("%s: Decode = %v, empty %v, got %+v; want the defaults", name, err, s.Empty(), got)
		}
	}
	if err := s.Decode(got); err == nil {
		t.Error("Decode into a struct, not a pointer, succeeded")
	}
}

// Decoding a section is as strict as meshka's own: every unknown key,
// duplicate and mistyped value is reported with the file, its line and
// column and its path under bindings.<name>.
func TestBindingSectionDecodeErrors(t *testing.T) {
	const file = "bindings:\n" +
		"  line:\n" +
		"    listen: 127.0.0.1:0\n" +
		"    max_conections: 5\n" +
		"    write_timeout: 10\n" +
		"    topics: a\n" +
		"    tls:\n" +
		"      cert: [x]\n" +
		"      key: k.pem\n" +
		"    listen: again\n" +
		"    max_connections: 1.5\n"
	cfg, errs := load(t, file)
	if errs != nil {
		t.Fatalf("the file itself has no error, got:\n%v", errs)
	}
	s := cfg.Binding("line")
	got := defaultLine()
	derrs := decodeErrors(t, s.Decode(&got))
	checkErrors(t, derrs, []wantErr{
		{4, 5, "bindings.line.max_conections", `unknown key "max_conections" (did you mean "max_connections"?)`},
		{5, 20, "bindings.line.write_timeout", "duration 10 has no unit"},
		{6, 13, "bindings.line.topics", `expected a list, got "a"`},
		{8, 13, "bindings.line.tls.cert", "expected a string, got a list"},
		{9, 7, "bindings.line.tls.key", `unknown key "key" (known keys: cert)`},
		{10, 5, "bindings.line.listen", `duplicate key "listen" (first set at line 3)`},
		{11, 22, "bindings.line.max_connections", "expected an integer, got 1.5"},
	})
	for _, e := range derrs {
		if !strings.HasSuffix(e.File, "meshka.yaml") {
			t.Errorf("error %q names file %q", e, e.File)
		}
	}
	if got.Listen != "127.0.0.1:0" || got.MaxConnections != 1024 {
		t.Errorf("what could be decoded: %+v", got)
	}
}

// A section must be a mapping or empty, which Load checks; so must
// bindings itself.
func TestBindingSectionShape(t *testing.T) {
	tests := []struct {
		name, content string
		want          []wantErr
	}{
		{"list", "bindings:\n  line: [a]\n", []wantErr{{2, 9, "bindings.line", "a binding's section must be a mapping (or empty), got a list"}}},
		{"scalar", "bindings:\n  line: on\n", []wantErr{{2, 9, "bindings.line", `must be a mapping (or empty), got "on"`}}},
		{"bindings a list", "bindings: [line]\n", []wantErr{{1, 11, "bindings", "expected a mapping of binding names to their sections, got a list"}}},
		{"empty name", "bindings:\n  \"\": {}\n", []wantErr{{2, 3, "bindings.", "a binding name must not be empty"}}},
		{"duplicate", "bindings:\n  line: {}\n  line: {}\n", []wantErr{{3, 3, "bindings.line", `duplicate key "line" (first set at line 2)`}}},
		{"unknown top-level key", "binding:\n  line: {}\n", []wantErr{{1, 1, "binding", `(did you mean "bindings"?)`}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := load(t, tc.content)
			checkErrors(t, errs, tc.want)
		})
	}
	c := Default()
	c.Bindings = map[string]Section{"": {}}
	if errs := c.Validate(); len(errs) != 1 || errs[0].Path != "bindings" {
		t.Errorf("Validate of an empty binding name: %v", errs)
	}
}

// Environment references expand in a binding's section as anywhere, and
// its errors' columns are the file's, not the expanded text's.
func TestBindingSectionEnvironment(t *testing.T) {
	t.Setenv("LINE_HOST", "127.0.0.1")
	t.Setenv("LINE_MAX", "many")
	cfg, errs := load(t, "bindings:\n  line:\n    listen: ${LINE_HOST}:${LINE_PORT:-7070}\n    write_timeout: ${LINE_WT:-5s}\n    max_connections: ${LINE_MAX}\n    tls: {cert: ${LINE_HOST}, key: x}\n")
	if errs != nil {
		t.Fatalf("unexpected errors:\n%v", errs)
	}
	got := defaultLine()
	derrs := decodeErrors(t, cfg.Binding("line").Decode(&got))
	checkErrors(t, derrs, []wantErr{
		{5, 22, "bindings.line.max_connections", `expected an integer, got "many"`},
		{6, 31, "bindings.line.tls.key", `unknown key "key"`},
	})
	if got.Listen != "127.0.0.1:7070" || got.WriteTimeout.D() != 5*time.Second || got.TLS.Cert != "127.0.0.1" {
		t.Errorf("decoded %+v", got)
	}

	_, errs = load(t, "bindings:\n  line:\n    listen: ${LINE_UNSET}\n")
	checkErrors(t, errs, []wantErr{{3, 13, "bindings.line", "environment variable LINE_UNSET is not set"}})
}

// Errorf points at a value the binding found wrong, or at the section's
// key, or nowhere for a value the file leaves at its default.
func TestBindingSectionErrorf(t *testing.T) {
	t.Setenv("LINE_HOST", "127.0.0.1")
	cfg, errs := load(t, "bindings:\n  line:\n    listen: ${LINE_HOST}:x\n    tls:\n      cert: c\n")
	if errs != nil {
		t.Fatal(errs)
	}
	s := cfg.Binding("line")
	tests := []struct {
		key       string
		line, col int
		path      string
	}{
		{"listen", 3, 13, "bindings.line.listen"},
		{"tls.cert", 5, 13, "bindings.line.tls.cert"},
		{"", 2, 3, "bindings.line"},
		{"max_connections", 0, 0, "bindings.line.max_connections"},
		{"tls.key", 0, 0, "bindings.line.tls.key"},
	}
	for _, tc := range tests {
		e := s.Errorf(tc.key, "bad %d", 1)
		if e.Line != tc.line || e.Column != tc.col || e.Path != tc.path || e.Msg != "bad 1" || !strings.HasSuffix(e.File, "meshka.yaml") {
			t.Errorf("Errorf(%q) = %d:%d %s %q (%s), want %d:%d %s", tc.key, e.Line, e.Column, e.Path, e.Msg, e.File, tc.line, tc.col, tc.path)
		}
	}
}

// A section built in code decodes as one read from a file, with errors
// that have no position.
func TestNewSection(t *testing.T) {
	s, err := NewSection(map[string]any{"listen": "127.0.0.1:0", "max_connections": "x"})
	if err != nil {
		t.Fatal(err)
	}
	c := Default()
	c.Bindings = map[string]Section{"line": s}
	got := defaultLine()
	derrs := decodeErrors(t, c.Binding("line").Decode(&got))
	checkErrors(t, derrs, []wantErr{{0, 0, "bindings.line.max_connections", `expected an integer, got "x"`}})
	if got.Listen != "127.0.0.1:0" {
		t.Errorf("decoded %+v", got)
	}
	if s, err := NewSection(nil); err != nil || !s.Empty() {
		t.Errorf("NewSection(nil) = %v, %v", s, err)
	}
	if _, err := NewSection([]string{"a"}); err == nil {
		t.Error("NewSection of a list succeeded")
	}
}

// Marshalled and loaded again, a configuration keeps its bindings.
func TestBindingSectionsRoundTrip(t *testing.T) {
	cfg, errs := load(t, "bindings:\n  line:\n    listen: 127.0.0.1:0\n    topics: [a]\n  quiet:\n")
	if errs != nil {
		t.Fatal(errs)
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	again, errs := load(t, string(out))
	if errs != nil {
		t.Fatalf("marshalled config does not load:\n%v\n%s", errs, out)
	}
	for _, name := range []string{"line", "quiet"} {
		var a, b lineSection
		if err := cfg.Binding(name).Decode(&a); err != nil {
			t.Fatal(err)
		}
		if err := again.Binding(name).Decode(&b); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s: %+v after the round trip, %+v before\n%s", name, b, a, out)
		}
	}
	if len(again.Bindings) != 2 {
		t.Errorf("bindings after the round trip: %v\n%s", again.Bindings, out)
	}
}
