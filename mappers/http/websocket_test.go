package httpmap_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/internal/testenv"
	"github.com/meshka/meshka/mappers/http/position"
)

var wsRoutes = []config.HTTPRoute{
	{Method: "GET", Path: "/ws", Topic: "events", Capability: "websocket"},
	{Method: "GET", Path: "/ws/{id}", Topic: "events", Capability: "websocket", Key: "${params.id}",
		Headers: map[string]string{"source": "ws"}},
}

// startWS is start with the WebSocket routes added.
func startWS(t testing.TB, opts ...testenv.Option) (*testenv.Env, string) {
	t.Helper()
	return start(t, append([]testenv.Option{func(cfg *config.Config) {
		cfg.HTTP.Routes = slices.Concat(cfg.HTTP.Routes, wsRoutes)
	}}, opts...)...)
}

func dialWS(t testing.TB, url string, opts *websocket.DialOptions) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (HTTP %d)", url, err, status)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

type envelope struct {
	Topic     string
	Partition int32
	Offset    int64
	Timestamp int64
	Key       *string
	Value     json.RawMessage
	Headers   map[string]string
	Position  string
}

func readFrame(t testing.TB, c *websocket.Conn) (websocket.MessageType, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	typ, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return typ, b
}

func readEnvelopes(t testing.TB, c *websocket.Conn, n int) []envelope {
	t.Helper()
	out := make([]envelope, 0, n)
	for len(out) < n {
		typ, b := readFrame(t, c)
		var e envelope
		if err := json.Unmarshal(b, &e); typ != websocket.MessageText || err != nil {
			t.Fatalf("frame %d: %v %s (%v)", len(out), typ, b, err)
		}
		out = append(out, e)
	}
	return out
}

// nothingMore checks that c gets no frame within d.
func nothingMore(t testing.TB, c *websocket.Conn, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	if typ, b, err := c.Read(ctx); err == nil {
		t.Fatalf("an unexpected frame: %v %s", typ, b)
	}
}

