package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Schema configures where the node reads the schemas its topics rules and
// value conversions name.
type Schema struct {
	// Registry is an external registry speaking Confluent's Schema
	// Registry API; off unless its url is set.
	Registry SchemaRegistry `yaml:"registry"`
}

// SchemaRegistry is an external Confluent-compatible schema registry. It
// and the built-in one (http.schema_registry.enabled) exclude each other.
type SchemaRegistry struct {
	// URL is the registry's base URL, or several (a YAML list) that serve
	// the same registry: a request that cannot reach one tries the next.
	URL URLs `yaml:"url"`
	// BasicAuth and BearerToken authenticate every request (at most one
	// of them).
	BasicAuth   *BasicAuth `yaml:"basic_auth,omitempty"`
	BearerToken string     `yaml:"bearer_token"`
	// TLS, for https URLs: the CAs the registry's certificate is checked
	// against (empty: the system's), and a client certificate for mTLS.
	TLS *TLS `yaml:"tls,omitempty"`
	// Timeout bounds each request to the registry.
	Timeout Duration `yaml:"timeout"`
	// CacheTTL is how long an answer about a subject's versions is
	// trusted before the registry is asked again. An id's schema never
	// changes and is kept (the most recently used ones, a bounded number)
	// without asking again.
	CacheTTL Duration `yaml:"cache_ttl"`
}

// BasicAuth is a user name and password sent as HTTP Basic credentials.
type BasicAuth struct {
	Username string `yaml:"username"`
	Password string `yaml:"password"`
}

// URLs is one URL or a list of them: `url: http://a` and
// `url: [http://a, http://b]` both read.
type URLs []string

// UnmarshalYAML reads a string or a list of strings.
func (u *URLs) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return nil
		}
		if n.ShortTag() != "!!str" {
			return fmt.Errorf("expected a URL or a list of URLs, got %s", describe(n))
		}
		*u = URLs{n.Value}
		return nil
	case yaml.SequenceNode:
		if len(n.Content) == 0 {
			*u = nil // as absent
			return nil
		}
		out := make(URLs, 0, len(n.Content))
		for i, c := range n.Content {
			if c.Kind != yaml.ScalarNode || c.ShortTag() != "!!str" {
				return fmt.Errorf("[%d]: expected a URL, got %s", i, describe(c))
			}
			out = append(out, c.Value)
		}
		*u = out
		return nil
	}
	return fmt.Errorf("expected a URL or a list of URLs, got %s", describe(n))
}

func defaultSchema() Schema {
	return Schema{Registry: SchemaRegistry{
		Timeout:  Duration(10 * time.Second),
		CacheTTL: Duration(30 * time.Second),
	}}
}

// validateSchema checks the schema section, and that the external and the
// built-in registries are not both on.
func (v *validator) validateSchema(s Schema, builtIn bool) {
	r := s.Registry
	const p = "schema.registry"
	https := false
	for _, raw := range r.URL {
		// The list is read whole, so its errors point at url.
		path := p + ".url"
		u, err := url.Parse(raw)
		switch {
		case err != nil:
			v.add(path, "not a URL: %q", raw)
			continue
		case u.Scheme != "http" && u.Scheme != "https":
			v.add(path, "must be an http:// or https:// URL, got %q", raw)
			continue
		case u.Host == "":
			v.add(path, "must name a host, e.g. \"http://registry.example.com:8081\", got %q", raw)
		case u.User != nil:
			v.add(path, "must not carry credentials; use schema.registry.basic_auth")
		case u.RawQuery != "" || u.Fragment != "":
			v.add(path, "must not have a query or a fragment, got %q", raw)
		}
		https = https || u.Scheme == "https"
	}
	set := len(r.URL) > 0
	if builtIn && set {
		v.add(p+".url", "an external registry and the built-in one (http.schema_registry.enabled) exclude each other; turn one off")
	}
	if r.BasicAuth != nil {
		if !set {
			v.add(p+".basic_auth", "needs schema.registry.url")
		}
		v.nonEmpty(p+".basic_auth.username", r.BasicAuth.Username)
		if strings.Contains(r.BasicAuth.Username, ":") {
			v.add(p+".basic_auth.username", "must not contain ':' (Basic credentials are user:password)")
		}
		if r.BearerToken != "" {
			v.add(p+".bearer_token", "basic_auth and bearer_token exclude each other; choose one")
		}
	}
	if r.BearerToken != "" && !set {
		v.add(p+".bearer_token", "needs schema.registry.url")
	}
	if r.TLS != nil {
		v.validateTLS(p+".tls", *r.TLS, false)
		if set && !https {
			v.add(p+".tls", "no schema.registry.url is https://")
		}
	}
	v.durationRange(p+".timeout", r.Timeout, 100*time.Millisecond, 5*time.Minute)
	v.durationRange(p+".cache_ttl", r.CacheTTL, 0, 24*time.Hour)
}

// HasExternalSchemaRegistry says whether schema.registry.url is set.
func (c *Config) HasExternalSchemaRegistry() bool {
	return len(c.Schema.Registry.URL) > 0
}
