package remote_test

import (
	"context"
	"encoding/binary"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/meshka/meshka/internal/testenv"
	"github.com/meshka/meshka/schema"
	"github.com/meshka/meshka/schema/remote"
	"github.com/meshka/meshka/schema/validate"
)

const (
	addressSchema = `{"type":"record","name":"Address","namespace":"geo","fields":[{"name":"city","type":"string"}]}`
	personSchema  = `{"type":"record","name":"Person","fields":[{"name":"name","type":"string"},{"name":"home","type":"geo.Address"}]}`
)

func avroString(b []byte, s string) []byte {
	return append(binary.AppendVarint(b, int64(len(s))), s...)
}

// registry is a meshka node's built-in registry, reached as an external
// one, with schemas registered through franz-go's registry client.
type registry struct {
	env *testenv.Env
	url string
	cl  *sr.Client
}

func startRegistry(t *testing.T, user, password string) *registry {
	t.Helper()
	env, u := testenv.StartRegistry(t, user, password)
	opts := []sr.ClientOpt{sr.URLs(u)}
	if user != "" {
		opts = append(opts, sr.BasicAuth(user, password))
	}
	cl, err := sr.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return &registry{env: env, url: u, cl: cl}
}

func (r *registry) register(t *testing.T, subject string, s sr.Schema) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ss, err := r.cl.CreateSchema(ctx, subject, s)
	if err != nil {
		t.Fatalf("register %s: %v", subject, err)
	}
	return ss.ID
}

func newSource(t *testing.T, cfg remote.Config) *remote.Source {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = 3 * time.Second
	}
	s, err := remote.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// TestSource reads schemas, with a reference, and subjects' versions from
// a real registry; what the registry does not have is the registry's no,
// not an unavailable registry.
func TestSource(t *testing.T) {
	reg := startRegistry(t, "", "")
	userID := reg.register(t, "users-value", sr.Schema{Schema: testenv.UserSchema})
	reg.register(t, "address", sr.Schema{Schema: addressSchema})
	personID := reg.register(t, "people-value", sr.Schema{Schema: personSchema,
		References: []sr.SchemaReference{{Name: "geo.Address", Subject: "address", Version: 1}}})
	jsonID := reg.register(t, "docs-value", sr.Schema{Type: sr.TypeJSON, Schema: `{"type":"object","required":["a"]}`})
	src := newSource(t, remote.Config{URLs: []string{reg.url}, CacheTTL: time.Minute})
	ctx := context.Background()

	sc, typ, err := src.ByID(ctx, userID)
	if err != nil || typ != schema.Avro {
		t.Fatalf("ByID(%d): %v, %v", userID, typ, err)
	}
	if err := sc.Validate(testenv.AvroUser(userID, "ann", 3)[5:], nil); err != nil {
		t.Errorf("a User: %v", err)
	}
	if err := sc.Validate([]byte{0x7f}, nil); err == nil {
		t.Error("a cut User validated")
	}
	// The reference is read from the registry and compiled in.
	sc, _, err = src.ByID(ctx, personID)
	if err != nil {
		t.Fatalf("ByID(%d), with a reference: %v", personID, err)
	}
	if err := sc.Validate(avroString(avroString(nil, "ann"), "Oslo"), nil); err != nil {
		t.Errorf("a Person: %v", err)
	}
	if _, typ, err := src.ByID(ctx, jsonID); err != nil || typ != schema.JSON {
		t.Errorf("ByID(%d): %v, %v", jsonID, typ, err)
	}

	_, _, err = src.ByID(ctx, 99999)
	if err == nil || validate.Unavailable(err) || !strings.Contains(err.Error(), "99999") {
		t.Errorf("ByID of an unknown id: %v, want the registry's no", err)
	}
	if id, err := src.VersionID(ctx, "users-value", validate.Latest); err != nil || id != userID {
		t.Errorf("VersionID(users-value, latest) = %d, %v; want %d", id, err, userID)
	}
	if id, err := src.VersionID(ctx, "users-value", 1); err != nil || id != userID {
		t.Errorf("VersionID(users-value, 1) = %d, %v; want %d", id, err, userID)
	}
	if _, err := src.VersionID(ctx, "nobody-value", 1); err == nil || validate.Unavailable(err) {
		t.Errorf("VersionID of an unknown subject: %v, want the registry's no", err)
	}
	for _, c := range []struct {
		subject string
		id      int
		want    bool
	}{{"users-value", userID, true}, {"people-value", userID, false}, {"people-value", personID, true}, {"users-value", 99999, false}} {
		if ok, err := src.SubjectHasID(ctx, c.subject, c.id); err != nil || ok != c.want {
			t.Errorf("SubjectHasID(%s, %d) = %v, %v; want %v", c.subject, c.id, ok, err, c.want)
		}
	}
}

// TestSourceUnknownID: the registry's answer that an id does not exist
// is kept for the TTL only, and the id is read once it is registered.
func TestSourceUnknownID(t *testing.T) {
	reg := startRegistry(t, "", "")
	first := reg.register(t, "a-value", sr.Schema{Schema: `"long"`})
	src := newSource(t, remote.Config{URLs: []string{reg.url}, CacheTTL: 300 * time.Millisecond})
	ctx := context.Background()
	if _, _, err := src.ByID(ctx, first+1); err == nil || validate.Unavailable(err) {
		t.Fatalf("ByID(%d) before it exists: %v", first+1, err)
	}
	if next := reg.register(t, "b-value", sr.Schema{Schema: `"string"`}); next != first+1 {
		t.Skipf("the registry gave id %d, not %d", next, first+1)
	}
	if _, _, err := src.ByID(ctx, first+1); err == nil {
		t.Error("the answer that the id does not exist was not kept")
	}
	time.Sleep(400 * time.Millisecond)
	if _, typ, err := src.ByID(ctx, first+1); err != nil || typ != schema.Avro {
		t.Errorf("ByID(%d) once registered and the TTL passed: %v, %v", first+1, typ, err)
	}
}

