package config

import (
	"fmt"
	"regexp"
	"strings"
)

// PrincipalRule is one of a listener's principal_mapping_rules, in the
// syntax of Kafka's ssl.principal.mapping.rules: "DEFAULT", or
// "RULE:pattern/replacement/" with an optional L or U after the last
// slash (lower or upper case the result); a '/' inside the pattern or
// the replacement is written "\/". The pattern must match the whole
// subject (RFC 2253 form, "CN=alice,OU=apps,O=example").
type PrincipalRule struct {
	Default bool
	pattern *regexp.Regexp
	replace string
	lower   bool
	upper   bool
}

// ParsePrincipalRule parses one rule.
func ParsePrincipalRule(s string) (PrincipalRule, error) {
	if s == "DEFAULT" {
		return PrincipalRule{Default: true}, nil
	}
	rest, ok := strings.CutPrefix(s, "RULE:")
	if !ok {
		return PrincipalRule{}, fmt.Errorf("principal mapping rule %q: want DEFAULT or RULE:pattern/replacement/[LU]", s)
	}
	parts := splitUnescaped(rest)
	if len(parts) != 3 || len(parts[2]) > 1 || parts[2] != "" && parts[2] != "L" && parts[2] != "U" {
		return PrincipalRule{}, fmt.Errorf("principal mapping rule %q: want RULE:pattern/replacement/ with L or U or nothing after the last '/'", s)
	}
	re, err := regexp.Compile("^(?:" + parts[0] + ")$")
	if err != nil {
		return PrincipalRule{}, fmt.Errorf("principal mapping rule %q: %v", s, err)
	}
	return PrincipalRule{pattern: re, replace: parts[1], lower: parts[2] == "L", upper: parts[2] == "U"}, nil
}

// splitUnescaped splits s at each '/' not preceded by '\', unescaping
// "\/".
func splitUnescaped(s string) []string {
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s) && s[i+1] == '/':
			cur.WriteByte('/')
			i++
		case s[i] == '/':
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(s[i])
		}
	}
	return append(parts, cur.String())
}

// Apply maps subject, and says whether the rule matched it.
func (r PrincipalRule) Apply(subject string) (string, bool) {
	if r.Default {
		return subject, true
	}
	m := r.pattern.FindStringSubmatchIndex(subject)
	if m == nil {
		return "", false
	}
	out := string(r.pattern.ExpandString(nil, r.replace, subject, m))
	switch {
	case r.lower:
		out = strings.ToLower(out)
	case r.upper:
		out = strings.ToUpper(out)
	}
	return out, true
}

// MapPrincipal maps a certificate's subject by rules, the first that
// matches winning; with no rules, DEFAULT. False when none matches.
func MapPrincipal(rules []PrincipalRule, subject string) (string, bool) {
	if len(rules) == 0 {
		return subject, true
	}
	for _, r := range rules {
		if out, ok := r.Apply(subject); ok {
			return out, true
		}
	}
	return "", false
}
