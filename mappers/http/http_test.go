package httpmap_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/internal/testenv"
	httpmap "github.com/meshka/meshka/mappers/http"
)

var routes = []config.HTTPRoute{
	{Method: "POST", Path: "/events/{id}", Topic: "events", Capability: "produce", Key: "${params.id}",
		Headers: map[string]string{"source": "${header.x-source}"}},
	{Method: "GET", Path: "/events", Topic: "events", Capability: "fetch"},
	{Method: "GET", Path: "/events/{id}", Topic: "events", Capability: "fetch", Key: "${params.id}"},
	{Method: "GET", Path: "/stream", Topic: "events", Capability: "stream"},
	{Method: "GET", Path: "/some", Topic: "events", Capability: "fetch", Filters: []config.HTTPFilter{{Key: "a"}, {Key: "c"}}},
	{Method: "GET", Path: "/items/{id}", Topic: "items", Capability: "item", Key: "${params.id}"},
	{Method: "PUT", Path: "/items/{id}", Topic: "items", Capability: "item", Key: "${params.id}"},
	{Method: "DELETE", Path: "/items/{id}", Topic: "items", Capability: "item", Key: "${params.id}"},
	{Method: "GET", Path: "/items", Topic: "items", Capability: "item"},
}

func start(t testing.TB, opts ...testenv.Option) (*testenv.Env, string) {
	t.Helper()
	env := testenv.StartWith(t, []kfake.Opt{kfake.SeedTopics(3, "events", "items")}, append([]testenv.Option{func(cfg *config.Config) {
		cfg.HTTP.Listen = "127.0.0.1:0"
		cfg.HTTP.Routes = routes
		cfg.HTTP.MaxBodyBytes = 1024
	}}, opts...)...)
	b, ok := env.Node.Binding("http")
	if !ok {
		t.Fatal("no HTTP binding")
	}
	return env, "http://" + b.(*httpmap.Server).Addr().String()
}

