package mesh

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// Filter selects records by key and by headers; a record must pass both.
// The zero Filter takes every record. A subscription's filter runs in its
// partition's shared reader, for each record, before anything is queued.
type Filter struct {
	Key KeyFilter
	// Headers, when not empty, are alternatives: a record passes when it
	// has every header of at least one of them.
	Headers [][]HeaderMatch
}

// HeaderMatch asks for a header named Name whose value is Value (a nil
// Value: a header with Kafka's null value).
type HeaderMatch struct {
	Name  string
	Value []byte
}

// KeyFilter selects records by key. The zero KeyFilter takes every key.
type KeyFilter struct {
	kind   keyKind
	value  []byte
	levels []string // a pattern's, split at '/'
}

type keyKind int8

const (
	anyKey keyKind = iota
	exactKey
	prefixKey
	patternKey
)

// KeyExact takes records whose key is k.
func KeyExact(k []byte) KeyFilter { return KeyFilter{kind: exactKey, value: bytes.Clone(k)} }

// KeyPrefix takes records whose key starts with prefix.
func KeyPrefix(prefix []byte) KeyFilter {
	return KeyFilter{kind: prefixKey, value: bytes.Clone(prefix)}
}

// KeyPattern takes records whose key matches an MQTT topic filter: keys
// and the pattern are levels separated by '/'; a level "+" matches any
// one level, a last level "#" matches any number of levels, none
// included ("a/#" matches "a", "a/b" and "a/b/c"). As in MQTT, a pattern
// starting with a wildcard does not match a key starting with '$'.
func KeyPattern(pattern string) (KeyFilter, error) {
	if pattern == "" {
		return KeyFilter{}, errors.New("mesh: empty key pattern")
	}
	levels := strings.Split(pattern, "/")
	for i, l := range levels {
		switch {
		case l == "#" && i != len(levels)-1:
			return KeyFilter{}, fmt.Errorf("mesh: key pattern %q: '#' must be its last level", pattern)
		case l != "#" && l != "+" && strings.ContainsAny(l, "#+"):
			return KeyFilter{}, fmt.Errorf("mesh: key pattern %q: a wildcard must be a whole level", pattern)
		}
	}
	return KeyFilter{kind: patternKey, levels: levels}, nil
}

// Validate says what is wrong with the filter, if anything: a header
// alternative with no header, or a header without a name.
func (f *Filter) Validate() error {
	for i, alt := range f.Headers {
		if len(alt) == 0 {
			return fmt.Errorf("mesh: filter: header alternative %d is empty", i)
		}
		for _, h := range alt {
			if h.Name == "" {
				return fmt.Errorf("mesh: filter: header alternative %d has a header without a name", i)
			}
		}
	}
	return nil
}

// Match says whether a record with this key and these headers passes.
// It allocates nothing.
func (f *Filter) Match(key []byte, headers []Header) bool {
	if !f.Key.Match(key) {
		return false
	}
	if len(f.Headers) == 0 {
		return true
	}
	for _, alt := range f.Headers {
		if hasAll(headers, alt) {
			return true
		}
	}
	return false
}

func hasAll(headers []Header, want []HeaderMatch) bool {
	for _, w := range want {
		found := false
		for _, h := range headers {
			if h.Key == w.Name && bytes.Equal(h.Value, w.Value) && (h.Value == nil) == (w.Value == nil) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// Match says whether key passes. A nil key passes only the zero
// KeyFilter.
func (k *KeyFilter) Match(key []byte) bool {
	switch k.kind {
	case anyKey:
		return true
	case exactKey:
		return key != nil && bytes.Equal(key, k.value)
	case prefixKey:
		return key != nil && bytes.HasPrefix(key, k.value)
	}
	return key != nil && matchLevels(k.levels, key)
}

// matchLevels matches key level by level against a pattern's levels.
func matchLevels(levels []string, key []byte) bool {
	if len(key) > 0 && key[0] == '$' && (levels[0] == "+" || levels[0] == "#") {
		return false
	}
	rest := key
	for i, l := range levels {
		if l == "#" {
			return true
		}
		if rest == nil {
			return false // the key has fewer levels
		}
		var level []byte
		if j := bytes.IndexByte(rest, '/'); j >= 0 {
			level, rest = rest[:j], rest[j+1:]
		} else {
			level, rest = rest, nil
		}
		if l != "+" && string(level) != l {
			return false
		}
		if rest == nil && i+2 == len(levels) && levels[i+1] == "#" {
			return true // "a/#" matches "a"
		}
	}
	return rest == nil
}
