package avro

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"

	tavro "github.com/twmb/avro"
)

// A walker checks that bytes are one value of a schema by reading through
// them, as a decoder would, without building the value: produce
// validation needs to know that a record is well formed, not what it
// holds, and decoding into Go values cost about 140 allocations per
// kilobyte record. compileWalker builds one for the schemas it can check
// exactly as the library's decoder does: those without logical types
// (whose decoding checks more than the binary form), whose named types are
// all defined in the schema itself, and whose arrays and maps hold items
// that take a byte at least. For the others Validate decodes
// with the library.

// walkDepth bounds nesting in a value, as the library's decoder does.
const walkDepth = 1000

var errWalkDepth = errors.New("nested deeper than 1000 levels")

type walkKind uint8

const (
	wNull walkKind = iota
	wBoolean
	wInt
	wLong
	wFloat
	wDouble
	wBytes
	wString
	wRecord
	wEnum
	wArray
	wMap
	wUnion
	wFixed
)

// walker is one node of a schema; a named type's node is shared by every
// reference to it, so recursive types are walked by following pointers.
type walker struct {
	kind    walkKind
	name    string    // a record field's or a type's, for errors
	fields  []*walker // record
	names   []string  // record field names, for errors
	symbols int       // enum
	size    int       // fixed
	elem    *walker   // array items, map values
	choices []*walker // union branches
}

// errNoWalker says compileWalker cannot check this schema exactly.
var errNoWalker = errors.New("no walker for this schema")

func compileWalker(s *tavro.Schema) (*walker, error) {
	root := s.Root()
	c := &walkCompiler{named: map[string]*walker{}, defs: map[string]*tavro.SchemaNode{}}
	c.collect(root, "")
	return c.node(root, "")
}

type walkCompiler struct {
	named map[string]*walker           // by full name, once compiled (or being compiled)
	defs  map[string]*tavro.SchemaNode // named types' definitions by full name
}

func fullName(n *tavro.SchemaNode, enclosing string) string {
	if strings.Contains(n.Name, ".") {
		return n.Name
	}
	ns := n.Namespace
	if ns == "" {
		ns = enclosing
	}
	if ns == "" {
		return n.Name
	}
	return ns + "." + n.Name
}

// collect finds every named type defined in the tree.
func (c *walkCompiler) collect(n *tavro.SchemaNode, ns string) {
	switch n.Type {
	case "record", "error", "enum", "fixed":
		full := fullName(n, ns)
		c.defs[full] = n
		if i := strings.LastIndexByte(full, '.'); i >= 0 {
			ns = full[:i]
		}
	}
	for i := range n.Fields {
		c.collect(&n.Fields[i].Type, ns)
	}
	if n.Items != nil {
		c.collect(n.Items, ns)
	}
	if n.Values != nil {
		c.collect(n.Values, ns)
	}
	for i := range n.Branches {
		c.collect(&n.Branches[i], ns)
	}
}

func (c *walkCompiler) node(n *tavro.SchemaNode, ns string) (*walker, error) {
	if n.LogicalType != "" {
		return nil, errNoWalker
	}
	switch n.Type {
	case "null":
		return &walker{kind: wNull}, nil
	case "boolean":
		return &walker{kind: wBoolean}, nil
	case "int":
		return &walker{kind: wInt}, nil
	case "long":
		return &walker{kind: wLong}, nil
	case "float":
		return &walker{kind: wFloat}, nil
	case "double":
		return &walker{kind: wDouble}, nil
	case "bytes":
		return &walker{kind: wBytes}, nil
	case "string":
		return &walker{kind: wString}, nil
	case "array":
		if n.Items == nil {
			return nil, errNoWalker
		}
		e, err := c.node(n.Items, ns)
		if err == nil && !e.takesBytes() {
			err = errNoWalker // the library bounds blocks of empty items its own way
		}
		return &walker{kind: wArray, elem: e}, err
	case "map":
		if n.Values == nil {
			return nil, errNoWalker
		}
		e, err := c.node(n.Values, ns)
		if err == nil && !e.takesBytes() {
			err = errNoWalker
		}
		return &walker{kind: wMap, elem: e}, err
	case "union":
		w := &walker{kind: wUnion}
		for i := range n.Branches {
			b, err := c.node(&n.Branches[i], ns)
			if err != nil {
				return nil, err
			}
			w.choices = append(w.choices, b)
		}
		return w, nil
	case "record", "error", "enum", "fixed":
		return c.named1(fullName(n, ns), n)
	}
	// A reference to a named type, by its full name or one relative to
	// the enclosing namespace.
	for _, name := range []string{n.Type, ns + "." + n.Type} {
		if w, ok := c.named[name]; ok {
			return w, nil
		}
		if d, ok := c.defs[name]; ok {
			return c.named1(name, d)
		}
	}
	return nil, errNoWalker
}

// named1 compiles a named type once; a reference met while it is being
// compiled gets the same (still filling) node.
func (c *walkCompiler) named1(full string, n *tavro.SchemaNode) (*walker, error) {
	if w, ok := c.named[full]; ok {
		return w, nil
	}
	ns := ""
	if i := strings.LastIndexByte(full, '.'); i >= 0 {
		ns = full[:i]
	}
	w := &walker{name: full}
	c.named[full] = w
	switch n.Type {
	case "enum":
		w.kind, w.symbols = wEnum, len(n.Symbols)
	case "fixed":
		w.kind, w.size = wFixed, n.Size
	default:
		w.kind = wRecord
		for i := range n.Fields {
			f, err := c.node(&n.Fields[i].Type, ns)
			if err != nil {
				return nil, err
			}
			w.fields = append(w.fields, f)
			w.names = append(w.names, n.Fields[i].Name)
		}
	}
	return w, nil
}