func do(t testing.TB, method, url, body string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// A POST is a record: key from the path, the content type and a header
// from the request; 201 says where it went; a Kafka client reads it.
func TestProduce(t *testing.T) {
	env, base := start(t)
	resp, body := do(t, "POST", base+"/events/order-7", `{"total":12}`, map[string]string{"Content-Type": "application/json", "X-Source": "web"})
	if resp.StatusCode != 201 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	var p struct {
		Topic     string
		Partition int32
		Offset    int64
	}
	if err := json.Unmarshal([]byte(body), &p); err != nil || p.Topic != "events" || p.Offset < 0 {
		t.Fatalf("answer %s (%v)", body, err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.Upstream.ListenAddrs()...), kgo.ConsumeTopics("events"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var rec *kgo.Record
	for rec == nil && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { rec = r })
	}
	if rec == nil || string(rec.Key) != "order-7" || string(rec.Value) != `{"total":12}` || rec.Partition != p.Partition || rec.Offset != p.Offset {
		t.Fatalf("record %+v", rec)
	}
	hs := map[string]string{}
	for _, h := range rec.Headers {
		hs[h.Key] = string(h.Value)
	}
	if hs["content-type"] != "application/json" || hs["source"] != "web" {
		t.Fatalf("headers %v", hs)
	}
}

// Bad requests get a clear status: a body over http.max_body_bytes 413,
// an unknown path 404, a method the path does not take 405.
func TestProduceRefusals(t *testing.T) {
	_, base := start(t)
	if resp, body := do(t, "POST", base+"/events/x", strings.Repeat("a", 2000), nil); resp.StatusCode != 413 {
		t.Errorf("oversize: %d %s", resp.StatusCode, body)
	}
	if resp, _ := do(t, "GET", base+"/nowhere", "", nil); resp.StatusCode != 404 {
		t.Errorf("unknown route: %d", resp.StatusCode)
	}
	if resp, _ := do(t, "PUT", base+"/events", "", nil); resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET" {
		t.Errorf("wrong method: %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// GET merges the topic into a JSON array (a key's records only, on a
// keyed route); its ETag answers 304 while nothing is new, and a long
// poll returns once something is.
func TestFetch(t *testing.T) {
	env, base := start(t)
	kc, err := kgo.NewClient(kgo.SeedBrokers(env.Node.Addr().String()))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	ctx := t.Context()
	for i, k := range []string{"a", "b", "a"} {
		if err := kc.ProduceSync(ctx, &kgo.Record{Topic: "events", Key: []byte(k), Value: []byte(fmt.Sprintf(`{"n":%d}`, i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	kc.ProduceSync(ctx, &kgo.Record{Topic: "events", Key: []byte("a"), Value: []byte("plain text")})
	resp, body := do(t, "GET", base+"/events/a", "", nil)
	if resp.StatusCode != 200 || strings.TrimSpace(body) != `[{"n":0},{"n":2},"plain text"]` {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	resp, body = do(t, "GET", base+"/events", "", nil)
	var all []any
	if err := json.Unmarshal([]byte(body), &all); err != nil || len(all) != 4 {
		t.Fatalf("all: %s (%v)", body, err)
	}
	tag := resp.Header.Get("ETag")
	if _, body := do(t, "GET", base+"/some", "", nil); strings.TrimSpace(body) != `[{"n":0},{"n":2},"plain text"]` {
		t.Fatalf("filters a or c: %s", body)
	}
	if resp, _ := do(t, "GET", base+"/events", "", map[string]string{"If-None-Match": tag}); resp.StatusCode != 304 {
		t.Fatalf("unchanged: %d, want 304", resp.StatusCode)
	}
	go func() {
		time.Sleep(500 * time.Millisecond)
		kc.ProduceSync(context.Background(), &kgo.Record{Topic: "events", Key: []byte("c"), Value: []byte(`{"n":9}`)})
	}()
	resp, body = do(t, "GET", base+"/events", "", map[string]string{"If-None-Match": tag, "Prefer": "wait=10"})
	if resp.StatusCode != 200 || !strings.Contains(body, `{"n":9}`) || resp.Header.Get("ETag") == tag {
		t.Fatalf("long poll: %d %s", resp.StatusCode, body)
	}
	if resp, _ := do(t, "GET", base+"/events", "", map[string]string{"If-None-Match": resp.Header.Get("ETag"), "Prefer": "wait=1"}); resp.StatusCode != 304 {
		t.Fatalf("long poll with nothing new: %d, want 304", resp.StatusCode)
	}
}

// sse reads a stream's events: id, event and data.
type event struct{ id, event, data string }

func readEvents(t testing.TB, r *bufio.Reader, n int) []event {
	t.Helper()
	var out []event
	var e event
	for len(out) < n {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("after %d events: %v", len(out), err)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if e.data != "" || e.event != "" {
				out = append(out, e)
			}
			e = event{}
		case strings.HasPrefix(line, "id: "):
			e.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			e.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			e.data = line[6:]
		}
	}
	return out
}

// SSE: events as records come; a client that reconnects with the last
// id it got gets exactly what came after, none lost or repeated; a
// delete is event: delete; a bad id is 400.
func TestStreamResumes(t *testing.T) {
	env, base := start(t)
	kc, err := kgo.NewClient(kgo.SeedBrokers(env.Node.Addr().String()))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	// A stream that stops giving events fails the test, not hangs it.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/stream", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %v %+v", err, resp)
	}
	rd := bufio.NewReader(resp.Body)
	produce := func(from, to int) {
		for i := from; i < to; i++ {
			if err := kc.ProduceSync(ctx, &kgo.Record{Topic: "events", Key: []byte(fmt.Sprint("k", i%5)), Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	produce(0, 10)
	first := readEvents(t, rd, 5)
	resp.Body.Close() // the client drops the stream after 5 events
	produce(10, 20)
	kc.ProduceSync(ctx, &kgo.Record{Topic: "events", Key: []byte("gone"), Value: nil})
	req, _ = http.NewRequestWithContext(ctx, "GET", base+"/stream", nil)
	req.Header.Set("Last-Event-ID", first[len(first)-1].id)
	resp2, err := http.DefaultClient.Do(req)
	if err != nil || resp2.StatusCode != 200 {
		t.Fatalf("resume: %v %+v", err, resp2)
	}
	defer resp2.Body.Close()
	rest := readEvents(t, bufio.NewReader(resp2.Body), 16)
	seen := map[string]int{}
	for _, e := range append(first, rest...) {
		if e.event == "delete" {
			if e.data != "gone" {
				t.Errorf("delete of %q", e.data)
			}
			continue
		}
		seen[e.data]++
	}
	for i := range 20 {
		if seen[fmt.Sprint(i)] != 1 {
			t.Errorf("record %d came %d times", i, seen[fmt.Sprint(i)])
		}
	}
	if resp, _ := do(t, "GET", base+"/stream", "", map[string]string{"Last-Event-ID": "not-an-id"}); resp.StatusCode != 400 {
		t.Errorf("bad Last-Event-ID: %d, want 400", resp.StatusCode)
	}
}

// A client that reads slower than the records come is paced, not cut
// off: a stream far more records behind than its queue holds still gives
// every event, in order, without a reconnect.
func TestStreamPacesASlowClient(t *testing.T) {
	env, base := start(t)
	kc, err := kgo.NewClient(kgo.SeedBrokers(env.Node.Addr().String()), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/stream", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stream: %v %+v", err, resp)
	}
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	// 16 MiB of events, more than the sockets buffer: the stream waits
	// for the client while it reads nothing.
	const n, size = 16 << 10, 1 << 10
	pad := strings.Repeat("x", size)
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: "events", Partition: 0, Value: []byte(fmt.Sprintf("%06d%s", i, pad))})
	}
	if err := kc.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the client reads nothing meanwhile
	for i, e := range readEvents(t, rd, n) {
		if want := fmt.Sprintf("%06d", i); !strings.HasPrefix(e.data, want) {
			t.Fatalf("event %d: %.6s, want %s", i, e.data, want)
		}
	}
}

// Items over a compacted topic: PUT creates (201) and replaces (204),
// GET is the latest value with its ETag (304 with If-None-Match), If-Match
// makes a write conditional (412 when the item moved on), DELETE writes a
// tombstone (404 after), GET without a key lists.
func TestItems(t *testing.T) {
	env, base := start(t)
	resp, body := do(t, "PUT", base+"/items/u1", `{"name":"ada"}`, map[string]string{"Content-Type": "application/json"})
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	tag1 := resp.Header.Get("ETag")
	resp, body = do(t, "GET", base+"/items/u1", "", nil)
	if resp.StatusCode != 200 || body != `{"name":"ada"}` || resp.Header.Get("ETag") != tag1 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("get: %d %s %v", resp.StatusCode, body, resp.Header)
	}
	if resp, _ := do(t, "GET", base+"/items/u1", "", map[string]string{"If-None-Match": tag1}); resp.StatusCode != 304 {
		t.Fatalf("unchanged get: %d", resp.StatusCode)
	}
	resp, _ = do(t, "PUT", base+"/items/u1", `{"name":"ada lovelace"}`, map[string]string{"If-Match": tag1})
	if resp.StatusCode != 204 {
		t.Fatalf("conditional replace: %d", resp.StatusCode)
	}
	if resp, body := do(t, "PUT", base+"/items/u1", `{"name":"stale"}`, map[string]string{"If-Match": tag1}); resp.StatusCode != 412 {
		t.Fatalf("stale If-Match: %d %s", resp.StatusCode, body)
	}
	do(t, "PUT", base+"/items/u2", `"second"`, nil)
	// a Kafka producer's write is an item too
	kc, err := kgo.NewClient(kgo.SeedBrokers(env.Node.Addr().String()))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	if err := kc.ProduceSync(t.Context(), &kgo.Record{Topic: "items", Key: []byte("u3"), Value: []byte(`3`)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body = do(t, "GET", base+"/items", "", nil)
		if body == `[{"key":"u1","value":{"name":"ada lovelace"}},{"key":"u2","value":"second"},{"key":"u3","value":3}]`+"\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("list: %s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if resp, _ := do(t, "DELETE", base+"/items/u2", "", nil); resp.StatusCode != 204 {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	if resp, _ := do(t, "GET", base+"/items/u2", "", nil); resp.StatusCode != 404 {
		t.Fatalf("deleted get: %d", resp.StatusCode)
	}
	if resp, _ := do(t, "DELETE", base+"/items/u2", "", nil); resp.StatusCode != 404 {
		t.Fatalf("delete again: %d", resp.StatusCode)
	}
}

// responder answers every request record on requests with a reply on
// replies: the body upper-cased, status 201, as a Kafka service would.
func responder(t testing.TB, env *testenv.Env) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.Upstream.ListenAddrs()...), kgo.ConsumeTopics("requests"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	respond(t, cl, nil, nil)
}

// respond answers the request records cl consumes, as responder does,
// until the test ends, and closes cl then. With partitions the replies
// go to those partitions in turn (cl must have kgo.ManualPartitioner),
// else where cl's partitioner puts them. A request whose body is a key
// of hold is answered once that channel is closed.
func respond(t testing.TB, cl *kgo.Client, partitions []int32, hold map[string]chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var held sync.WaitGroup
	t.Cleanup(func() { cancel(); <-done; held.Wait(); cl.Close() })
	go func() {
		defer close(done)
		n := 0
		for ctx.Err() == nil {
			cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
				var corr, to []byte
				for _, h := range r.Headers {
					switch h.Key {
					case "correlation-id":
						corr = h.Value
					case "reply-to":
						to = h.Value
					}
				}
				reply := &kgo.Record{Topic: string(to), Value: []byte(strings.ToUpper(string(r.Value))),
					Headers: []kgo.RecordHeader{{Key: "correlation-id", Value: corr}, {Key: "status", Value: []byte("201")},
						{Key: "content-type", Value: []byte("text/plain")}}}
				if len(partitions) > 0 {
					reply.Partition = partitions[n%len(partitions)]
					n++
				}
				if gate, ok := hold[string(r.Value)]; ok {
					held.Go(func() {
						select {
						case <-gate:
							cl.Produce(ctx, reply, nil)
						case <-ctx.Done():
						}
					})
					return
				}
				cl.Produce(ctx, reply, nil)
			})
		}
	}()
}

// Request-reply: each request's answer is its own reply (none
// mismatched, many at once), with the status and content type the
// reply's headers set; async answers 202 with a Location that returns
// the reply.
func TestRequestReply(t *testing.T) {
	env := testenv.StartWith(t, []kfake.Opt{kfake.SeedTopics(3, "requests", "replies")}, func(cfg *config.Config) {
		cfg.HTTP.Listen = "127.0.0.1:0"
		cfg.HTTP.Routes = []config.HTTPRoute{{Method: "POST", Path: "/rpc", Topic: "requests", Capability: "request", ReplyTo: "replies",
			Async: true, Timeout: config.Duration(20 * time.Second)}}
	})
	b, _ := env.Node.Binding("http")
	base := "http://" + b.(*httpmap.Server).Addr().String()
	responder(t, env)
	const n, workers = 1000, 50
	errs := make(chan error, n)
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	for range workers {
		go func() {
			for i := range next {
				errs <- ask(t, base, i)
			}
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	resp, _ := do(t, "POST", base+"/rpc", "later", map[string]string{"Prefer": "respond-async"})
	loc := resp.Header.Get("Location")
	if resp.StatusCode != 202 || !strings.HasPrefix(loc, "/rpc/") {
		t.Fatalf("async: %d Location %q", resp.StatusCode, loc)
	}
	resp, body := do(t, "GET", base+loc, "", map[string]string{"Prefer": "wait=10"})
	if resp.StatusCode != 201 || body != "LATER" {
		t.Fatalf("async reply: %d %q", resp.StatusCode, body)
	}
}

// ask makes one request and checks that its reply is its own.
func ask(t testing.TB, base string, i int) error {
	want := fmt.Sprint("hello ", i)
	req, err := http.NewRequest("POST", base+"/rpc", strings.NewReader(want))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 201 || string(body) != strings.ToUpper(want) || resp.Header.Get("Content-Type") != "text/plain" {
		return fmt.Errorf("request %d: %d %q", i, resp.StatusCode, body)
	}
	return nil
}

func basicAuth(user, password string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
}

// A produce retried with the same Idempotency-Key is answered as the
// first was and written once.
func TestIdempotencyKey(t *testing.T) {
	env, base := start(t)
	h := map[string]string{"Idempotency-Key": "req-42"}
	r1, b1 := do(t, "POST", base+"/events/k", "once", h)
	r2, b2 := do(t, "POST", base+"/events/k", "once", h)
	if r1.StatusCode != 201 || r2.StatusCode != 201 || b1 != b2 || r2.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("first %d %s; retry %d %s %v", r1.StatusCode, b1, r2.StatusCode, b2, r2.Header)
	}
	do(t, "POST", base+"/events/k", "other", map[string]string{"Idempotency-Key": "req-43"})
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.Upstream.ListenAddrs()...), kgo.ConsumeTopics("events"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var got []string
	for ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if len(got) != 2 {
		t.Fatalf("records %q, want once and other", got)
	}
}

// Slow headers (a client that never finishes them) are cut off by
// http.read_header_timeout; other clients are served meanwhile.
func TestSlowHeadersCutOff(t *testing.T) {
	_, base := start(t, func(cfg *config.Config) { cfg.HTTP.ReadHeaderTimeout = config.Duration(300 * time.Millisecond) })
	nc, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.Write([]byte("GET /events HTTP/1.1\r\nHost: x\r\nX-Slow: "))
	if resp, _ := do(t, "GET", base+"/events", "", nil); resp.StatusCode != 200 {
		t.Fatalf("another client: %d", resp.StatusCode)
	}
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(nc)
	if err != nil {
		t.Fatalf("the slow connection was not closed: %v", err)
	}
	if len(b) > 0 && !strings.Contains(string(b), "408") {
		t.Fatalf("answered %q", b)
	}
}

// /openapi.json documents the configured routes.
func TestOpenAPI(t *testing.T) {
	_, base := start(t)
	resp, body := do(t, "GET", base+"/openapi.json", "", nil)
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &doc) != nil || doc.OpenAPI != "3.1.0" {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if _, ok := doc.Paths["/events/{id}"]["post"]; !ok {
		t.Fatalf("no POST /events/{id} in %s", body)
	}
	if !strings.Contains(string(doc.Paths["/events/{id}"]["post"]), `"name": "id"`) {
		t.Errorf("no id parameter: %s", doc.Paths["/events/{id}"]["post"])
	}
}
