package config

import (
	"bytes"
	"fmt"
	"strings"
)

// substitution records where one replacement landed on its line, so that
// positions the YAML parser reports in the substituted text can be mapped
// back to columns in the file the operator edits.
type substitution struct {
	newStart, newEnd   int // columns in the substituted text, end exclusive
	origStart, origEnd int // columns in the original text, end exclusive
}

// columnMap maps substituted-text positions to original positions. Lines
// never change because substituted values may not contain newlines.
type columnMap map[int][]substitution

func (m columnMap) orig(line, col int) int {
	delta := 0
	for _, s := range m[line] {
		if col < s.newStart {
			break
		}
		if col < s.newEnd {
			return s.origStart
		}
		delta = s.origEnd - s.newEnd
	}
	return col + delta
}

// substituteEnv expands ${NAME}, ${NAME:-default} and $$ in src. Comments are
// left alone so that documentation like "# set ${TOKEN}" does not demand the
// variable. Errors are reported at the original line and column; the
// failed reference is replaced by nothing so decoding can go on and find
// further problems.
func substituteEnv(src []byte, lookup func(string) (string, bool)) ([]byte, columnMap, Errors) {
	var (
		out  bytes.Buffer
		cols = columnMap{}
		errs Errors
		line = 1
		col  = 1 // original column of src[i]
		ncol = 1 // column of the next byte written to out
		sc   commentScanner
	)
	out.Grow(len(src))
	emit := func(b []byte) {
		out.Write(b)
		ncol += runeCount(b)
	}
	for i := 0; i < len(src); {
		b := src[i]
		if b == '\n' {
			out.WriteByte(b)
			line, col, ncol = line+1, 1, 1
			sc = commentScanner{}
			i++
			continue
		}
		if b != '$' || sc.inComment || i+1 >= len(src) || (src[i+1] != '$' && src[i+1] != '{') {
			sc.next(b)
			size := utf8Len(src[i:])
			emit(src[i : i+size])
			if b&0xC0 != 0x80 {
				col++
			}
			i += size
			continue
		}
		sc.next(b)
		if src[i+1] == '$' {
			cols[line] = append(cols[line], substitution{ncol, ncol + 1, col, col + 2})
			emit([]byte{'$'})
			i, col = i+2, col+2
			continue
		}
		eol := bytes.IndexByte(src[i:], '\n')
		if eol < 0 {
			eol = len(src) - i
		}
		closing := bytes.IndexByte(src[i:i+eol], '}')
		if closing < 0 {
			errs = append(errs, Error{Line: line, Column: col, Msg: "unterminated \"${\": missing \"}\" on the same line"})
			emit([]byte{'$'})
			i, col = i+1, col+1
			continue
		}
		ref := src[i : i+closing+1]
		if routeExpression(string(ref[2 : len(ref)-1])) {
			// ${params.x} and ${header.x} are the HTTP routes' own,
			// resolved per request: left as written.
			for _, c := range ref {
				sc.next(c)
			}
			emit(ref)
			i, col = i+len(ref), col+runeCount(ref)
			continue
		}
		value, err := expand(string(ref[2:len(ref)-1]), lookup)
		if err != "" {
			errs = append(errs, Error{Line: line, Column: col, Msg: err})
		}
		start := ncol
		sc.next('}')
		emit([]byte(value))
		cols[line] = append(cols[line], substitution{start, ncol, col, col + runeCount(ref)})
		i, col = i+len(ref), col+runeCount(ref)
	}
	return out.Bytes(), cols, errs
}

// expand resolves the inside of one ${...} reference. It returns the empty
// string and a message when the reference cannot be resolved.
func expand(expr string, lookup func(string) (string, bool)) (string, string) {
	name, def, hasDefault := strings.Cut(expr, ":-")
	if !validEnvName(name) {
		return "", fmt.Sprintf("invalid environment variable reference \"${%s}\": expected ${NAME} or ${NAME:-default}", expr)
	}
	v, ok := lookup(name)
	if hasDefault && v == "" {
		v, ok = def, true
	}
	if !ok {
		return "", fmt.Sprintf("environment variable %s is not set", name)
	}
	if strings.ContainsAny(v, "\r\n") {
		return "", fmt.Sprintf("environment variable %s contains a newline, which is not allowed", name)
	}
	return v, ""
}

// routeExpression says whether the inside of a ${...} is an HTTP route's
// substitution (http.routes), not an environment variable.
func routeExpression(expr string) bool {
	return strings.HasPrefix(expr, "params.") || strings.HasPrefix(expr, "header.")
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// commentScanner follows one line closely enough to tell where a YAML
// comment starts: a '#' at line start or after blank space, outside quotes.
// Quotes only open where a YAML scalar can begin, so the apostrophe in
// "name: it's" is not mistaken for one.
type commentScanner struct {
	inComment bool
	quote     byte // '"' or '\'' while inside a quoted scalar
	escaped   bool
	prev      byte // previous byte on the line, 0 at line start
	last      byte // last non-blank byte before the current one
}

func (s *commentScanner) next(b byte) {
	blankBefore := s.prev == 0 || s.prev == ' ' || s.prev == '\t'
	switch {
	case s.inComment:
	case s.quote == '"':
		if s.escaped {
			s.escaped = false
		} else if b == '\\' {
			s.escaped = true
		} else if b == '"' {
			s.quote = 0
		}
	case s.quote == '\'':
		if b == '\'' {
			s.quote = 0
		}
	case b == '#' && blankBefore:
		s.inComment = true
	case b == '"' || b == '\'':
		if blankBefore && (s.last == 0 || strings.IndexByte(":-[{,?", s.last) >= 0) ||
			strings.IndexByte("[{,", s.prev) >= 0 {
			s.quote = b
		}
	}
	s.prev = b
	if b != ' ' && b != '\t' {
		s.last = b
	}
}

func runeCount(b []byte) int {
	n := 0
	for _, c := range b {
		if c&0xC0 != 0x80 {
			n++
		}
	}
	return n
}

// utf8Len returns the length of the byte sequence starting a rune at b[0],
// so multi-byte characters are copied whole.
func utf8Len(b []byte) int {
	n := 1
	for n < len(b) && n < 4 && b[n]&0xC0 == 0x80 {
		n++
	}
	return n
}
