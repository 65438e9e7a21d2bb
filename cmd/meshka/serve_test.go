package main

import (
	"testing"

	"github.com/meshka/meshka/config"
)

// meshka dev turns the built-in registry on with its HTTP listener, and
// leaves it off when the file names an external one: the two exclude
// each other.
func TestDevHTTPRegistry(t *testing.T) {
	cfg := config.Default()
	devHTTP(&cfg)
	if !cfg.HTTP.SchemaRegistry.Enabled {
		t.Error("meshka dev without schema.registry.url: the built-in registry is off")
	}
	cfg = config.Default()
	cfg.Schema.Registry.URL = config.URLs{"http://127.0.0.1:8081"}
	devHTTP(&cfg)
	if cfg.HTTP.SchemaRegistry.Enabled {
		t.Error("meshka dev with schema.registry.url: the built-in registry is on too")
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Errorf("meshka dev with schema.registry.url: %v", errs)
	}
}
