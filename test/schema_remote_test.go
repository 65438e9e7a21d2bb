package test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/internal/testcert"
	"github.com/meshka/meshka/internal/testenv"
	httpmap "github.com/meshka/meshka/mappers/http"
	"github.com/meshka/meshka/records"
	"github.com/meshka/meshka/schema/wire"
)

// userV2 evolves testenv.UserSchema with a field that has a default.
const userV2 = `{"type":"record","name":"User","fields":[{"name":"name","type":"string"},{"name":"age","type":"int"},{"name":"email","type":"string","default":""}]}`

func avroStr(b []byte, s string) []byte { return append(binary.AppendVarint(b, int64(len(s))), s...) }

// externalNode is a node whose topics rules read an external registry at
// url with the given Basic credentials: ext-users' values are Avro of
// subject users-value, ext-people's Avro of any subject; it serves
// HTTP too, with a produce route of raw values (POST /users) and one
// converting JSON with users-value's latest schema (POST /users-json).
func externalNode(t *testing.T, url, user, password string, opts ...testenv.Option) *testenv.Env {
	t.Helper()
	return testenv.Start(t, append([]testenv.Option{func(c *config.Config) {
		c.Schema.Registry.URL = config.URLs{url}
		if user != "" {
			c.Schema.Registry.BasicAuth = &config.BasicAuth{Username: user, Password: password}
		}
		c.Schema.Registry.Timeout = config.Duration(2 * time.Second)
		c.HTTP.Listen = "127.0.0.1:0"
		c.HTTP.Routes = []config.HTTPRoute{
			{Method: http.MethodPost, Path: "/users", Topic: "ext-users", Capability: config.CapProduce},
			{Method: http.MethodPost, Path: "/users-json", Topic: "ext-users", Capability: config.CapProduce,
				ValueFormat: config.ValueFormatJSON, ValueSchema: &config.HTTPValueSchema{Subject: "users-value"}},
		}
		avro := func(subject string) *config.FormatSpec {
			return &config.FormatSpec{Format: "avro", Subject: subject, SchemaID: "record"}
		}
		c.Topics = []config.TopicRule{
			{Topic: "ext-users", Value: avro("users-value"), ValidateProduce: true},
			{Topic: "ext-people", Value: avro(""), ValidateProduce: true},
		}
	}}, opts...)...)
}

// produceRaw sends one Produce request of batch to topic's partition 0
// and returns the partition's answer.
func produceRaw(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, batch []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0]
}

