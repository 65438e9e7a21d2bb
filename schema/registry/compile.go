package registry

import (
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/meshka/meshka/schema"
	"github.com/meshka/meshka/schema/format"
)

// maxReferenceDepth bounds chains of references (a topic written by
// something else than meshka could even hold a cycle).
const maxReferenceDepth = 32

// cache holds compiled schemas by id: an id's schema never changes, so
// neither does what it compiles to. It has its own lock because reads,
// which fill it, run concurrently.
type cache struct {
	mu   sync.Mutex
	byID map[int]*compiled
}

type compiled struct {
	s     schema.Schema
	ident string
	err   error
}

func (c *cache) get(id int) *compiled {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byID[id]
}

func (c *cache) put(id int, v *compiled) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.byID[id] = v
}

func (c *cache) forget(id int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.byID, id)
}

// Compiled is the compiled schema of an id, for validating records.
func (s *State) Compiled(id int) (schema.Schema, error) {
	c := s.compiledID(id)
	if c == nil {
		return nil, errorf(CodeSchemaNotFound, "Schema %d not found", id)
	}
	return c.s, c.err
}

func (s *State) compiledID(id int) *compiled {
	if c := s.cache.get(id); c != nil {
		return c
	}
	e := s.ids[id]
	if e == nil {
		return nil
	}
	c := &compiled{}
	c.s, c.err = s.compile(Schema{Type: e.typ, Schema: e.text, References: e.references})
	if c.err == nil {
		c.ident = ident(c.s, e.references)
	}
	s.cache.put(id, c)
	return c
}

// compile compiles a schema with its references resolved. Its errors are
// 42201 (invalid schema).
func (s *State) compile(sc Schema) (schema.Schema, error) {
	t, err := schema.ParseType(string(sc.Type))
	if err != nil {
		return nil, errorf(CodeInvalidSchema, "Invalid schema: %v", err)
	}
	refs, err := s.resolve(sc.References)
	if err != nil {
		return nil, errorf(CodeInvalidSchema, "Invalid schema: %v", err)
	}
	compiled, err := format.Parse(t, sc.Schema, refs)
	if err != nil {
		return nil, errorf(CodeInvalidSchema, "Invalid schema: %v", err)
	}
	return compiled, nil
}

// resolve is the transitive closure of refs, dependencies first.
func (s *State) resolve(refs []Reference) ([]schema.Reference, error) {
	var out []schema.Reference
	seen := map[Reference]bool{}
	var visit func(refs []Reference, depth int) error
	visit = func(refs []Reference, depth int) error {
		if depth > maxReferenceDepth {
			return fmt.Errorf("references nest deeper than %d", maxReferenceDepth)
		}
		for _, r := range refs {
			if seen[r] {
				continue
			}
			seen[r] = true
			v := s.subjects[r.Subject][r.Version]
			if r.Name == "" || v == nil {
				return fmt.Errorf("reference %q: subject %q version %d not found", r.Name, r.Subject, r.Version)
			}
			if err := visit(v.References, depth+1); err != nil {
				return err
			}
			out = append(out, schema.Reference{Name: r.Name, Schema: v.Schema})
		}
		return nil
	}
	return out, visit(refs, 0)
}

// ident is a schema's identity: type, canonical form and references. Two
// registrations with the same identity get the same id.
func ident(c schema.Schema, refs []Reference) string {
	var b strings.Builder
	b.WriteString(string(c.Type()))
	b.WriteByte(0)
	b.WriteString(c.Canonical())
	for _, r := range refs {
		b.WriteByte(0)
		b.WriteString(r.Name + "\x01" + r.Subject + "\x01" + strconv.Itoa(r.Version))
	}
	return b.String()
}

// reasons are why candidate may not follow olds (a subject's live
// versions, oldest first) at level; empty when it may.
func (s *State) reasons(level Level, candidate schema.Schema, olds []*Version) []string {
	if level == None || len(olds) == 0 {
		return nil
	}
	if !level.transitive() {
		olds = olds[len(olds)-1:]
	}
	var out []string
	for i := len(olds) - 1; i >= 0; i-- {
		old := olds[i]
		c := s.compiledID(old.ID)
		if c == nil {
			c = &compiled{err: fmt.Errorf("id %d not found", old.ID)}
		}
		if c.err != nil {
			out = append(out, fmt.Sprintf("version %d does not compile: %v", old.Version, c.err))
			continue
		}
		if level.backward() {
			for _, r := range schema.Compatible(candidate, c.s) {
				out = append(out, fmt.Sprintf("version %d (%s): %s", old.Version, "the new schema cannot read its data", r))
			}
		}
		if level.forward() {
			for _, r := range schema.Compatible(c.s, candidate) {
				out = append(out, fmt.Sprintf("version %d (%s): %s", old.Version, "it cannot read the new schema's data", r))
			}
		}
	}
	return out
}