// walk reads one value of w from b and returns what follows it.
func (w *walker) walk(b []byte, depth int) ([]byte, error) {
	switch w.kind {
	case wNull:
		return b, nil
	case wBoolean:
		// any byte: the library's decoder reads a non-zero one as true
		return take(b, 1, "boolean")
	case wInt:
		v, rest, err := varlong(b, 5)
		if err == nil && (v < math.MinInt32 || v > math.MaxInt32) {
			err = fmt.Errorf("int %d out of range", v)
		}
		return rest, err
	case wLong:
		_, rest, err := varlong(b, 10)
		return rest, err
	case wFloat:
		return take(b, 4, "float")
	case wDouble:
		return take(b, 8, "double")
	case wBytes, wString:
		n, rest, err := length(b)
		if err != nil {
			return nil, err
		}
		return take(rest, n, "bytes")
	case wFixed:
		return take(b, w.size, w.name)
	case wEnum:
		i, rest, err := varlong(b, 5)
		if err == nil && (i < 0 || i >= int64(w.symbols)) {
			err = fmt.Errorf("enum %s: index %d of %d symbols", w.name, i, w.symbols)
		}
		return rest, err
	case wUnion:
		i, rest, err := varlong(b, 5) // an int, as the spec writes a union's branch
		if err != nil {
			return nil, err
		}
		if i < 0 || i >= int64(len(w.choices)) {
			return nil, fmt.Errorf("union index %d of %d branches", i, len(w.choices))
		}
		return w.choices[i].walkIn(rest, depth)
	case wRecord:
		if depth >= walkDepth {
			return nil, errWalkDepth
		}
		var err error
		for i, f := range w.fields {
			if b, err = f.walkIn(b, depth); err != nil {
				return nil, fmt.Errorf("%s.%s: %w", w.name, w.names[i], err)
			}
		}
		return b, nil
	case wArray, wMap:
		return w.blocks(b, depth)
	}
	return nil, fmt.Errorf("unknown kind %d", w.kind)
}

// walkIn walks a value nested in another, one level deeper.
func (w *walker) walkIn(b []byte, depth int) ([]byte, error) {
	if depth+1 >= walkDepth {
		return nil, errWalkDepth
	}
	return w.walk(b, depth+1)
}

// blocks reads an array's or a map's blocks: a count, negative when a byte
// size follows it, then the items (a map's each after its string key),
// until a count of 0.
func (w *walker) blocks(b []byte, depth int) ([]byte, error) {
	for {
		n, rest, err := varlong(b, 10)
		if err != nil {
			return nil, err
		}
		b = rest
		if n == 0 {
			return b, nil
		}
		if n < 0 {
			if n == math.MinInt64 {
				return nil, errors.New("block count out of range")
			}
			n = -n
			// the block's byte size, which the items' own lengths make
			// redundant; read past, as decoders do
			if _, b, err = varlong(b, 10); err != nil {
				return nil, err
			}
		}
		if n > int64(len(b)) {
			// each item takes a byte at least (compileWalker makes sure)
			return nil, fmt.Errorf("block of %d items in %d bytes", n, len(b))
		}
		for ; n > 0; n-- {
			if w.kind == wMap {
				k, rest, err := length(b)
				if err != nil {
					return nil, err
				}
				if b, err = take(rest, k, "map key"); err != nil {
					return nil, err
				}
			}
			if b, err = w.elem.walkIn(b, depth); err != nil {
				return nil, err
			}
		}
	}
}

// takesBytes says whether every value of w takes a byte at least.
func (w *walker) takesBytes() bool {
	switch w.kind {
	case wNull:
		return false
	case wRecord:
		// a record still being compiled (an array of its own type
		// inside it) has no fields yet, and counts as taking none
		for _, f := range w.fields {
			if f.takesBytes() {
				return true
			}
		}
		return false
	case wFixed:
		return w.size > 0
	}
	return true
}

func errShort(what string) error { return fmt.Errorf("%s: short buffer", what) }

func take(b []byte, n int, what string) ([]byte, error) {
	if n < 0 || n > len(b) {
		return nil, errShort(what)
	}
	return b[n:], nil
}

// varlong reads a zig-zag varint of at most max bytes.
func varlong(b []byte, max int) (int64, []byte, error) {
	if len(b) > 0 && b[0] < 0x80 {
		// one byte: lengths and small numbers, most of what is read
		u := uint64(b[0])
		return int64(u>>1) ^ -int64(u&1), b[1:], nil
	}
	u, n := binary.Uvarint(b)
	if n <= 0 || n > max {
		if n == 0 {
			return 0, nil, errShort("varint")
		}
		return 0, nil, errors.New("varint too long")
	}
	return int64(u>>1) ^ -int64(u&1), b[n:], nil
}

// length reads a non-negative long, a length of what follows.
func length(b []byte) (int, []byte, error) {
	n, rest, err := varlong(b, 10)
	if err != nil {
		return 0, nil, err
	}
	if n < 0 || n > int64(len(rest)) {
		return 0, nil, fmt.Errorf("length %d with %d bytes left", n, len(rest))
	}
	return int(n), rest, nil
}