func batchOf(t *testing.T, values ...[]byte) []byte {
	t.Helper()
	recs := make([]records.Record, len(values))
	for i, v := range values {
		recs[i] = records.Record{Value: v}
	}
	b, err := records.EncodeBatch(recs, records.CodecNone)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func post(t *testing.T, ctx context.Context, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// TestExternalRegistryValidatesProduce: node A's built-in registry,
// requiring Basic credentials, is node B's external registry
// (schema.registry.url). Records produced to B with franz-go are checked
// against the schemas registered on A with franz-go's registry client,
// references included: valid ones written, invalid ones refused with
// INVALID_RECORD at their index. With A stopped, a record whose schema B
// has not read is not refused as invalid: Kafka answers the retriable
// NOT_ENOUGH_REPLICAS and HTTP 503, while records of schemas B has read
// still go through; a producer retrying gets through once A is back.
func TestExternalRegistryValidatesProduce(t *testing.T) {
	ctx := timeout(t, 120*time.Second)
	a, url := testenv.StartRegistry(t, "meshka-b", "b-secret")
	rcl, err := sr.NewClient(sr.URLs(url), sr.BasicAuth("meshka-b", "b-secret"))
	if err != nil {
		t.Fatal(err)
	}
	register := func(subject string, s sr.Schema) int {
		t.Helper()
		ss, err := rcl.CreateSchema(ctx, subject, s)
		if err != nil {
			t.Fatalf("register %s: %v", subject, err)
		}
		return ss.ID
	}
	userID := register("users-value", sr.Schema{Schema: testenv.UserSchema})
	register("address", sr.Schema{Schema: `{"type":"record","name":"Address","namespace":"geo","fields":[{"name":"city","type":"string"}]}`})
	personID := register("people-value", sr.Schema{
		Schema:     `{"type":"record","name":"Person","fields":[{"name":"name","type":"string"},{"name":"home","type":"geo.Address"}]}`,
		References: []sr.SchemaReference{{Name: "geo.Address", Subject: "address", Version: 1}}})

	b := externalNode(t, url, "meshka-b", "b-secret")
	httpB := "http://" + b.HTTPAddr(t)
	direct := b.DirectClient(t)
	createTopic(t, ctx, direct, "ext-users", 1, nil)
	createTopic(t, ctx, direct, "ext-people", 1, nil)
	cl := b.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0), kgo.RecordRetries(2), kgo.MetadataMinAge(100*time.Millisecond))

	person := avroStr(avroStr(wire.Append(nil, uint32(personID), nil), "ann"), "Oslo")
	for i, c := range []struct {
		topic string
		value []byte
		ok    bool
	}{
		{"ext-users", testenv.AvroUser(userID, "ann", 30), true},
		{"ext-users", testenv.AvroUser(userID, "ann", 30)[:7], false}, // cut short
		{"ext-users", testenv.AvroUser(99999, "ann", 30), false},      // no such id
		{"ext-users", person, false},                                  // not of subject users-value
		{"ext-people", person, true},                                  // a reference resolved
		{"ext-people", person[:len(person)-2], false},                 // its nested record cut
		{"ext-people", testenv.AvroUser(userID, "bob", 31), true},     // any subject
	} {
		err := cl.ProduceSync(ctx, &kgo.Record{Topic: c.topic, Value: c.value}).FirstErr()
		switch {
		case c.ok && err != nil:
			t.Fatalf("case %d (%s): %v", i, c.topic, err)
		case !c.ok && !errors.Is(err, kerr.InvalidRecord):
			t.Fatalf("case %d (%s): %v, want INVALID_RECORD", i, c.topic, err)
		}
	}
	p := produceRaw(t, ctx, cl, "ext-users", batchOf(t,
		testenv.AvroUser(userID, "a", 1), testenv.AvroUser(userID, "b", 2)[:6], testenv.AvroUser(userID, "c", 3), testenv.AvroUser(4242, "d", 4)))
	if p.ErrorCode != kerr.InvalidRecord.Code || len(p.ErrorRecords) != 2 || p.ErrorRecords[0].RelativeOffset != 1 || p.ErrorRecords[1].RelativeOffset != 3 {
		t.Fatalf("a batch with records 1 and 3 bad: code %d, records %+v", p.ErrorCode, p.ErrorRecords)
	}
	if m := *p.ErrorRecords[1].ErrorMessage; !strings.Contains(m, "schema id 4242") {
		t.Errorf("record 3: %s", m)
	}
	// HTTP produce checks the same way; value_format json encodes with
	// the external registry's schema.
	if code, body := post(t, ctx, httpB+"/users", string(testenv.AvroUser(userID, "h", 5)[:6])); code != http.StatusBadRequest {
		t.Errorf("POST /users, a cut record: %d %s, want 400", code, body)
	}
	if code, body := post(t, ctx, httpB+"/users-json", `{"name":"jo","age":7}`); code != http.StatusCreated {
		t.Fatalf("POST /users-json: %d %s", code, body)
	}

	// A schema B has not read yet, then A stops.
	v2 := register("users-value", sr.Schema{Schema: userV2})
	newUser := avroStr(testenv.AvroUser(v2, "eve", 40), "eve@example.com")
	a.Config.HTTP.Listen = a.HTTPAddr(t) // back on the same port
	a.StopNode(t)

	p = produceRaw(t, ctx, cl, "ext-users", batchOf(t, testenv.AvroUser(userID, "a", 1), newUser))
	if p.ErrorCode != kerr.NotEnoughReplicas.Code || p.ErrorMessage == nil || !strings.Contains(*p.ErrorMessage, "could not be checked") {
		t.Fatalf("registry stopped: code %d, message %v; want NOT_ENOUGH_REPLICAS, could not be checked", p.ErrorCode, p.ErrorMessage)
	}
	if len(p.ErrorRecords) != 0 {
		t.Errorf("registry stopped: record errors %+v", p.ErrorRecords)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "ext-users", Value: newUser}).FirstErr(); !errors.Is(err, kerr.NotEnoughReplicas) {
		t.Fatalf("registry stopped, franz-go: %v, want NOT_ENOUGH_REPLICAS after its retries", err)
	}
	if code, body := post(t, ctx, httpB+"/users", string(newUser)); code != http.StatusServiceUnavailable {
		t.Errorf("registry stopped, POST /users: %d %s, want 503", code, body)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "ext-users", Value: testenv.AvroUser(userID, "kept", 2)}).FirstErr(); err != nil {
		t.Errorf("registry stopped, a schema B has read: %v", err)
	}

	// A producer that keeps retrying gets through once A is back.
	patient := b.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0), kgo.RecordDeliveryTimeout(60*time.Second), kgo.MetadataMinAge(100*time.Millisecond))
	done := make(chan error, 1)
	go func() { done <- patient.ProduceSync(ctx, &kgo.Record{Topic: "ext-users", Value: newUser}).FirstErr() }()
	time.Sleep(300 * time.Millisecond)
	a.StartNode(t)
	if err := <-done; err != nil {
		t.Fatalf("registry back: %v", err)
	}

	// Upstream holds the valid records alone: ann, the batch's none,
	// jo (JSON), kept, eve.
	rd := b.DirectClient(t, kgo.ConsumeTopics("ext-users"), fromStart())
	got := consumeN(t, ctx, rd, 4)
	if string(got[0].Value) != string(testenv.AvroUser(userID, "ann", 30)) || string(got[1].Value) != string(testenv.AvroUser(userID, "jo", 7)) ||
		string(got[3].Value) != string(newUser) {
		t.Errorf("upstream holds %q", [][]byte{got[0].Value, got[1].Value, got[2].Value, got[3].Value})
	}
	short := timeout(t, 300*time.Millisecond)
	if more := rd.PollFetches(short).Records(); len(more) > 0 {
		t.Errorf("%d records more than the valid ones", len(more))
	}
	m, _ := scrape(t, b.Node)
	for outcome, least := range map[string]float64{"ok": 4, "no": 2, "unavailable": 3} {
		if v := value(m, "meshka_schema_registry_requests_total", map[string]string{"outcome": outcome}); v < least {
			t.Errorf("meshka_schema_registry_requests_total{outcome=%s} = %v, want at least %v", outcome, v, least)
		}
	}
}

