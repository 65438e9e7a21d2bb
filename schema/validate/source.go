package validate

import (
	"context"
	"sync"

	"github.com/meshka/meshka/schema"
	"github.com/meshka/meshka/schema/registry"
)

// StateSource is a Source reading a registry.State, meshka's own registry.
// Compiled schemas are cached by id (an id's schema never changes), so a
// record's schema is found without taking the state's lock once its id has
// been seen; subject lookups read the state each time, as versions come
// and go.
type StateSource struct {
	state *registry.State
	mu    *sync.RWMutex
	byID  sync.Map // int → schema.Schema
}

// NewStateSource reads st. mu is the lock its owner holds (for writing)
// around Apply; StateSource holds it for reading around every read. With
// mu nil the state must not change while the source is in use.
func NewStateSource(st *registry.State, mu *sync.RWMutex) *StateSource {
	return &StateSource{state: st, mu: mu}
}

func (s *StateSource) rlock() func() {
	if s.mu == nil {
		return func() {}
	}
	s.mu.RLock()
	return s.mu.RUnlock
}

// ByID implements Source.
func (s *StateSource) ByID(_ context.Context, id int) (schema.Schema, schema.Type, error) {
	if c, ok := s.byID.Load(id); ok {
		sc := c.(schema.Schema)
		return sc, sc.Type(), nil
	}
	unlock := s.rlock()
	sc, err := s.state.Compiled(id)
	unlock()
	if err != nil {
		return nil, "", err
	}
	s.byID.Store(id, sc)
	return sc, sc.Type(), nil
}

// VersionID implements Source.
func (s *StateSource) VersionID(_ context.Context, subject string, version int) (int, error) {
	if version == Latest {
		version = registry.Latest
	}
	defer s.rlock()()
	v, err := s.state.GetVersion(subject, version, false)
	if err != nil {
		return 0, err
	}
	return v.ID, nil
}

// SubjectHasID implements Source.
func (s *StateSource) SubjectHasID(_ context.Context, subject string, id int) (bool, error) {
	defer s.rlock()()
	svs, err := s.state.IDVersions(id, false)
	if err != nil {
		return false, nil
	}
	for _, sv := range svs {
		if sv.Subject == subject {
			return true, nil
		}
	}
	return false, nil
}
