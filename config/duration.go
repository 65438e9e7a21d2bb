package config

import (
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration written in YAML as a string with a unit,
// e.g. "10s" or "250ms".
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String drops time.Duration's trailing zero units ("10m0s" becomes "10m")
// because that is how operators write durations in the file.
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// UnmarshalYAML accepts only strings with a unit. Bare numbers are rejected
// rather than guessed at: "10" could mean seconds or milliseconds, and a
// wrong guess is off by a factor of a thousand.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a duration such as \"10s\", got %s", describe(n))
	}
	switch n.ShortTag() {
	case "!!null":
		return nil
	case "!!int", "!!float":
		return fmt.Errorf("duration %s has no unit: write e.g. \"10s\" or \"250ms\"", n.Value)
	}
	v, err := time.ParseDuration(strings.TrimSpace(n.Value))
	if err != nil {
		return fmt.Errorf("invalid duration %q: write a number with a unit (ms, s, m, h), e.g. \"10s\"", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes d in the same form UnmarshalYAML reads.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }
