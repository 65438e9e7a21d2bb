package config

import (
	"slices"
	"testing"
	"time"
)

func TestSchemaRegistryLoads(t *testing.T) {
	cfg, errs := load(t, `schema:
  registry:
    url: https://registry.example.com:8081
    basic_auth: {username: app, password: s3cret}
    tls: {ca_file: /etc/ca.pem}
    timeout: 3s
    cache_ttl: 1m
`)
	checkErrors(t, errs, nil)
	r := cfg.Schema.Registry
	if !slices.Equal(r.URL, URLs{"https://registry.example.com:8081"}) || r.BasicAuth == nil || r.BasicAuth.Password != "s3cret" ||
		r.TLS == nil || r.TLS.CAFile != "/etc/ca.pem" || r.Timeout.D() != 3*time.Second || r.CacheTTL.D() != time.Minute {
		t.Fatalf("schema.registry = %+v", r)
	}
	if !cfg.HasSchemaRegistry() || !cfg.HasExternalSchemaRegistry() {
		t.Fatal("HasSchemaRegistry is false with schema.registry.url set")
	}

	cfg, errs = load(t, "schema:\n  registry:\n    url: [http://a:8081, http://b:8081]\n    bearer_token: tok\n")
	checkErrors(t, errs, nil)
	if !slices.Equal(cfg.Schema.Registry.URL, URLs{"http://a:8081", "http://b:8081"}) {
		t.Fatalf("url = %v", cfg.Schema.Registry.URL)
	}
	if d := Default(); d.HasSchemaRegistry() || d.Schema.Registry.Timeout.D() != 10*time.Second || d.Schema.Registry.CacheTTL.D() != 30*time.Second {
		t.Fatalf("defaults: %+v", d.Schema.Registry)
	}
}

func TestSchemaRegistryErrors(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    []wantErr
	}{
		{"both registries", "http:\n  schema_registry: {enabled: true}\nschema:\n  registry:\n    url: http://r:8081\n",
			[]wantErr{{5, 10, "schema.registry.url", "exclude each other"}}},
		{"not http", "schema:\n  registry:\n    url: ftp://r\n",
			[]wantErr{{3, 10, "schema.registry.url", "must be an http:// or https:// URL"}}},
		{"one of several without a host", "schema:\n  registry:\n    url: [http://r:8081, \"http://\"]\n",
			[]wantErr{{3, 10, "schema.registry.url", `must name a host, e.g. "http://registry.example.com:8081", got "http://"`}}},
		{"a number as url", "schema:\n  registry:\n    url: 8081\n",
			[]wantErr{{3, 10, "schema.registry.url", "expected a URL or a list of URLs"}}},
		{"credentials in the url", "schema:\n  registry:\n    url: http://u:p@r:8081\n",
			[]wantErr{{3, 10, "schema.registry.url", "use schema.registry.basic_auth"}}},
		{"basic and bearer", "schema:\n  registry:\n    url: http://r:8081\n    basic_auth: {username: u, password: p}\n    bearer_token: t\n",
			[]wantErr{{5, 19, "schema.registry.bearer_token", "exclude each other"}}},
		{"basic without a user", "schema:\n  registry:\n    url: http://r:8081\n    basic_auth: {password: p}\n",
			[]wantErr{{0, 0, "schema.registry.basic_auth.username", "must not be empty"}}},
		{"auth without a url", "schema:\n  registry:\n    bearer_token: t\n",
			[]wantErr{{3, 19, "schema.registry.bearer_token", "needs schema.registry.url"}}},
		{"tls without https", "schema:\n  registry:\n    url: http://r:8081\n    tls: {ca_file: ca.pem}\n",
			[]wantErr{{4, 10, "schema.registry.tls", "no schema.registry.url is https://"}}},
		{"tls client auth", "schema:\n  registry:\n    url: https://r:8081\n    tls: {client_auth: required}\n",
			[]wantErr{{4, 24, "schema.registry.tls.client_auth", "is for listeners"}}},
		{"timeout", "schema:\n  registry:\n    url: http://r:8081\n    timeout: 1ms\n",
			[]wantErr{{4, 14, "schema.registry.timeout", "must be between 100ms and 5m"}}},
		{"cache_ttl without a unit", "schema:\n  registry:\n    cache_ttl: 30\n",
			[]wantErr{{3, 16, "schema.registry.cache_ttl", "has no unit"}}},
		{"unknown key", "schema:\n  registry:\n    urls: http://r\n",
			[]wantErr{{3, 5, "schema.registry.urls", `did you mean "url"?`}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := load(t, tc.content)
			checkErrors(t, errs, tc.want)
		})
	}
}

func TestSchemaRegistryListen(t *testing.T) {
	cfg, errs := load(t, "http:\n  listen: 127.0.0.1:8080\n  schema_registry: {enabled: true, listen: \"127.0.0.1:8081\"}\n  routes:\n    - {method: GET, path: \"/subjects/{s}\", topic: t, capability: fetch}\n")
	checkErrors(t, errs, nil) // the route may use /subjects: the registry is elsewhere
	if cfg.HTTP.SchemaRegistry.Listen != "127.0.0.1:8081" {
		t.Fatalf("listen = %q", cfg.HTTP.SchemaRegistry.Listen)
	}
	tests := []struct {
		name    string
		content string
		want    []wantErr
	}{
		{"not enabled", "http:\n  listen: 127.0.0.1:8080\n  schema_registry: {listen: \"127.0.0.1:8081\"}\n",
			[]wantErr{{3, 29, "http.schema_registry.listen", "needs http.schema_registry.enabled"}}},
		{"no http listener", "http:\n  schema_registry: {enabled: true, listen: \"127.0.0.1:8081\"}\n",
			[]wantErr{{2, 44, "http.schema_registry.listen", "set http.listen too"}}},
		{"the same address", "http:\n  listen: 0.0.0.0:8080\n  schema_registry: {enabled: true, listen: \"127.0.0.1:8080\"}\n",
			[]wantErr{{3, 44, "http.schema_registry.listen", "must differ from http.listen"}}},
		{"not host:port", "http:\n  listen: 127.0.0.1:8080\n  schema_registry: {enabled: true, listen: \"8081\"}\n",
			[]wantErr{{3, 44, "http.schema_registry.listen", "must be host:port"}}},
		{"a route on the registry's paths, served at the root", "http:\n  listen: 127.0.0.1:8080\n  schema_registry: {enabled: true}\n  routes:\n    - {method: GET, path: \"/subjects/{s}\", topic: t, capability: fetch}\n",
			[]wantErr{{5, 27, "http.routes[0].path", "is the schema registry's"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := load(t, tc.content)
			checkErrors(t, errs, tc.want)
		})
	}
}
