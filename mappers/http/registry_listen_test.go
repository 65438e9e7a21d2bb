package httpmap_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/meshka/meshka/auth"
	"github.com/meshka/meshka/config"
	httpmap "github.com/meshka/meshka/mappers/http"
)

// With http.schema_registry.listen, the registry is served on its own
// address alone, behind the HTTP listener's authentication, and the HTTP
// listener's root is the routes': a route may take /schemas/..., and
// /subjects is nobody's there.
func TestSchemaRegistryOwnListener(t *testing.T) {
	cred, err := auth.NewCredential(auth.ScramSHA256, "alice", "a-secret", 4096)
	if err != nil {
		t.Fatal(err)
	}
	env, base := start(t, registryOn, func(c *config.Config) {
		c.HTTP.SchemaRegistry.Listen = "127.0.0.1:0"
		c.HTTP.AllowAnonymous = false
		c.Security.Users = []config.User{{Name: "alice", ScramSHA256: cred}}
		c.HTTP.Routes = slices.Concat(c.HTTP.Routes, []config.HTTPRoute{{Method: http.MethodGet, Path: "/schemas/{id}", Topic: "events", Capability: config.CapFetch}})
	})
	b, _ := env.Node.Binding("http")
	addr := b.(*httpmap.Server).RegistryAddr()
	if addr == nil {
		t.Fatal("no registry listener")
	}
	regURL := "http://" + addr.String()
	ctx := context.Background()

	cl, err := sr.NewClient(sr.URLs(regURL), sr.BasicAuth("alice", "a-secret"))
	if err != nil {
		t.Fatal(err)
	}
	ss, err := cl.CreateSchema(ctx, "r-value", sr.Schema{Schema: avroV1})
	if err != nil {
		t.Fatalf("register on the registry's listener: %v", err)
	}
	if got, err := cl.SchemaByID(ctx, ss.ID); err != nil || got.Schema != avroV1 {
		t.Fatalf("SchemaByID: %q, %v", got.Schema, err)
	}
	anon := srClient(t, regURL)
	if _, err := anon.Subjects(ctx); err == nil || !strings.Contains(err.Error(), "credentials required") {
		t.Errorf("no credentials on the registry's listener: %v, want 401", err)
	}

	basic := map[string]string{"Authorization": "Basic " + basicAuth("alice", "a-secret")}
	// The registry's listener serves the registry alone.
	if resp, body := do(t, http.MethodPost, regURL+"/events", "x", basic); resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "error_code") {
		t.Errorf("a route on the registry's listener: %d %s, want the registry's 404", resp.StatusCode, body)
	}
	// The HTTP listener's root is the routes'.
	if resp, body := do(t, http.MethodGet, base+"/subjects", "", basic); resp.StatusCode != http.StatusNotFound || strings.Contains(body, "r-value") {
		t.Errorf("GET /subjects on the HTTP listener: %d %s, want 404", resp.StatusCode, body)
	}
	if resp, body := do(t, http.MethodGet, base+"/schemas/1", "", basic); resp.StatusCode != http.StatusOK || strings.Contains(body, avroV1) {
		t.Errorf("GET /schemas/1, a route, on the HTTP listener: %d %s", resp.StatusCode, body)
	}
}
