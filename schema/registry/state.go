// Package registry is the schema registry as a state machine without I/O:
// the subjects, versions, ids, configs and modes that Confluent's Schema
// Registry API serves, rebuilt by applying the records of the _schemas
// topic, and changed only by planning records that a single ordered writer
// writes to it.
package registry

import (
	"fmt"
	"maps"
	"slices"

	"github.com/meshka/meshka/schema"
)

// Reference names another subject's version that a schema uses.
type Reference struct {
	Name    string `json:"name"`
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

// Schema is a schema as a client sends it.
type Schema struct {
	Type       schema.Type // empty is Avro
	Schema     string
	References []Reference
}

// Version is one version of a subject.
type Version struct {
	Subject    string
	Version    int
	ID         int
	Type       schema.Type
	Schema     string
	References []Reference
	Deleted    bool
}

// SubjectVersion names a version.
type SubjectVersion struct {
	Subject string
	Version int
}

// idEntry is what an id stands for, and the versions that carry it.
type idEntry struct {
	typ        schema.Type
	text       string
	references []Reference
	users      map[SubjectVersion]bool
}

// State is a registry's state. Reads and Plan may run concurrently with
// each other; Apply must run alone (hold a write lock around it and a read
// lock around everything else).
type State struct {
	subjects map[string]map[int]*Version
	ids      map[int]*idEntry
	maxID    int
	configs  map[string]Config // "" is the global config
	modes    map[string]Mode   // "" is the global mode
	cache    cache
}

// New is an empty registry: no subjects, BACKWARD, READWRITE.
func New() *State {
	return &State{
		subjects: map[string]map[int]*Version{},
		ids:      map[int]*idEntry{},
		configs:  map[string]Config{},
		modes:    map[string]Mode{},
		cache:    cache{byID: map[int]*compiled{}},
	}
}

// Apply applies one record read from the _schemas topic. It is idempotent:
// applying a record again, or a replay of the whole topic, changes nothing
// more. A record it cannot read is refused with an error and changes
// nothing; the caller logs it and goes on with the next.
func (s *State) Apply(rec Record) error {
	var k key
	if err := decode(rec.Key, &k); err != nil {
		return fmt.Errorf("registry record: key: %w", err)
	}
	switch k.KeyType {
	case keySchema:
		return s.applySchema(k, rec.Value)
	case keyConfig:
		if rec.Value == nil {
			delete(s.configs, k.Subject)
			return nil
		}
		var v configValue
		if err := decode(rec.Value, &v); err != nil {
			return fmt.Errorf("registry record: config %q: %w", k.Subject, err)
		}
		if v.CompatibilityLevel != "" && !v.CompatibilityLevel.valid() {
			return fmt.Errorf("registry record: config %q: compatibility level %q", k.Subject, v.CompatibilityLevel)
		}
		s.configs[k.Subject] = Config{Compatibility: v.CompatibilityLevel, Normalize: v.Normalize}
	case keyMode:
		if rec.Value == nil {
			delete(s.modes, k.Subject)
			return nil
		}
		var v modeValue
		if err := decode(rec.Value, &v); err != nil {
			return fmt.Errorf("registry record: mode %q: %w", k.Subject, err)
		}
		if !v.Mode.valid() {
			return fmt.Errorf("registry record: mode %q: %q", k.Subject, v.Mode)
		}
		s.modes[k.Subject] = v.Mode
	case keyDeleteSubject:
		if rec.Value == nil {
			return nil
		}
		var v deleteSubjectValue
		if err := decode(rec.Value, &v); err != nil {
			return fmt.Errorf("registry record: delete subject %q: %w", k.Subject, err)
		}
		for n, ver := range s.subjects[k.Subject] {
			if n <= v.Version {
				ver.Deleted = true
			}
		}
	case keyNoop:
		if rec.Value == nil {
			return nil
		}
		var v noopValue
		if err := decode(rec.Value, &v); err != nil {
			return fmt.Errorf("registry record: noop: %w", err)
		}
		s.maxID = max(s.maxID, v.MaxID)
	case keyClearSubject, keyContext:
		// Confluent's bookkeeping; nothing meshka keeps.
	default:
		return fmt.Errorf("registry record: unknown key type %q", k.KeyType)
	}
	return nil
}

func (s *State) applySchema(k key, value []byte) error {
	if k.Subject == "" || k.Version < 1 {
		return fmt.Errorf("registry record: schema key without a subject or a version")
	}
	sv := SubjectVersion{k.Subject, k.Version}
	if value == nil {
		s.remove(sv)
		return nil
	}
	var v schemaValue
	if err := decode(value, &v); err != nil {
		return fmt.Errorf("registry record: schema %s/%d: %w", k.Subject, k.Version, err)
	}
	t, err := schema.ParseType(v.SchemaType)
	switch {
	case err != nil:
		return fmt.Errorf("registry record: schema %s/%d: %w", k.Subject, k.Version, err)
	case v.Subject != k.Subject || v.Version != k.Version:
		return fmt.Errorf("registry record: schema %s/%d: the value is for %s/%d", k.Subject, k.Version, v.Subject, v.Version)
	case v.ID < 1:
		return fmt.Errorf("registry record: schema %s/%d: id %d", k.Subject, k.Version, v.ID)
	}
	if e := s.ids[v.ID]; e != nil && (e.typ != t || e.text != v.Schema || !slices.Equal(e.references, v.References)) {
		if len(e.users) > 1 || !e.users[sv] {
			return fmt.Errorf("registry record: schema %s/%d: id %d already stands for another schema", k.Subject, k.Version, v.ID)
		}
	}
	s.remove(sv)
	ver := &Version{Subject: v.Subject, Version: v.Version, ID: v.ID, Type: t, Schema: v.Schema,
		References: v.References, Deleted: v.Deleted}
	if s.subjects[sv.Subject] == nil {
		s.subjects[sv.Subject] = map[int]*Version{}
	}
	s.subjects[sv.Subject][sv.Version] = ver
	e := s.ids[v.ID]
	if e == nil {
		e = &idEntry{typ: t, text: v.Schema, references: v.References, users: map[SubjectVersion]bool{}}
		s.ids[v.ID] = e
	}
	e.users[sv] = true
	s.maxID = max(s.maxID, v.ID)
	return nil
}

// remove forgets a version, and its id when no other version carries it.
func (s *State) remove(sv SubjectVersion) {
	old := s.subjects[sv.Subject][sv.Version]
	if old == nil {
		return
	}
	delete(s.subjects[sv.Subject], sv.Version)
	if len(s.subjects[sv.Subject]) == 0 {
		delete(s.subjects, sv.Subject)
	}
	if e := s.ids[old.ID]; e != nil {
		delete(e.users, sv)
		if len(e.users) == 0 {
			delete(s.ids, old.ID)
			s.cache.forget(old.ID)
		}
	}
}

// versions are a subject's versions in order, soft-deleted ones with
// deleted true.
func (s *State) versions(subject string, deleted bool) []*Version {
	var out []*Version
	for _, n := range slices.Sorted(maps.Keys(s.subjects[subject])) {
		if v := s.subjects[subject][n]; deleted || !v.Deleted {
			out = append(out, v)
		}
	}
	return out
}

// referrers are the versions whose references name sv.
func (s *State) referrers(sv SubjectVersion) []*Version {
	var out []*Version
	for _, vs := range s.subjects {
		for _, v := range vs {
			for _, r := range v.References {
				if r.Subject == sv.Subject && r.Version == sv.Version {
					out = append(out, v)
					break
				}
			}
		}
	}
	return out
}