// A socket from latest gets the records produced after it opened, each a
// JSON envelope with where it is, its key (null without), its value as
// JSON (a string when it is not JSON, null for a delete), its headers and
// the position after it; ?format=raw gets the values as binary frames.
func TestWebSocketSubscribe(t *testing.T) {
	env, base := startWS(t)
	kc := env.Client(t)
	ctx := t.Context()
	if err := kc.ProduceSync(ctx, &kgo.Record{Topic: "events", Value: []byte("before")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	c := dialWS(t, base+"/ws", &websocket.DialOptions{Subprotocols: []string{"meshka.json"}})
	if c.Subprotocol() != "meshka.json" {
		t.Errorf("subprotocol %q", c.Subprotocol())
	}
	raw := dialWS(t, base+"/ws?format=raw", nil)
	sent := []*kgo.Record{
		{Topic: "events", Key: []byte("a"), Value: []byte(`{"n": 1}`), Headers: []kgo.RecordHeader{{Key: "unit", Value: []byte("C")}}},
		{Topic: "events", Value: []byte("plain \"text\"\n")},
		{Topic: "events", Key: []byte("gone")},
	}
	for _, r := range sent {
		if err := kc.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	got := readEnvelopes(t, c, 3)
	for i, e := range got {
		r := sent[i] // one producer, in order: same-key records aside, partitions interleave, so match by offset
		for _, s := range sent {
			if s.Partition == e.Partition && s.Offset == e.Offset {
				r = s
			}
		}
		if e.Topic != "events" || e.Partition != r.Partition || e.Offset != r.Offset || e.Timestamp != r.Timestamp.UnixMilli() {
			t.Errorf("envelope %+v, record %+v", e, r)
		}
		if pos, err := position.Decode(e.Position); err != nil || pos[e.Partition] != e.Offset+1 || len(pos) != 3 {
			t.Errorf("position %q: %v %v", e.Position, pos, err)
		}
		switch {
		case r == sent[0]:
			if e.Key == nil || *e.Key != "a" || string(e.Value) != `{"n": 1}` || e.Headers["unit"] != "C" || len(e.Headers) != 1 {
				t.Errorf("JSON record: key %v value %s headers %v", e.Key, e.Value, e.Headers)
			}
		case r == sent[1]:
			var s string
			if e.Key != nil || json.Unmarshal(e.Value, &s) != nil || s != "plain \"text\"\n" || len(e.Headers) != 0 {
				t.Errorf("text record: key %v value %s headers %v", e.Key, e.Value, e.Headers)
			}
		default:
			if e.Key == nil || *e.Key != "gone" || string(e.Value) != "null" {
				t.Errorf("delete: key %v value %s", e.Key, e.Value)
			}
		}
	}
	var values []string
	for range 3 {
		typ, b := readFrame(t, raw)
		if typ != websocket.MessageBinary {
			t.Fatalf("raw frame %v %s", typ, b)
		}
		values = append(values, string(b))
	}
	slices.Sort(values)
	if want := []string{"", "plain \"text\"\n", `{"n": 1}`}; !slices.Equal(values, want) {
		t.Errorf("raw values %q, want %q", values, want)
	}
}

// A socket opened with ?from= the position of an envelope gets exactly
// the records after it, none lost or repeated.
func TestWebSocketResume(t *testing.T) {
	env, base := startWS(t)
	kc := env.Client(t)
	ctx := t.Context()
	produce := func(from, to int) {
		for i := from; i < to; i++ {
			if err := kc.ProduceSync(ctx, &kgo.Record{Topic: "events", Key: []byte(fmt.Sprint("k", i%5)), Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	c := dialWS(t, base+"/ws", nil)
	produce(0, 10)
	first := readEnvelopes(t, c, 5)
	c.Close(websocket.StatusNormalClosure, "")
	produce(10, 20)
	c2 := dialWS(t, base+"/ws?from="+first[len(first)-1].Position, nil)
	rest := readEnvelopes(t, c2, 15)
	nothingMore(t, c2, 300*time.Millisecond)
	seen := map[string]int{}
	for _, e := range append(first, rest...) {
		seen[string(e.Value)]++
	}
	for i := range 20 {
		if seen[fmt.Sprint(i)] != 1 {
			t.Errorf("record %d came %d times", i, seen[fmt.Sprint(i)])
		}
	}
	c3 := dialWS(t, base+"/ws?from=earliest&format=raw", nil)
	for range 20 {
		readFrame(t, c3) // from the start: all 20
	}
}

// Every frame a client sends is a record: the route's key and headers,
// the content type of the frame (JSON text, other text, binary); each
// gets an ack frame with its number, once written. A route without a
// key takes ?key=.
func TestWebSocketPublish(t *testing.T) {
	env, base := startWS(t)
	ctx := t.Context()
	c := dialWS(t, base+"/ws/order-7?subscribe=false", nil)
	frames := []struct {
		typ   websocket.MessageType
		value string
		ct    string
	}{
		{websocket.MessageText, `{"total":12}`, "application/json"},
		{websocket.MessageText, "hello", "text/plain"},
		{websocket.MessageBinary, "\x00\x01\xff", "application/octet-stream"},
	}
	for _, f := range frames {
		if err := c.Write(ctx, f.typ, []byte(f.value)); err != nil {
			t.Fatal(err)
		}
	}
	type ack struct {
		Ack       int64
		Partition int32
		Offset    int64
		Error     string
	}
	acks := map[int64]ack{}
	for i := range frames {
		typ, b := readFrame(t, c)
		var a ack
		if err := json.Unmarshal(b, &a); typ != websocket.MessageText || err != nil || a.Ack != int64(i+1) || a.Offset < 0 || a.Error != "" {
			t.Fatalf("ack %d: %v %s (%v)", i+1, typ, b, err)
		}
		acks[a.Ack] = a
	}
	k := dialWS(t, base+"/ws?subscribe=false&key=from-query", nil)
	if err := k.Write(ctx, websocket.MessageText, []byte("keyed")); err != nil {
		t.Fatal(err)
	}
	readFrame(t, k)

	cl, err := kgo.NewClient(kgo.SeedBrokers(env.Upstream.ListenAddrs()...), kgo.ConsumeTopics("events"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < 4 && pctx.Err() == nil {
		cl.PollFetches(pctx).EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
	}
	if len(recs) != 4 {
		t.Fatalf("%d records upstream, want 4", len(recs))
	}
	for _, r := range recs {
		hs := map[string]string{}
		for _, h := range r.Headers {
			hs[h.Key] = string(h.Value)
		}
		if string(r.Key) == "from-query" {
			if string(r.Value) != "keyed" || hs["content-type"] != "text/plain" {
				t.Errorf("?key= record %q %v", r.Value, hs)
			}
			continue
		}
		i := slices.IndexFunc(frames, func(f struct {
			typ   websocket.MessageType
			value string
			ct    string
		}) bool {
			return f.value == string(r.Value)
		})
		if i < 0 || string(r.Key) != "order-7" || hs["content-type"] != frames[i].ct || hs["source"] != "ws" {
			t.Errorf("record key %q value %q headers %v", r.Key, r.Value, hs)
			continue
		}
		if a := acks[int64(i+1)]; a.Partition != r.Partition || a.Offset != r.Offset {
			t.Errorf("frame %d acked at %d/%d, written at %d/%d", i+1, a.Partition, a.Offset, r.Partition, r.Offset)
		}
	}
}

// A publish-only socket gets its acks and no records.
func TestWebSocketPublishOnly(t *testing.T) {
	env, base := startWS(t)
	kc := env.Client(t)
	c := dialWS(t, base+"/ws?subscribe=false", nil)
	for i := range 3 {
		if err := kc.ProduceSync(t.Context(), &kgo.Record{Topic: "events", Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Write(t.Context(), websocket.MessageText, []byte("mine")); err != nil {
		t.Fatal(err)
	}
	if _, b := readFrame(t, c); !bytes.HasPrefix(b, []byte(`{"ack":1,`)) {
		t.Fatalf("frame %s, want the ack", b)
	}
	nothingMore(t, c, 500*time.Millisecond)
}

// Bad input is refused: a frame over http.max_body_bytes closes with
// 1009; a bad from, format or subscribe, or only subprotocols meshka
// does not speak, are 400 before the upgrade; a page of another origin
// is 403.
func TestWebSocketRefusals(t *testing.T) {
	_, base := startWS(t)
	c := dialWS(t, base+"/ws", nil)
	if err := c.Write(t.Context(), websocket.MessageBinary, bytes.Repeat([]byte("a"), 2000)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Errorf("oversize frame: %v, want close 1009", err)
	}
	for _, tc := range []struct {
		query  string
		header http.Header
		status int
	}{
		{"?from=not-a-position", nil, 400},
		{"?format=xml", nil, 400},
		{"?subscribe=maybe", nil, 400},
		{"", http.Header{"Sec-WebSocket-Protocol": {"mqtt"}}, 400},
		{"", http.Header{"Origin": {"https://elsewhere.example"}}, 403},
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		c, resp, err := websocket.Dial(ctx, base+"/ws"+tc.query, &websocket.DialOptions{HTTPHeader: tc.header})
		cancel()
		if err == nil {
			c.CloseNow()
		}
		if resp == nil || resp.StatusCode != tc.status {
			t.Errorf("%s %v: %v %v, want %d", tc.query, tc.header, err, resp, tc.status)
		}
	}
}

// With http.cors_origins set, a page of a listed origin may open a
// socket; one of another origin may not.
func TestWebSocketOrigins(t *testing.T) {
	_, base := startWS(t, func(cfg *config.Config) { cfg.HTTP.CORSOrigins = []string{"https://app.example.com"} })
	dialWS(t, base+"/ws", &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"https://app.example.com"}}})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, base+"/ws", &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"http://app.example.com"}}})
	if err == nil || resp == nil || resp.StatusCode != 403 {
		t.Errorf("another origin: %v %v, want 403", err, resp)
	}
}

// The node stopping closes its sockets with 1001.
func TestWebSocketNodeStops(t *testing.T) {
	env, base := startWS(t)
	closed := make(chan error, 2)
	for _, u := range []string{base + "/ws", base + "/ws?subscribe=false"} {
		c := dialWS(t, u, nil)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, _, err := c.Read(ctx) // reading, as clients do, so the close handshake completes
			closed <- err
		}()
	}
	env.RestartNode(t)
	for range 2 {
		if err := <-closed; websocket.CloseStatus(err) != websocket.StatusGoingAway {
			t.Errorf("at stop: %v, want close 1001", err)
		}
	}
}

// A client that takes frames slower than records come is paced, not
// closed: one far more records behind than its queue holds still gets
// every record, in order, on the same socket.
func TestWebSocketPacesASlowClient(t *testing.T) {
	if testing.Short() {
		t.Skip("produces tens of megabytes")
	}
	env, base := startWS(t)
	// A small receive buffer, so that what the kernel holds for the
	// client is far less than what it falls behind.
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetReadBuffer(64 << 10)
		}
		return c, err
	}
	c := dialWS(t, base+"/ws?format=raw", &websocket.DialOptions{HTTPClient: &http.Client{Transport: &http.Transport{DialContext: dial}}})
	c.SetReadLimit(-1)
	const n, size = 3000, 8 << 10
	kc := env.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	value := func(i int) []byte {
		v := bytes.Repeat([]byte{'.'}, size)
		copy(v, fmt.Sprintf("%08d", i))
		return v
	}
	for i := range n {
		kc.Produce(t.Context(), &kgo.Record{Topic: "events", Partition: 0, Value: value(i)}, nil)
	}
	if err := kc.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the client reads nothing meanwhile
	for i := range n {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		_, b, err := c.Read(ctx)
		cancel()
		if err != nil {
			t.Fatalf("after %d records: %v", i, err)
		}
		if want := fmt.Sprintf("%08d", i); string(b[:8]) != want {
			t.Fatalf("record %d: %s, want %s", i, b[:8], want)
		}
	}
	nothingMore(t, c, 300*time.Millisecond)
}
