package main

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

const liveBase = `log:
  format: json
admin:
  listen: 127.0.0.1:0
`

const liveACLs = `log:
  format: json
  level: debug
admin:
  listen: 127.0.0.1:0
security:
  acls:
    enabled: true
    rules:
      - principal: "User:ANONYMOUS"
        resource: topic
        name: "open-"
        pattern: prefixed
        operations: [all]
      - principal: "User:ANONYMOUS"
        resource: group
        name: "*"
        operations: [all]
`

// A running node reloads on POST /api/reload and on SIGHUP: a changed ACL
// and log level apply to the connections already open, none of which is
// dropped; a broken file is refused with the reason and changes nothing.
func TestReloadLive(t *testing.T) {
	bin := meshkaBin(t)
	ctx := testContext(t)
	up := startUpstream(t, 1, 1)
	cfg := writeConfig(t, liveBase)
	p := startMeshka(t, bin, "run", "--config", cfg, "--listen", "127.0.0.1:0", "--cluster-bind", "127.0.0.1:0", "--upstream", strings.Join(up.ListenAddrs(), ","))
	var adminLine, started struct{ Listen string }
	if err := json.Unmarshal([]byte(p.waitFor(ctx, `"msg":"admin listener started"`)), &adminLine); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(p.waitFor(ctx, `"msg":"meshka node started"`)), &started); err != nil {
		t.Fatal(err)
	}

	var disconnects atomic.Int64
	cl, err := kgo.NewClient(kgo.SeedBrokers(started.Listen), kgo.DefaultProduceTopic("closed-orders"),
		kgo.WithHooks(disconnectHook{&disconnects}), kgo.RecordRetries(2), kgo.UnknownTopicRetries(2))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopics(ctx, 1, 1, nil, "closed-orders", "open-orders"); err != nil {
		t.Fatal(err)
	}
	produce := func(topic string) error {
		return cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("x")}).FirstErr()
	}
	if err := produce("closed-orders"); err != nil {
		t.Fatalf("produce before the reload: %v", err)
	}

	reload := func() (int, map[string]any) {
		t.Helper()
		resp, err := http.Post("http://"+adminLine.Listen+"/api/reload", "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		b, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(b, &body); err != nil {
			t.Fatalf("reload answer %s: %v", b, err)
		}
		return resp.StatusCode, body
	}

	if err := os.WriteFile(cfg, []byte(liveACLs), 0o644); err != nil {
		t.Fatal(err)
	}
	code, body := reload()
	if code != http.StatusOK || body["applied"] != true {
		t.Fatalf("reload: %d %v", code, body)
	}
	changed, _ := json.Marshal(body["changed"])
	if !strings.Contains(string(changed), "log.level") || !strings.Contains(string(changed), "security.acls.rules") {
		t.Errorf("reload reported changed %s", changed)
	}
	if err := produce("closed-orders"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("produce to a topic the new ACLs do not allow: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	if err := produce("open-orders"); err != nil {
		t.Errorf("produce to a topic the new ACLs allow: %v", err)
	}
	// Debug lines now: each request answered is logged.
	p.waitFor(ctx, `"msg":"Kafka request answered"`)

	// A broken file: refused, with the reason; the ACLs and the level stay.
	broken := strings.Replace(liveACLs, "operations: [all]", "operations: [scribble]", 1)
	broken = strings.Replace(broken, "level: debug", "level: error", 1)
	if err := os.WriteFile(cfg, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	code, body = reload()
	if msg, _ := body["error"].(string); code != http.StatusBadRequest || body["applied"] != false || !strings.Contains(msg, "scribble") {
		t.Errorf("reload of a broken file: %d %v", code, body)
	}
	if err := produce("closed-orders"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("after a refused reload, produce to the refused topic: %v", err)
	}
	if err := produce("open-orders"); err != nil {
		t.Errorf("after a refused reload, produce to the allowed topic: %v", err)
	}

	// SIGHUP does the same as POST: back to the file without ACLs.
	if err := os.WriteFile(cfg, []byte(liveBase), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	// The POST's reload logged acls_enabled true; this one's says false.
	p.waitFor(ctx, `"acls_enabled":false`)
	// The client keeps the topic's authorization failure from its last
	// metadata until it has asked again.
	var err2 error
	for range 50 {
		cl.ForceMetadataRefresh()
		if err2 = produce("closed-orders"); err2 == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err2 != nil {
		t.Errorf("produce once the ACLs are off again: %v", err2)
	}
	if n := disconnects.Load(); n != 0 {
		t.Errorf("the client's connections were dropped %d time(s) across the reloads", n)
	}
	if code := p.exit(ctx, syscall.SIGTERM); code != 0 {
		t.Fatalf("run exited %d on SIGTERM", code)
	}
}

// disconnectHook counts a client's broker disconnects.
type disconnectHook struct{ n *atomic.Int64 }

func (h disconnectHook) OnBrokerDisconnect(kgo.BrokerMetadata, net.Conn) { h.n.Add(1) }
