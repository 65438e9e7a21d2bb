package httpmap_test

import (
	"testing"

	"github.com/meshka/meshka/config"
)

// A node runs at most http.consumers.max_instances consumer instances:
// creating one more is answered 429 with Retry-After, and the instances
// running go on; deleting one makes room, which requests naming instances
// that do not exist do not take.
func TestV2ConsumerInstancesBounded(t *testing.T) {
	_, base, _ := startConfluent(t, func(cfg *config.Config) { cfg.HTTP.Consumers.MaxInstances = 2 })
	a := createConsumer(t, base, "cb", `{"name":"a"}`)
	createConsumer(t, base, "cb", `{"name":"b"}`)
	resp, body := do(t, "POST", base+"/consumers/cb", `{"name":"c"}`, v2ct())
	wantError(t, "a third instance", resp, body, 429, 429, "http.consumers.max_instances")
	if resp.Header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	a.subscribe(base, "events")
	if resp, body := do(t, "DELETE", base+"/consumers/cb/instances/b", "", v2ct()); resp.StatusCode != 204 {
		t.Fatalf("delete: %d %s", resp.StatusCode, body)
	}
	for _, name := range []string{"x1", "x2", "x3"} {
		resp, body := do(t, "GET", base+"/consumers/cb/instances/"+name+"/subscription", "", nil)
		wantError(t, "an instance that does not exist", resp, body, 404, 40403, "Consumer instance not found")
	}
	createConsumer(t, base, "cb", `{"name":"c"}`)
}
