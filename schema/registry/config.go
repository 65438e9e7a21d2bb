package registry

import "slices"

// Level is a compatibility level.
type Level string

// The compatibility levels. BACKWARD: a new schema reads what the latest
// one wrote; FORWARD: the latest reads what the new one writes; FULL: both;
// _TRANSITIVE: against every live version, not only the latest.
const (
	None               Level = "NONE"
	Backward           Level = "BACKWARD"
	BackwardTransitive Level = "BACKWARD_TRANSITIVE"
	Forward            Level = "FORWARD"
	ForwardTransitive  Level = "FORWARD_TRANSITIVE"
	Full               Level = "FULL"
	FullTransitive     Level = "FULL_TRANSITIVE"
)

// DefaultLevel is the compatibility of a registry nobody configured.
const DefaultLevel = Backward

func (l Level) valid() bool {
	return slices.Contains([]Level{None, Backward, BackwardTransitive, Forward, ForwardTransitive, Full, FullTransitive}, l)
}

func (l Level) backward() bool {
	return l == Backward || l == BackwardTransitive || l == Full || l == FullTransitive
}

func (l Level) forward() bool {
	return l == Forward || l == ForwardTransitive || l == Full || l == FullTransitive
}

func (l Level) transitive() bool {
	return l == BackwardTransitive || l == ForwardTransitive || l == FullTransitive
}

// Config is a subject's or the registry's configuration. Empty fields are
// not configured at that level.
type Config struct {
	Compatibility Level
	// Normalize, when true, stores schemas in their normalized form.
	Normalize *bool
}

// Mode is what a subject or the registry accepts.
type Mode string

// The modes: READWRITE accepts everything; READONLY refuses registrations
// and deletes; IMPORT accepts registrations with their own ids and versions
// and checks no compatibility, for copying another registry.
const (
	ReadWrite Mode = "READWRITE"
	ReadOnly  Mode = "READONLY"
	Import    Mode = "IMPORT"
)

func (m Mode) valid() bool { return m == ReadWrite || m == ReadOnly || m == Import }

// Config is subject's configuration, or the global one for subject "".
// Without a configuration of its own, a subject has the global one when
// defaultToGlobal, else the error is 40408. The global configuration always
// exists, BACKWARD when nobody set it.
func (s *State) Config(subject string, defaultToGlobal bool) (Config, error) {
	if c, ok := s.configs[subject]; ok {
		return c, nil
	}
	if subject != "" && !defaultToGlobal {
		return Config{}, errorf(CodeSubjectConfigNotConfigured, "Subject '%s' does not have subject-level compatibility configured", subject)
	}
	return s.global(), nil
}

func (s *State) global() Config {
	c := s.configs[""]
	if c.Compatibility == "" {
		c.Compatibility = DefaultLevel
	}
	return c
}

// level and normalize are what applies to subject.
func (s *State) level(subject string) Level {
	if c := s.configs[subject]; c.Compatibility != "" {
		return c.Compatibility
	}
	return s.global().Compatibility
}

func (s *State) normalize(subject string) bool {
	if c := s.configs[subject]; c.Normalize != nil {
		return *c.Normalize
	}
	n := s.global().Normalize
	return n != nil && *n
}

// Mode is subject's mode, or the global one for subject "". Without a mode
// of its own, a subject has the global one when defaultToGlobal, else the
// error is 40409.
func (s *State) Mode(subject string, defaultToGlobal bool) (Mode, error) {
	if m, ok := s.modes[subject]; ok {
		return m, nil
	}
	if subject != "" && !defaultToGlobal {
		return "", errorf(CodeSubjectModeNotConfigured, "Subject '%s' does not have subject-level mode configured", subject)
	}
	return s.mode(""), nil
}

func (s *State) mode(subject string) Mode {
	if m, ok := s.modes[subject]; ok {
		return m
	}
	if m, ok := s.modes[""]; ok {
		return m
	}
	return ReadWrite
}
