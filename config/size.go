package config

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Size is a byte count. In YAML it is either a plain integer (bytes) or a
// string with a unit such as "64MiB", "64 MiB" or "1gb".
type Size int64

// Binary size units.
const (
	KiB Size = 1 << 10
	MiB Size = 1 << 20
	GiB Size = 1 << 30
	TiB Size = 1 << 40
)

// sizeUnits is keyed by lower-case unit so matching is case-insensitive.
// Decimal units exist because operators copy figures from disk and network
// specs, which are usually quoted in powers of ten.
var sizeUnits = map[string]int64{
	"":    1,
	"b":   1,
	"kib": 1 << 10,
	"mib": 1 << 20,
	"gib": 1 << 30,
	"tib": 1 << 40,
	"kb":  1e3,
	"mb":  1e6,
	"gb":  1e9,
	"tb":  1e12,
}

// ParseSize parses a byte count with an optional unit: B, KiB, MiB, GiB,
// TiB (powers of 1024) or KB, MB, GB, TB (powers of 1000), in any case,
// optionally separated from the number by spaces. A fractional number is
// accepted when it yields a whole number of bytes ("1.5GiB").
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "-") {
		return 0, fmt.Errorf("size %q must not be negative", s)
	}
	end := 0
	dot := false
	for end < len(t) {
		c := t[end]
		if c == '.' && !dot {
			dot = true
		} else if c < '0' || c > '9' {
			break
		}
		end++
	}
	num, unit := t[:end], strings.TrimSpace(t[end:])
	if num == "" || num == "." || strings.HasSuffix(num, ".") || strings.HasPrefix(num, ".") {
		return 0, fmt.Errorf("invalid size %q: expected a number of bytes or a number with a unit, e.g. \"64MiB\"", s)
	}
	mult, ok := sizeUnits[strings.ToLower(unit)]
	if !ok {
		return 0, fmt.Errorf("invalid size %q: unknown unit %q (use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)", s, unit)
	}
	// big.Rat keeps "1.5GiB" exact and makes overflow detection trivial.
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	if !r.IsInt() {
		return 0, fmt.Errorf("invalid size %q: not a whole number of bytes", s)
	}
	if !r.Num().IsInt64() {
		return 0, fmt.Errorf("size %q is too large (at most %d bytes)", s, int64(^uint64(0)>>1))
	}
	return Size(r.Num().Int64()), nil
}

// String uses the largest binary unit that represents s exactly, so values
// written as "64MiB" read back the same way in logs and error messages.
func (s Size) String() string {
	for _, u := range []struct {
		size Size
		name string
	}{{TiB, "TiB"}, {GiB, "GiB"}, {MiB, "MiB"}, {KiB, "KiB"}} {
		if s >= u.size && s%u.size == 0 {
			return strconv.FormatInt(int64(s/u.size), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10) + "B"
}

// UnmarshalYAML accepts an integer byte count or a string with a unit.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a size such as \"64MiB\", got %s", describe(n))
	}
	switch n.ShortTag() {
	case "!!null":
		return nil
	case "!!int":
		var v int64
		if err := n.Decode(&v); err != nil {
			return fmt.Errorf("size %s is out of range", n.Value)
		}
		if v < 0 {
			return fmt.Errorf("size %s must not be negative", n.Value)
		}
		*s = Size(v)
		return nil
	case "!!str":
		v, err := ParseSize(n.Value)
		if err != nil {
			return err
		}
		*s = v
		return nil
	}
	return fmt.Errorf("expected a whole number of bytes or a size with a unit such as \"64MiB\", got %s", n.Value)
}

// MarshalYAML writes the human form when it is exact, otherwise plain bytes.
func (s Size) MarshalYAML() (any, error) {
	str := s.String()
	if strings.HasSuffix(str, "iB") {
		return str, nil
	}
	return int64(s), nil
}