// TestExternalRegistryWrongCredentials: a node whose schema.registry
// credentials the registry refuses does not blame the records: Kafka
// producers get NOT_ENOUGH_REPLICAS with the reason, not INVALID_RECORD.
func TestExternalRegistryWrongCredentials(t *testing.T) {
	ctx := timeout(t, 60*time.Second)
	_, url := testenv.StartRegistry(t, "meshka-b", "b-secret")
	rcl, err := sr.NewClient(sr.URLs(url), sr.BasicAuth("meshka-b", "b-secret"))
	if err != nil {
		t.Fatal(err)
	}
	ss, err := rcl.CreateSchema(ctx, "users-value", sr.Schema{Schema: testenv.UserSchema})
	if err != nil {
		t.Fatal(err)
	}
	b := externalNode(t, url, "meshka-b", "wrong")
	cl := b.Client(t, kgo.RecordRetries(1))
	createTopic(t, ctx, cl, "ext-users", 1, nil)
	p := produceRaw(t, ctx, cl, "ext-users", batchOf(t, testenv.AvroUser(ss.ID, "ann", 1)))
	if p.ErrorCode != kerr.NotEnoughReplicas.Code || p.ErrorMessage == nil || !strings.Contains(*p.ErrorMessage, "refused meshka's credentials (HTTP 401)") {
		t.Fatalf("code %d, message %v; want NOT_ENOUGH_REPLICAS, credentials refused", p.ErrorCode, p.ErrorMessage)
	}
}

