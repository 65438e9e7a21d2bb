package httpmap_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/internal/testenv"
	httpmap "github.com/meshka/meshka/mappers/http"
)

// startChecked is a node serving the routes, WebSockets and the
// Confluent API, whose topics rules say the values of events and items
// are Avro records of subject users-value; it returns the HTTP base and
// the schema's id.
func startChecked(t *testing.T) (*testenv.Env, string, int) {
	t.Helper()
	src, id := testenv.AvroUsers(t, "users-value")
	avro := &config.FormatSpec{Format: "avro", Subject: "users-value", SchemaID: "record"}
	env := testenv.StartWithSchemasUpstream(t, src, []kfake.Opt{kfake.SeedTopics(3, "events", "items")}, func(cfg *config.Config) {
		cfg.HTTP.Listen = "127.0.0.1:0"
		cfg.HTTP.Routes = slices.Concat(routes, wsRoutes)
		cfg.HTTP.MaxBodyBytes = 1024
		cfg.HTTP.Confluent = true
		cfg.Topics = []config.TopicRule{
			{Topic: "events", Value: avro, ValidateProduce: true},
			{Topic: "items", Value: avro, ValidateProduce: true},
		}
	})
	b, ok := env.Node.Binding("http")
	if !ok {
		t.Fatal("no HTTP binding")
	}
	return env, "http://" + b.(*httpmap.Server).Addr().String(), id
}

// A produce, an item PUT, and the Confluent API's produces of a record the
// topics rules refuse are answered 400 with the reason (v3: error_code
// 40002, v2: that code in the record's offset); only the valid records
// are written.
func TestProduceInvalidRecord(t *testing.T) {
	env, base, id := startChecked(t)
	valid := string(testenv.AvroUser(id, "ann", 30))
	if resp, body := do(t, "POST", base+"/events/a", valid, nil); resp.StatusCode != 201 {
		t.Fatalf("valid produce: %d %s", resp.StatusCode, body)
	}
	resp, body := do(t, "POST", base+"/events/b", "not avro", nil)
	if resp.StatusCode != 400 || resp.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(body, "invalid record: value") {
		t.Errorf("invalid produce: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if resp, body := do(t, "PUT", base+"/items/x", "not avro", nil); resp.StatusCode != 400 || !strings.Contains(body, "invalid record") {
		t.Errorf("invalid item: %d %s", resp.StatusCode, body)
	}
	if resp, body := do(t, "PUT", base+"/items/x", valid, nil); resp.StatusCode != 201 {
		t.Errorf("valid item: %d %s", resp.StatusCode, body)
	}

	v3 := base + "/v3/clusters/" + clusterID + "/topics/events/records"
	jsonCT := map[string]string{"Content-Type": "application/json"}
	b64 := base64.StdEncoding.EncodeToString
	resp, body = do(t, "POST", v3, `{"value": {"type": "BINARY", "data": "`+b64([]byte("not avro"))+`"}}`, jsonCT)
	wantError(t, "v3 invalid record", resp, body, 400, 40002, "invalid record: value")
	if resp, body := do(t, "POST", v3, `{"value": {"type": "BINARY", "data": "`+b64([]byte(valid))+`"}}`, jsonCT); resp.StatusCode != 200 {
		t.Errorf("v3 valid record: %d %s", resp.StatusCode, body)
	}

	resp, body = do(t, "POST", base+"/topics/events", fmt.Sprintf(`{"records": [{"value": %q}, {"value": %q}]}`, b64([]byte(valid)), b64([]byte("x"))),
		map[string]string{"Content-Type": "application/vnd.kafka.binary.v2+json"})
	var v2 struct {
		Offsets []struct {
			ErrorCode *int    `json:"error_code"`
			Error     *string `json:"error"`
		}
	}
	if err := json.Unmarshal([]byte(body), &v2); err != nil || resp.StatusCode != 200 || len(v2.Offsets) != 2 || v2.Offsets[0].ErrorCode != nil ||
		v2.Offsets[1].ErrorCode == nil || *v2.Offsets[1].ErrorCode != 40002 || !strings.Contains(*v2.Offsets[1].Error, "invalid record") {
		t.Errorf("v2 produce: %d %s", resp.StatusCode, body)
	}

	got := readBack(t, env, 3)
	for i, r := range got {
		if string(r.Value) != valid {
			t.Errorf("events record %d: %q, want the valid record", i, r.Value)
		}
	}
}

// A WebSocket frame the rules refuse gets an error ack and closes the
// socket with 1008, as one upstream refuses.
func TestWebSocketInvalidRecord(t *testing.T) {
	_, base, id := startChecked(t)
	c := dialWS(t, "ws"+strings.TrimPrefix(base, "http")+"/ws", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageBinary, testenv.AvroUser(id, "ann", 30)); err != nil {
		t.Fatal(err)
	}
	if ack := nextAck(t, c); !strings.Contains(ack, `"ack":1,"partition"`) {
		t.Fatalf("valid frame: %s", ack)
	}
	if err := c.Write(ctx, websocket.MessageBinary, []byte("not avro")); err != nil {
		t.Fatal(err)
	}
	if ack := nextAck(t, c); !strings.Contains(ack, `"ack":2,"error"`) || !strings.Contains(ack, "invalid record") {
		t.Fatalf("invalid frame: %s", ack)
	}
	// The valid record's delivery may still come before the close.
	var err error
	for range 10 {
		if _, _, err = c.Read(ctx); err != nil {
			break
		}
	}
	if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Fatalf("after the invalid frame: %v, want 1008", err)
	}
}

// nextAck is the socket's next ack, past the records it delivers.
func nextAck(t *testing.T, c *websocket.Conn) string {
	t.Helper()
	for {
		if _, f := readFrame(t, c); strings.HasPrefix(string(f), `{"ack":`) {
			return string(f)
		}
	}
}
