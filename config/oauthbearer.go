package config

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// OAuthBearer is how SASL listeners check OAUTHBEARER tokens: JWTs
// signed by a key of a JSON Web Key Set, from an issuer, for an
// audience. A token's principal is User:<its principal_claim>.
type OAuthBearer struct {
	// JWKSFile or JWKSURL (https) holds the issuer's public keys; one of
	// the two. Both are read again every JWKSRefresh, and at most every
	// 10 s when a token names a key id the set lacks.
	JWKSFile    string   `yaml:"jwks_file"`
	JWKSURL     string   `yaml:"jwks_url"`
	JWKSRefresh Duration `yaml:"jwks_refresh"`
	// JWKSCAFile holds CAs trusted for JWKSURL's certificate besides the
	// system's roots (a private CA).
	JWKSCAFile string `yaml:"jwks_ca_file"`
	// Issuer is the iss a token must carry.
	Issuer string `yaml:"issuer"`
	// Audience lists the audiences accepted: a token's aud must hold one.
	Audience StringList `yaml:"audience"`
	// ClockSkew is how far exp, nbf and iat may be off.
	ClockSkew Duration `yaml:"clock_skew"`
	// PrincipalClaim names the claim whose string value is the principal.
	PrincipalClaim string `yaml:"principal_claim"`
	// AllowedAlgorithms are the JWS algorithms a token may be signed with.
	AllowedAlgorithms []string `yaml:"allowed_algorithms"`
}

// DefaultOAuthBearer is what a security.oauthbearer section holds before
// the file sets its keys.
func DefaultOAuthBearer() OAuthBearer {
	return OAuthBearer{
		JWKSRefresh:       Duration(5 * time.Minute),
		ClockSkew:         Duration(30 * time.Second),
		PrincipalClaim:    "sub",
		AllowedAlgorithms: []string{"RS256", "ES256"},
	}
}

// defaults makes a section the decoder has just created start from the
// defaults, as the whole configuration does.
func (o *OAuthBearer) defaults() { *o = DefaultOAuthBearer() }

// JWSAlgorithms are the signature algorithms allowed_algorithms may name:
// the asymmetric ones. HMAC (HS256...) is not among them: its key is a
// secret, which a key set is not meant to hold, and "none" signs nothing.
var JWSAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// StringList is a list of strings that a file may write as one string.
type StringList []string

// UnmarshalYAML takes a string or a list of strings.
func (l *StringList) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return nil
		}
		*l = StringList{n.Value}
		return nil
	case yaml.SequenceNode:
		out := make(StringList, 0, len(n.Content))
		for _, e := range n.Content {
			if e.Kind != yaml.ScalarNode || e.ShortTag() == "!!null" {
				return fmt.Errorf("expected a string or a list of strings, got a list holding %s", describe(e))
			}
			out = append(out, e.Value)
		}
		*l = out
		return nil
	}
	return fmt.Errorf("expected a string or a list of strings, got %s", describe(n))
}

// validateOAuthBearer checks o at path.
func (v *validator) validateOAuthBearer(path string, o OAuthBearer) {
	one(v, path, "jwks_file", o.JWKSFile != "", "jwks_url", o.JWKSURL != "")
	if o.JWKSURL != "" {
		u, err := url.Parse(o.JWKSURL)
		switch {
		case err != nil:
			v.add(path+".jwks_url", "%v", err)
		case u.Scheme != "https" || u.Host == "":
			// The keys decide who gets in: they must come from the issuer.
			v.add(path+".jwks_url", "must be an https:// URL, got %q", o.JWKSURL)
		}
	} else if o.JWKSCAFile != "" {
		v.add(path+".jwks_ca_file", "is for jwks_url (the CAs of its certificate)")
	}
	v.durationRange(path+".jwks_refresh", o.JWKSRefresh, 10*time.Second, 24*time.Hour)
	v.nonEmpty(path+".issuer", o.Issuer)
	if len(o.Audience) == 0 {
		v.add(path+".audience", "at least one audience is required (a token's aud must hold one)")
	}
	for i, a := range o.Audience {
		if strings.TrimSpace(a) == "" {
			v.add(fmt.Sprintf("%s.audience[%d]", path, i), "must not be empty")
		}
	}
	v.durationRange(path+".clock_skew", o.ClockSkew, 0, 10*time.Minute)
	v.nonEmpty(path+".principal_claim", o.PrincipalClaim)
	if len(o.AllowedAlgorithms) == 0 {
		v.add(path+".allowed_algorithms", "at least one algorithm is required, e.g. [RS256, ES256]")
	}
	for i, alg := range o.AllowedAlgorithms {
		p := fmt.Sprintf("%s.allowed_algorithms[%d]", path, i)
		switch {
		case strings.EqualFold(alg, "none"):
			v.add(p, "\"none\" is never accepted: an unsigned token proves nothing")
		case strings.HasPrefix(strings.ToUpper(alg), "HS"):
			v.add(p, "%q is not accepted: HMAC needs a shared secret, not a public key set; want one of %s", alg, strings.Join(JWSAlgorithms, ", "))
		case !slices.Contains(JWSAlgorithms, alg):
			v.add(p, "%q: want one of %s", alg, strings.Join(JWSAlgorithms, ", "))
		case slices.Index(o.AllowedAlgorithms, alg) < i:
			v.add(p, "%q is named twice", alg)
		}
	}
}