// TestExternalRegistryTLS: node A serves its registry on a listener of
// its own (http.schema_registry.listen) under TLS that requires client
// certificates; node B reads it over https with schema.registry.tls (the
// CA and a client certificate), and its records are checked. Without a
// client certificate the registry cannot be read, which is not the
// records' fault.
func TestExternalRegistryTLS(t *testing.T) {
	ctx := timeout(t, 60*time.Second)
	dir := t.TempDir()
	ca, err := testcert.NewCA(dir, "registry-ca")
	if err != nil {
		t.Fatal(err)
	}
	server, err := ca.Server("registry", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	client, err := ca.Client("meshka-b", pkix.Name{CommonName: "meshka-b"})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := testenv.StartRegistry(t, "", "", func(c *config.Config) {
		c.HTTP.TLS = &config.TLS{CertFile: server.CertFile, KeyFile: server.KeyFile, CAFile: ca.CAFile, ClientAuth: "required"}
		c.HTTP.SchemaRegistry.Listen = "127.0.0.1:0"
	})
	hb, _ := a.Node.Binding("http")
	url := "https://" + hb.(*httpmap.Server).RegistryAddr().String()

	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	pair, err := tls.LoadX509KeyPair(client.CertFile, client.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	rcl, err := sr.NewClient(sr.URLs(url), sr.DialTLSConfig(&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}}))
	if err != nil {
		t.Fatal(err)
	}
	ss, err := rcl.CreateSchema(ctx, "users-value", sr.Schema{Schema: testenv.UserSchema})
	if err != nil {
		t.Fatalf("register over mTLS: %v", err)
	}

	b := externalNode(t, url, "", "", func(c *config.Config) {
		c.Schema.Registry.TLS = &config.TLS{CAFile: ca.CAFile, CertFile: client.CertFile, KeyFile: client.KeyFile}
	})
	cl := b.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0), kgo.RecordRetries(1))
	createTopic(t, ctx, cl, "ext-users", 1, nil)
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "ext-users", Value: testenv.AvroUser(ss.ID, "ann", 1)}).FirstErr(); err != nil {
		t.Fatalf("a valid record, the registry over mTLS: %v", err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "ext-users", Value: testenv.AvroUser(ss.ID, "ann", 1)[:6]}).FirstErr(); !errors.Is(err, kerr.InvalidRecord) {
		t.Fatalf("an invalid record, the registry over mTLS: %v, want INVALID_RECORD", err)
	}

	noCert := externalNode(t, url, "", "", func(c *config.Config) {
		c.Schema.Registry.TLS = &config.TLS{CAFile: ca.CAFile}
		c.Cluster.Remote = "" // alone, as B is: two nodes' remoting race in one process (internal/race)
	})
	ncl := noCert.Client(t)
	createTopic(t, ctx, ncl, "ext-users", 1, nil)
	p := produceRaw(t, ctx, ncl, "ext-users", batchOf(t, testenv.AvroUser(ss.ID, "ann", 1)))
	if p.ErrorCode != kerr.NotEnoughReplicas.Code {
		t.Fatalf("no client certificate: code %d, message %v; want NOT_ENOUGH_REPLICAS", p.ErrorCode, p.ErrorMessage)
	}
}
