package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Error is one problem in a configuration. Line and Column are 1-based
// positions in File; Line is 0 when the value did not come from the file
// (a default or a command-line flag).
type Error struct {
	File         string
	Line, Column int
	Path         string // dotted key path, e.g. "kafka.max_frame_bytes"
	Msg          string
	err          error
}

// Error renders "file:line:col: path: msg", leaving out the parts that are
// unknown.
func (e Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
	}
	if e.Line > 0 {
		if e.File != "" {
			b.WriteByte(':')
		}
		b.WriteString(strconv.Itoa(e.Line))
		if e.Column > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Column))
		}
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap exposes the I/O error behind a failed Load, so callers can test
// for fs.ErrNotExist.
func (e Error) Unwrap() error { return e.err }

// Errors is every problem found in one configuration.
type Errors []Error

// Error lists the problems one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.Is and errors.As look at each problem.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Sorted orders es by position in the file, the problems without one
// (defaults, flags) last, as Load reports them; for a binding that checks
// its section.
func (es Errors) Sorted() Errors { return sortErrors(es) }

// Err returns es as an error, or nil when it is empty; returning an empty
// Errors as an error would make a non-nil error.
func (es Errors) Err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// Load reads and checks the configuration file at path. See Parse.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		msg := err.Error()
		var pe *fs.PathError
		if errors.As(err, &pe) {
			msg = pe.Err.Error()
		}
		return Default(), Errors{{File: path, Msg: "cannot read configuration: " + msg, err: err}}
	}
	return Parse(path, data)
}

// Parse decodes a configuration from data over Default, so keys absent from
// data keep their defaults, then validates it. name is used in error
// messages. Environment references are expanded first. On failure the error
// is an Errors holding every problem found, sorted by position, and the
// returned Config holds whatever could be decoded.
func Parse(name string, data []byte) (Config, error) {
	cfg := Default()
	errs := parse(data, os.LookupEnv, &cfg)
	for i := range errs {
		errs[i].File = name
	}
	for k, s := range cfg.Bindings {
		s.file = name
		cfg.Bindings[k] = s
	}
	return cfg, errs.Err()
}

func parse(data []byte, lookup func(string) (string, bool), cfg *Config) Errors {
	text, cols, envErrs := substituteEnv(data, lookup)
	d := &decoder{cols: cols, pos: map[string]position{}}
	root, docErrs := parseDocument(text)
	errs := append(envErrs, docErrs...)
	if root == nil && len(docErrs) > 0 {
		return sortErrors(errs)
	}
	if root != nil {
		d.decode(root, reflect.ValueOf(cfg).Elem(), "")
	}
	byLine := map[int][]string{}
	for path, p := range d.pos {
		byLine[p.line] = append(byLine[p.line], path)
	}
	for i := range envErrs {
		errs[i].Path = d.pathAt(byLine[errs[i].Line], errs[i].Column)
	}
	errs = append(errs, d.errs...)

	// A value that already failed to decode kept its default, so
	// validating it again would only repeat the complaint.
	failed, around := map[string]bool{}, map[string]bool{}
	for _, e := range errs {
		failed[e.Path] = true
		for p := e.Path; p != ""; p = parent(p) {
			around[p] = true
		}
	}
	for _, ve := range cfg.Validate() {
		if covered(failed, around, ve.Path) {
			continue
		}
		if p, ok := d.pos[ve.Path]; ok {
			ve.Line, ve.Column = p.line, p.col
		}
		errs = append(errs, ve)
	}
	return sortErrors(errs)
}

// pathAt names the value an environment reference sits in: of the values
// starting on its line, the last one starting at or before it.
func (d *decoder) pathAt(onLine []string, col int) string {
	best, bestCol := "", 0
	for _, path := range onLine {
		p := d.pos[path]
		if p.col <= col && (p.col > bestCol || p.col == bestCol && len(path) > len(best)) {
			best, bestCol = path, p.col
		}
	}
	return best
}

// covered reports whether path, a value inside it, or a value containing
// it already has an error. failed holds the errored paths, around those
// paths and all their ancestors.
func covered(failed, around map[string]bool, path string) bool {
	if around[path] {
		return true
	}
	for p := parent(path); p != ""; p = parent(p) {
		if failed[p] {
			return true
		}
	}
	return false
}

// parent strips the last key or index: "a.b[2]" becomes "a.b".
func parent(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// sortErrors orders by position, with problems that have no position in
// the file (defaults, flags) last.
func sortErrors(errs Errors) Errors {
	sort.SliceStable(errs, func(i, j int) bool {
		a, b := errs[i], errs[j]
		if (a.Line == 0) != (b.Line == 0) {
			return b.Line == 0
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	return errs
}

var yamlSyntaxError = regexp.MustCompile(`(?s)^yaml: line (\d+): (.*)$`)

// parseDocument returns the root node of the single YAML document in text,
// or nil for an empty file.
func parseDocument(text []byte) (root *yaml.Node, errs Errors) {
	// The YAML parser is third-party code; a crash in it must not take
	// down `meshka config check`.
	defer func() {
		if r := recover(); r != nil {
			root, errs = nil, Errors{{Msg: fmt.Sprintf("cannot parse YAML: %v", r)}}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(text))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, nil
		}
		return nil, Errors{syntaxError(err)}
	}
	if len(doc.Content) > 0 {
		root = doc.Content[0]
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == io.EOF:
	case err != nil:
		errs = append(errs, syntaxError(err))
	default:
		errs = append(errs, Error{Line: extra.Line, Column: extra.Column,
			Msg: "a configuration file holds a single YAML document; remove the extra \"---\""})
	}
	return root, errs
}

// parserProblems are the messages yaml.v3 raises from its parser rather
// than its scanner. For these it reports a 0-based line, and often the line
// where the enclosing block or flow collection starts rather than the line
// of the problem itself.
var parserProblems = []string{
	"did not find expected <document start>",
	"did not find expected <stream-start>",
	"did not find expected node content",
	"did not find expected '-' indicator",
	"did not find expected key",
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"found undefined tag handle",
	"found duplicate %YAML directive",
	"found duplicate %TAG directive",
	"found incompatible YAML document",
}

func syntaxError(err error) Error {
	m := yamlSyntaxError.FindStringSubmatch(err.Error())
	if m == nil {
		return Error{Msg: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	line, _ := strconv.Atoi(m[1])
	if slices.Contains(parserProblems, m[2]) {
		line++
	}
	return Error{Line: line, Msg: "invalid YAML: " + m[2]}
}
