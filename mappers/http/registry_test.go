package httpmap_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/meshka/meshka/config"
	httpmap "github.com/meshka/meshka/mappers/http"
)

func registryOn(cfg *config.Config) {
	cfg.HTTP.SchemaRegistry.Enabled = true
	cfg.HTTP.MaxBodyBytes = config.MiB
}

func srClient(t testing.TB, base string) *sr.Client {
	t.Helper()
	cl, err := sr.NewClient(sr.URLs(base))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// srCode is the Confluent error code of err (0: none).
func srCode(err error) int {
	var re *sr.ResponseError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return 0
}

const (
	avroV1      = `{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}`
	avroBad     = `{"type":"record","name":"R","fields":[{"name":"a","type":"string"},{"name":"b","type":"int"}]}`
	avroV2      = `{"type":"record","name":"R","fields":[{"name":"a","type":"string"},{"name":"b","type":"int","default":0}]}`
	jsonSchema  = `{"type":"object","properties":{"a":{"type":"string"}}}`
	protoSchema = "syntax = \"proto3\";\npackage t;\nmessage M { string a = 1; }\n"
	avroInner   = `{"type":"record","name":"Inner","namespace":"x","fields":[{"name":"v","type":"int"}]}`
	avroOuter   = `{"type":"record","name":"Outer","fields":[{"name":"i","type":"x.Inner"}]}`
)

// Every endpoint franz-go's client has, on one node.
func TestSchemaRegistry(t *testing.T) {
	_, base := start(t, registryOn)
	cl := srClient(t, base)
	ctx := context.Background()

	types, err := cl.SupportedTypes(ctx)
	if err != nil || len(types) != 3 {
		t.Fatalf("types %v %v", types, err)
	}
	ss, err := cl.CreateSchema(ctx, "orders-value", sr.Schema{Schema: avroV1})
	if err != nil {
		t.Fatal(err)
	}
	if ss.ID != 1 || ss.Version != 1 || ss.Subject != "orders-value" || ss.Type != sr.TypeAvro {
		t.Fatalf("created %+v", ss)
	}
	js, err := cl.CreateSchema(ctx, "json-value", sr.Schema{Schema: jsonSchema, Type: sr.TypeJSON})
	if err != nil || js.ID != 2 || js.Type != sr.TypeJSON {
		t.Fatalf("json %+v %v", js, err)
	}
	ps, err := cl.CreateSchema(ctx, "proto-value", sr.Schema{Schema: protoSchema, Type: sr.TypeProtobuf})
	if err != nil || ps.ID != 3 || ps.Type != sr.TypeProtobuf {
		t.Fatalf("proto %+v %v", ps, err)
	}
	// The same schema again: the same id and version.
	if id, err := cl.RegisterSchema(ctx, "orders-value", sr.Schema{Schema: avroV1}, -1, -1); err != nil || id != 1 {
		t.Fatalf("again: %d %v", id, err)
	}
	// Under another subject: the same id.
	if id, err := cl.RegisterSchema(ctx, "copy-value", sr.Schema{Schema: avroV1}, -1, -1); err != nil || id != 1 {
		t.Fatalf("copy: %d %v", id, err)
	}

	byID, err := cl.SchemaByID(ctx, 3)
	if err != nil || byID.Schema != protoSchema || byID.Type != sr.TypeProtobuf {
		t.Fatalf("by id %+v %v", byID, err)
	}
	if text, err := cl.SchemaTextByID(ctx, 1); err != nil || text != avroV1 {
		t.Fatalf("text %q %v", text, err)
	}
	if subs, err := cl.SubjectsByID(ctx, 1); err != nil || !slices.Equal(subs, []string{"copy-value", "orders-value"}) {
		t.Fatalf("subjects by id %v %v", subs, err)
	}
	if svs, err := cl.SchemaVersionsByID(ctx, 1); err != nil || len(svs) != 2 {
		t.Fatalf("versions by id %v %v", svs, err)
	}
	if subs, err := cl.Subjects(ctx); err != nil || !slices.Equal(subs, []string{"copy-value", "json-value", "orders-value", "proto-value"}) {
		t.Fatalf("subjects %v %v", subs, err)
	}
	if all, err := cl.AllSchemas(ctx); err != nil || len(all) != 4 {
		t.Fatalf("all %v %v", all, err)
	}

	// Compatibility: incompatible, then compatible, then registered.
	res, err := cl.CheckCompatibility(sr.WithParams(ctx, sr.Verbose), "orders-value", -1, sr.Schema{Schema: avroBad})
	if err != nil || res.Is || len(res.Messages) == 0 {
		t.Fatalf("incompatible: %+v %v", res, err)
	}
	if _, err := cl.RegisterSchema(ctx, "orders-value", sr.Schema{Schema: avroBad}, -1, -1); srCode(err) != 409 {
		t.Fatalf("registering the incompatible one: %v", err)
	}
	if res, err := cl.CheckCompatibility(ctx, "orders-value", -2, sr.Schema{Schema: avroV2}); err != nil || !res.Is {
		t.Fatalf("compatible: %+v %v", res, err)
	}
	v2, err := cl.CreateSchema(ctx, "orders-value", sr.Schema{Schema: avroV2})
	if err != nil || v2.Version != 2 || v2.ID != 4 {
		t.Fatalf("v2 %+v %v", v2, err)
	}
	if vs, err := cl.SubjectVersions(ctx, "orders-value"); err != nil || !slices.Equal(vs, []int{1, 2}) {
		t.Fatalf("versions %v %v", vs, err)
	}
	if latest, err := cl.SchemaByVersion(ctx, "orders-value", -1); err != nil || latest.Version != 2 || latest.Schema.Schema != avroV2 {
		t.Fatalf("latest %+v %v", latest, err)
	}
	if text, err := cl.SchemaTextByVersion(ctx, "orders-value", 1); err != nil || text != avroV1 {
		t.Fatalf("text by version %q %v", text, err)
	}
	if found, err := cl.LookupSchema(ctx, "orders-value", sr.Schema{Schema: avroV1}); err != nil || found.Version != 1 || found.ID != 1 {
		t.Fatalf("lookup %+v %v", found, err)
	}
	if _, err := cl.LookupSchema(ctx, "orders-value", sr.Schema{Schema: jsonSchema, Type: sr.TypeJSON}); srCode(err) != 40403 {
		t.Fatalf("lookup of another: %v", err)
	}

	// Config: global and per subject.
	if got := cl.Compatibility(ctx); got[0].Err != nil || got[0].Level != sr.CompatBackward {
		t.Fatalf("global config %+v", got[0])
	}
	if got := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatFull}, "json-value"); got[0].Err != nil || got[0].Level != sr.CompatFull {
		t.Fatalf("set config %+v", got[0])
	}
	if got := cl.Compatibility(ctx, "json-value"); got[0].Err != nil || got[0].Level != sr.CompatFull {
		t.Fatalf("subject config %+v", got[0])
	}
	if got := cl.Compatibility(ctx, "proto-value"); srCode(got[0].Err) != 40408 {
		t.Fatalf("unset subject config %+v", got[0])
	}
	if got := cl.Compatibility(sr.WithParams(ctx, sr.DefaultToGlobal), "proto-value"); got[0].Err != nil || got[0].Level != sr.CompatBackward {
		t.Fatalf("default to global %+v", got[0])
	}
	if got := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatNone}); got[0].Err != nil {
		t.Fatalf("set global %+v", got[0])
	}
	if got := cl.Compatibility(ctx); got[0].Level != sr.CompatNone {
		t.Fatalf("global now %+v", got[0])
	}
	if got := cl.ResetCompatibility(ctx, "json-value"); got[0].Err != nil {
		t.Fatalf("reset %+v", got[0])
	}
	if got := cl.ResetCompatibility(ctx); got[0].Err != nil {
		t.Fatalf("reset global %+v", got[0])
	}
	if got := cl.Compatibility(ctx); got[0].Level != sr.CompatBackward {
		t.Fatalf("global after reset %+v", got[0])
	}

	// Mode: READONLY refuses writes.
	if got := cl.Mode(ctx); got[0].Err != nil || got[0].Mode != sr.ModeReadWrite {
		t.Fatalf("mode %+v", got[0])
	}
	if got := cl.SetMode(ctx, sr.ModeReadOnly, "proto-value"); got[0].Err != nil || got[0].Mode != sr.ModeReadOnly {
		t.Fatalf("set mode %+v", got[0])
	}
	if got := cl.Mode(ctx, "proto-value"); got[0].Mode != sr.ModeReadOnly {
		t.Fatalf("subject mode %+v", got[0])
	}
	if _, err := cl.RegisterSchema(ctx, "proto-value", sr.Schema{Schema: protoSchema + "message N { int32 b = 1; }\n", Type: sr.TypeProtobuf}, -1, -1); srCode(err) != 42205 {
		t.Fatalf("write in READONLY: %v", err)
	}
	if got := cl.ResetMode(ctx, "proto-value"); got[0].Err != nil || got[0].Mode != sr.ModeReadOnly {
		t.Fatalf("reset mode %+v", got[0])
	}
	if got := cl.SetMode(ctx, sr.ModeReadOnly); got[0].Err != nil {
		t.Fatalf("set global mode %+v", got[0])
	}
	if _, err := cl.RegisterSchema(ctx, "new-value", sr.Schema{Schema: avroV1}, -1, -1); srCode(err) != 42205 {
		t.Fatalf("write in global READONLY: %v", err)
	}
	if got := cl.SetMode(ctx, sr.ModeReadWrite); got[0].Err != nil {
		t.Fatalf("back to READWRITE %+v", got[0])
	}

	// References, and deleting what is referenced.
	inner, err := cl.CreateSchema(ctx, "inner-value", sr.Schema{Schema: avroInner})
	if err != nil {
		t.Fatal(err)
	}
	outer, err := cl.CreateSchema(ctx, "outer-value", sr.Schema{Schema: avroOuter,
		References: []sr.SchemaReference{{Name: "x.Inner", Subject: "inner-value", Version: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(outer.References) != 1 || outer.References[0].Subject != "inner-value" {
		t.Fatalf("outer %+v", outer)
	}
	refs, err := cl.SchemaReferences(ctx, "inner-value", 1)
	if err != nil || len(refs) != 1 || refs[0].ID != outer.ID {
		t.Fatalf("referenced by %+v %v", refs, err)
	}
	if err := cl.DeleteSchema(ctx, "inner-value", inner.Version, sr.SoftDelete); srCode(err) != 42206 {
		t.Fatalf("deleting a referenced version: %v", err)
	}

	// Soft delete, list deleted, permanent delete.
	if err := cl.DeleteSchema(ctx, "orders-value", 1, sr.HardDelete); srCode(err) != 40407 {
		t.Fatalf("permanent before soft: %v", err)
	}
	if err := cl.DeleteSchema(ctx, "orders-value", 1, sr.SoftDelete); err != nil {
		t.Fatal(err)
	}
	if vs, _ := cl.SubjectVersions(ctx, "orders-value"); !slices.Equal(vs, []int{2}) {
		t.Fatalf("after a soft delete: %v", vs)
	}
	if vs, _ := cl.SubjectVersions(sr.WithParams(ctx, sr.ShowDeleted), "orders-value"); !slices.Equal(vs, []int{1, 2}) {
		t.Fatalf("with deleted: %v", vs)
	}
	if err := cl.DeleteSchema(ctx, "orders-value", 1, sr.HardDelete); err != nil {
		t.Fatal(err)
	}
	if vs, _ := cl.DeleteSubject(ctx, "copy-value", sr.SoftDelete); !slices.Equal(vs, []int{1}) {
		t.Fatalf("soft subject delete: %v", vs)
	}
	if subs, _ := cl.Subjects(ctx); slices.Contains(subs, "copy-value") {
		t.Fatalf("soft-deleted subject listed: %v", subs)
	}
	if subs, _ := cl.Subjects(sr.WithParams(ctx, sr.ShowDeleted)); !slices.Contains(subs, "copy-value") {
		t.Fatalf("soft-deleted subject not listed with deleted: %v", subs)
	}
	if vs, err := cl.DeleteSubject(ctx, "copy-value", sr.HardDelete); err != nil || !slices.Equal(vs, []int{1}) {
		t.Fatalf("permanent subject delete: %v %v", vs, err)
	}
	if subs, _ := cl.Subjects(sr.WithParams(ctx, sr.ShowDeleted)); slices.Contains(subs, "copy-value") {
		t.Fatalf("permanently deleted subject listed: %v", subs)
	}
	// Id 1 went with its last version; the next id is not 1 again.
	if _, err := cl.SchemaByID(ctx, 1); srCode(err) != 40403 {
		t.Fatalf("id 1 after its versions went: %v", err)
	}
	again, err := cl.CreateSchema(ctx, "again-value", sr.Schema{Schema: jsonSchema + " ", Type: sr.TypeJSON})
	if err != nil || again.ID != 2 {
		t.Fatalf("same JSON schema: %+v %v", again, err)
	}
	if ctxs, err := cl.Contexts(ctx); err != nil || !slices.Equal(ctxs, []string{"."}) {
		t.Fatalf("contexts %v %v", ctxs, err)
	}
}

// Errors in Confluent's shape, as a plain HTTP client sees them.
func TestSchemaRegistryErrors(t *testing.T) {
	_, base := start(t, registryOn)
	ct := map[string]string{"Content-Type": "application/vnd.schemaregistry.v1+json"}
	check := func(method, path, body string, status, code int) {
		t.Helper()
		resp, got := do(t, method, base+path, body, ct)
		var e struct {
			Code    int    `json:"error_code"`
			Message string `json:"message"`
		}
		if resp.StatusCode != status || json.Unmarshal([]byte(got), &e) != nil || e.Code != code || e.Message == "" {
			t.Errorf("%s %s: %d %s, want %d with error_code %d", method, path, resp.StatusCode, got, status, code)
		}
		if ctype := resp.Header.Get("Content-Type"); ctype != "application/vnd.schemaregistry.v1+json" {
			t.Errorf("%s %s: content type %q", method, path, ctype)
		}
	}
	check("GET", "/subjects/nope/versions", "", 404, 40401)
	check("GET", "/subjects/nope/versions/1", "", 404, 40401)
	check("GET", "/schemas/ids/99", "", 404, 40403)
	check("GET", "/subjects/nope/versions/zero", "", 422, 42202)
	check("POST", "/subjects/s/versions", `{"schema":"{not json"}`, 422, 42201)
	check("POST", "/subjects/s/versions", `{"schema":`, 400, 40001)
	check("PUT", "/config", `{"compatibility":"SIDEWAYS"}`, 422, 42203)
	check("PUT", "/mode", `{"mode":"SIDEWAYS"}`, 422, 42204)
	check("DELETE", "/config/nope", "", 404, 40408)
	resp, body := do(t, "POST", base+"/subjects/s/versions", `{"schema":"\"string\""}`, map[string]string{"Content-Type": "application/json"})
	if resp.StatusCode != 200 || strings.TrimSpace(body) != `{"id":1}` {
		t.Fatalf("register with application/json: %d %s", resp.StatusCode, body)
	}
	check("GET", "/subjects/s/versions/2", "", 404, 40402)
	resp, body = do(t, "GET", base+"/subjects/s/versions/latest", "", nil)
	if resp.StatusCode != 200 || strings.TrimSpace(body) != `{"subject":"s","version":1,"id":1,"schema":"\"string\""}` {
		t.Fatalf("version: %d %s", resp.StatusCode, body)
	}
}

// The registry outlives its nodes: a new node reads it back from the
// topic, ids, versions, configs and modes alike.
func TestSchemaRegistryRestart(t *testing.T) {
	env, base := start(t, registryOn)
	cl := srClient(t, base)
	ctx := context.Background()
	for i, s := range []string{avroV1, jsonSchema} {
		typ := sr.TypeAvro
		if i == 1 {
			typ = sr.TypeJSON
		}
		if _, err := cl.RegisterSchema(ctx, fmt.Sprintf("s%d", i), sr.Schema{Schema: s, Type: typ}, -1, -1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cl.RegisterSchema(ctx, "s0", sr.Schema{Schema: avroV2}, -1, -1); err != nil {
		t.Fatal(err)
	}
	cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatFullTransitive}, "s1")
	cl.SetMode(ctx, sr.ModeReadOnly, "s1")

	env.RestartNode(t)
	b, _ := env.Node.Binding("http")
	cl = srClient(t, "http://"+b.(*httpmap.Server).Addr().String())
	if ss, err := cl.SchemaByVersion(ctx, "s0", 2); err != nil || ss.ID != 3 || ss.Schema.Schema != avroV2 {
		t.Fatalf("after a restart: %+v %v", ss, err)
	}
	if s, err := cl.SchemaByID(ctx, 2); err != nil || s.Schema != jsonSchema {
		t.Fatalf("id 2 after a restart: %+v %v", s, err)
	}
	if got := cl.Compatibility(ctx, "s1"); got[0].Level != sr.CompatFullTransitive {
		t.Fatalf("config after a restart %+v", got[0])
	}
	if got := cl.Mode(ctx, "s1"); got[0].Mode != sr.ModeReadOnly {
		t.Fatalf("mode after a restart %+v", got[0])
	}
	// The next id follows the highest.
	if id, err := cl.RegisterSchema(ctx, "s2", sr.Schema{Schema: protoSchema, Type: sr.TypeProtobuf}, -1, -1); err != nil || id != 4 {
		t.Fatalf("after a restart: id %d %v", id, err)
	}
}

// franz-go's Serde encodes and decodes through an id meshka gave.
func TestSchemaRegistrySerde(t *testing.T) {
	_, base := start(t, registryOn)
	cl := srClient(t, base)
	ctx := context.Background()
	ss, err := cl.CreateSchema(ctx, "events-value", sr.Schema{Schema: jsonSchema, Type: sr.TypeJSON})
	if err != nil {
		t.Fatal(err)
	}
	type event struct {
		A string `json:"a"`
	}
	var serde sr.Serde
	serde.Register(ss.ID, event{}, sr.EncodeFn(json.Marshal), sr.DecodeFn(json.Unmarshal))
	b, err := serde.Encode(event{A: "x"})
	if err != nil {
		t.Fatal(err)
	}
	id, _, err := serde.DecodeID(b)
	if err != nil || id != ss.ID {
		t.Fatalf("id %d %v", id, err)
	}
	// A consumer that knows only the id finds the schema in meshka.
	got, err := cl.SchemaByID(ctx, id)
	if err != nil || got.Schema != jsonSchema || got.Type != sr.TypeJSON {
		t.Fatalf("schema of %d: %+v %v", id, got, err)
	}
	var out event
	if err := serde.Decode(b, &out); err != nil || out.A != "x" {
		t.Fatalf("decoded %+v %v", out, err)
	}
}

// Any node serves the registry: a schema registered through one is read
// through the others, and registrations from all three at once get ids
// of their own.
func TestRemotingSchemaRegistryAcrossNodes(t *testing.T) {
	_, bases := startHTTPCluster(t, registryOn)
	ctx := context.Background()
	cls := make([]*sr.Client, len(bases))
	for i, b := range bases {
		cls[i] = srClient(t, b)
	}
	ss, err := cls[0].CreateSchema(ctx, "a-value", sr.Schema{Schema: avroV1})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 3; i++ {
		deadline := time.Now().Add(5 * time.Second)
		for {
			s, err1 := cls[i].SchemaByID(ctx, ss.ID)
			v, err2 := cls[i].SchemaByVersion(ctx, "a-value", 1)
			if err1 == nil && err2 == nil && s.Schema == avroV1 && v.ID == ss.ID {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d: %v %v", i, err1, err2)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	const each = 5
	var wg sync.WaitGroup
	ids := make([][]int, len(bases))
	errs := make([]error, len(bases))
	for i := range bases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				schemaText := fmt.Sprintf(`{"type":"record","name":"R%d_%d","fields":[{"name":"a","type":"string"}]}`, i, j)
				id, err := cls[i].RegisterSchema(ctx, fmt.Sprintf("n%d-%d", i, j), sr.Schema{Schema: schemaText}, -1, -1)
				if err != nil {
					errs[i] = err
					return
				}
				ids[i] = append(ids[i], id)
			}
		}()
	}
	wg.Wait()
	seen := map[int]bool{ss.ID: true}
	for i := range bases {
		if errs[i] != nil {
			t.Fatalf("node %d: %v", i, errs[i])
		}
		for _, id := range ids[i] {
			if seen[id] {
				t.Fatalf("id %d given twice: %v", id, ids)
			}
			seen[id] = true
		}
	}
	// Each node reads its own writes at once.
	for i := range bases {
		for j, id := range ids[i] {
			if v, err := cls[i].SchemaByVersion(ctx, fmt.Sprintf("n%d-%d", i, j), 1); err != nil || v.ID != id {
				t.Fatalf("node %d: %+v %v", i, v, err)
			}
		}
	}
}

// The registry outlives the whole cluster: every node stopped, then
// started again, the nodes read subjects, ids, versions and configs back
// from the topic, and the next id follows the highest.
func TestRemotingSchemaRegistryClusterRestart(t *testing.T) {
	c, bases := startHTTPCluster(t, registryOn)
	ctx := context.Background()
	ss, err := srClient(t, bases[0]).CreateSchema(ctx, "r-value", sr.Schema{Schema: avroV1})
	if err != nil {
		t.Fatal(err)
	}
	v2, err := srClient(t, bases[1]).CreateSchema(ctx, "r-value", sr.Schema{Schema: avroV2})
	if err != nil {
		t.Fatal(err)
	}
	js, err := srClient(t, bases[2]).CreateSchema(ctx, "j-value", sr.Schema{Schema: jsonSchema, Type: sr.TypeJSON})
	if err != nil {
		t.Fatal(err)
	}
	if res := srClient(t, bases[0]).SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatForward}, "j-value"); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}

	for i := range c.Nodes {
		c.Stop(t, i)
	}
	for i := range c.Nodes {
		c.Restart(t, i)
	}
	for i, n := range c.Nodes {
		b, _ := n.Binding("http")
		cl := srClient(t, "http://"+b.(*httpmap.Server).Addr().String())
		if s, err := cl.SchemaByVersion(ctx, "r-value", 2); err != nil || s.ID != v2.ID || s.Schema.Schema != avroV2 {
			t.Fatalf("node %d after the restart: r-value 2 %+v %v", i, s, err)
		}
		if s, err := cl.SchemaByID(ctx, js.ID); err != nil || s.Schema != jsonSchema {
			t.Fatalf("node %d after the restart: id %d %+v %v", i, js.ID, s, err)
		}
		if vs, err := cl.SubjectVersions(ctx, "r-value"); err != nil || len(vs) != 2 {
			t.Fatalf("node %d after the restart: versions %v %v", i, vs, err)
		}
		if got := cl.Compatibility(ctx, "j-value"); got[0].Err != nil || got[0].Level != sr.CompatForward {
			t.Fatalf("node %d after the restart: config %+v", i, got[0])
		}
	}
	b, _ := c.Nodes[2].Binding("http")
	id, err := srClient(t, "http://"+b.(*httpmap.Server).Addr().String()).RegisterSchema(ctx, "p-value",
		sr.Schema{Schema: protoSchema, Type: sr.TypeProtobuf}, -1, -1)
	if err != nil || id != max(ss.ID, v2.ID, js.ID)+1 {
		t.Fatalf("after the restart a new schema got id %d (%v), want %d", id, err, max(ss.ID, v2.ID, js.ID)+1)
	}
}

// A registry topic whose last offset holds no record (a transaction's
// commit marker here; compaction leaves such gaps too) still loads: a
// node started on it serves the registry rather than waiting for a
// record that never comes.
func TestSchemaRegistryLoadsPastAGap(t *testing.T) {
	env, base := start(t, registryOn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ss, err := srClient(t, base).CreateSchema(ctx, "g-value", sr.Schema{Schema: avroV1})
	if err != nil {
		t.Fatal(err)
	}
	// A record written in a transaction: its commit marker ends the log.
	txn := env.DirectClient(t, kgo.TransactionalID("gap-writer"), kgo.DefaultProduceTopic("_schemas"))
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := txn.ProduceSync(ctx, &kgo.Record{Key: []byte(`{"keytype":"NOOP","magic":0}`)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := txn.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	env.RestartNode(t)
	b, _ := env.Node.Binding("http")
	if s, err := srClient(t, "http://"+b.(*httpmap.Server).Addr().String()).SchemaByID(ctx, ss.ID); err != nil || s.Schema != avroV1 {
		t.Fatalf("after a restart on a log ending in a marker: %+v %v", s, err)
	}
}
