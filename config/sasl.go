package config

import (
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// SASL mechanisms meshka authenticates to upstream with.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
	SASLOAuthBearer = "OAUTHBEARER"
)

// SASL is how meshka authenticates to a Kafka cluster: a user and
// password (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) or an OAuth token
// (OAUTHBEARER), static or obtained with the client-credentials flow.
// Secrets may come from files, read again at each authentication, so a
// rotated secret takes effect on the next connection.
type SASL struct {
	Mechanism string `yaml:"mechanism"`
	// Username and Password (or PasswordFile, whose first line is the
	// password) for PLAIN and SCRAM.
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	// Token (or TokenFile, its first line) is a static OAUTHBEARER token.
	Token     string `yaml:"token"`
	TokenFile string `yaml:"token_file"`
	// TokenURL is an OAuth 2.0 token endpoint (https): meshka asks it
	// for tokens with the client-credentials grant, as ClientID with
	// ClientSecret, for Scopes.
	TokenURL     string   `yaml:"token_url"`
	ClientID     string   `yaml:"client_id"`
	ClientSecret string   `yaml:"client_secret"`
	Scopes       []string `yaml:"scopes"`
	// Extensions are OAUTHBEARER's SASL extensions (RFC 7628), such as
	// Confluent Cloud's logicalCluster and identityPoolId.
	Extensions map[string]string `yaml:"extensions"`
}

// extensionKey is RFC 7628's key = 1*(ALPHA); "auth" is the token's own.
var extensionKey = regexp.MustCompile(`^[A-Za-z]+$`)

// validateSASL checks s at path. A mechanism's keys are required, and the
// keys of other mechanisms are refused, so a half-edited section is
// caught here rather than as an authentication failure upstream.
func (v *validator) validateSASL(path string, s SASL) {
	mechanisms := []string{SASLPlain, SASLScramSHA256, SASLScramSHA512, SASLOAuthBearer}
	switch {
	case s.Mechanism == "":
		v.add(path+".mechanism", "must be set: one of %s", strings.Join(mechanisms, ", "))
		return
	case !slices.Contains(mechanisms, s.Mechanism):
		v.add(path+".mechanism", "must be one of %s; got %q", strings.Join(mechanisms, ", "), s.Mechanism)
		return
	}
	refuse := func(key string, set bool, why string) {
		if set {
			v.add(path+"."+key, "%s", why)
		}
	}
	if s.Mechanism != SASLOAuthBearer {
		v.nonEmpty(path+".username", s.Username)
		one(v, path, "password", s.Password != "", "password_file", s.PasswordFile != "")
		why := "is for OAUTHBEARER, not " + s.Mechanism
		refuse("token", s.Token != "", why)
		refuse("token_file", s.TokenFile != "", why)
		refuse("token_url", s.TokenURL != "", why)
		refuse("client_id", s.ClientID != "", why)
		refuse("client_secret", s.ClientSecret != "", why)
		refuse("scopes", len(s.Scopes) > 0, why)
		refuse("extensions", len(s.Extensions) > 0, why)
		return
	}

	why := "is for PLAIN and SCRAM, not OAUTHBEARER"
	refuse("username", s.Username != "", why)
	refuse("password", s.Password != "", why)
	refuse("password_file", s.PasswordFile != "", why)
	sources := 0
	for _, set := range []bool{s.Token != "", s.TokenFile != "", s.TokenURL != ""} {
		if set {
			sources++
		}
	}
	if sources != 1 {
		v.add(path, "OAUTHBEARER needs exactly one of token, token_file and token_url")
	}
	if s.TokenURL != "" {
		u, err := url.Parse(s.TokenURL)
		switch {
		case err != nil:
			v.add(path+".token_url", "%v", err)
		case u.Scheme != "https" || u.Host == "":
			// The client secret goes in the request.
			v.add(path+".token_url", "must be an https:// URL, got %q", s.TokenURL)
		}
		v.nonEmpty(path+".client_id", s.ClientID)
		v.nonEmpty(path+".client_secret", s.ClientSecret)
	} else {
		why := "is for the client-credentials flow (token_url)"
		refuse("client_id", s.ClientID != "", why)
		refuse("client_secret", s.ClientSecret != "", why)
		refuse("scopes", len(s.Scopes) > 0, why)
	}
	for i, scope := range s.Scopes {
		if scope == "" || strings.ContainsAny(scope, " \t\r\n\"\\") {
			v.add(path+".scopes["+strconv.Itoa(i)+"]", "a scope is one non-empty word without quotes or backslashes, got %q", scope)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(s.Extensions)) {
		val := s.Extensions[k]
		switch {
		case !extensionKey.MatchString(k):
			v.add(path+".extensions", "extension %q: a name is letters only (RFC 7628)", k)
		case k == "auth":
			v.add(path+".extensions", "extension \"auth\": the name is the token's own, not an extension's")
		case strings.ContainsFunc(val, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }):
			v.add(path+".extensions", "extension %q: the value may not hold control characters", k)
		}
	}
}

// one requires exactly one of two keys.
func one(v *validator, path, a string, hasA bool, b string, hasB bool) {
	switch {
	case hasA && hasB:
		v.add(path, "set %s or %s, not both", a, b)
	case !hasA && !hasB:
		v.add(path, "%s or %s is required", a, b)
	}
}