// TestSourceBasicAuth: with the registry requiring Basic credentials, the
// right ones read it; wrong or no credentials make the registry
// unavailable (not the record's fault), saying why.
func TestSourceBasicAuth(t *testing.T) {
	reg := startRegistry(t, "reader", "r-secret")
	id := reg.register(t, "users-value", sr.Schema{Schema: testenv.UserSchema})
	ctx := context.Background()
	good := newSource(t, remote.Config{URLs: []string{reg.url}, Username: "reader", Password: "r-secret"})
	if _, _, err := good.ByID(ctx, id); err != nil {
		t.Fatalf("with the right credentials: %v", err)
	}
	for name, cfg := range map[string]remote.Config{
		"wrong password": {URLs: []string{reg.url}, Username: "reader", Password: "nope"},
		"none":           {URLs: []string{reg.url}},
		"a bearer token": {URLs: []string{reg.url}, BearerToken: "tok"},
	} {
		_, _, err := newSource(t, cfg).ByID(ctx, id)
		if !validate.Unavailable(err) || !strings.Contains(err.Error(), "credentials (HTTP 401)") {
			t.Errorf("%s: %v, want unavailable for credentials refused", name, err)
		}
	}
}

// TestSourceUnavailable: with the registry stopped, what was read is
// still served (schemas by id; subject answers within their TTL), what
// was not is unavailable, not the registry's no; MaxSchemas bounds what
// is kept; once the registry is back, it is read again.
func TestSourceUnavailable(t *testing.T) {
	reg := startRegistry(t, "", "")
	a := reg.register(t, "a-value", sr.Schema{Schema: testenv.UserSchema})
	b := reg.register(t, "b-value", sr.Schema{Schema: `"long"`})
	c := reg.register(t, "c-value", sr.Schema{Schema: `"string"`})
	src := newSource(t, remote.Config{URLs: []string{reg.url}, CacheTTL: time.Hour, MaxSchemas: 1, Timeout: time.Second})
	ctx := context.Background()
	for _, id := range []int{a, b} { // b pushes a out
		if _, _, err := src.ByID(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := src.SubjectHasID(ctx, "b-value", b); !ok || err != nil {
		t.Fatalf("SubjectHasID: %v, %v", ok, err)
	}

	reg.env.Config.HTTP.Listen = reg.env.HTTPAddr(t) // back on the same port
	reg.env.StopNode(t)
	if _, _, err := src.ByID(ctx, b); err != nil {
		t.Errorf("a kept schema, registry stopped: %v", err)
	}
	if ok, err := src.SubjectHasID(ctx, "b-value", b); !ok || err != nil {
		t.Errorf("a kept subject answer, registry stopped: %v, %v", ok, err)
	}
	for name, err := range map[string]error{
		"ByID of the schema pushed out": second(src.ByID(ctx, a)),
		"ByID never read":               second(src.ByID(ctx, c)),
		"VersionID":                     func() error { _, err := src.VersionID(ctx, "c-value", 1); return err }(),
	} {
		if !validate.Unavailable(err) {
			t.Errorf("%s, registry stopped: %v, want unavailable", name, err)
		}
	}

	reg.env.StartNode(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, _, err := src.ByID(ctx, c)
		if err == nil {
			break
		}
		if !validate.Unavailable(err) || time.Now().After(deadline) {
			t.Fatalf("registry back: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func second(_ schema.Schema, _ schema.Type, err error) error { return err }

// TestSourceSharesLookups: concurrent lookups of one id are one request
// to the registry, and a kept schema none.
func TestSourceSharesLookups(t *testing.T) {
	reg := startRegistry(t, "", "")
	id := reg.register(t, "users-value", sr.Schema{Schema: testenv.UserSchema})
	target, err := url.Parse(reg.url)
	if err != nil {
		t.Fatal(err)
	}
	var byID atomic.Int64
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/schemas/ids/") {
			byID.Add(1)
			time.Sleep(50 * time.Millisecond) // the lookups overlap
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	src := newSource(t, remote.Config{URLs: []string{front.URL}})
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			_, _, err := src.ByID(context.Background(), id)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := src.ByID(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if n := byID.Load(); n != 1 {
		t.Errorf("%d requests for one id, want 1", n)
	}
}

// TestSourceUnreachable: a registry that cannot be reached is
// unavailable, and the next URL is tried.
func TestSourceUnreachable(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	dead := closed.URL
	closed.Close()
	if _, _, err := newSource(t, remote.Config{URLs: []string{dead}}).ByID(context.Background(), 1); !validate.Unavailable(err) {
		t.Errorf("nothing listening: %v, want unavailable", err)
	}
	reg := startRegistry(t, "", "")
	id := reg.register(t, "users-value", sr.Schema{Schema: testenv.UserSchema})
	if _, _, err := newSource(t, remote.Config{URLs: []string{dead, reg.url}}).ByID(context.Background(), id); err != nil {
		t.Errorf("the second URL: %v", err)
	}
}
