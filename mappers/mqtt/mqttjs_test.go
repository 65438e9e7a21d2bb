package mqtt_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// mqttjsDir holds the MQTT.js script and its package (mqtt, pinned in
// package-lock.json).
const mqttjsDir = "testdata/mqttjs"

// mqttjsInstalled installs the script's package from its lock file when
// it is missing, with npm when there is one.
func mqttjsInstalled(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(mqttjsDir, "node_modules", "mqtt", "package.json")); err == nil {
		return
	}
	toolOr(t, "npm")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = mqttjsDir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", mqttjsDir, err, out)
	}
}

// What features.js prints, in the parts checked here again.
type mqttjsResults struct {
	Checks  map[string]bool
	Error   string
	Connack struct{ TopicAliasMaximum, ReceiveMaximum int }
	Props   struct {
		Topic, Payload, ContentType, ResponseTopic, CorrelationData string
		QoS                                                         int
		PayloadFormatIndicator                                      bool
		UserProperties                                              map[string]any
		SubscriptionIDs                                             []int
	}
	Reply                struct{ Topic, Payload, CorrelationData string }
	OtherSubscriptionIDs []int
	NoLocal              struct{ PeerGot, LocalGot string }
	RetainHandling       struct {
		First, Control             string
		FirstRetain, ControlRetain bool
	}
	Alias struct {
		Sent []struct {
			Topic string
			Alias int
		}
		Got [][]string
	}
}

// MQTT.js (mqtt 5.16.0, Node.js) over MQTT 5 through a node: user
// properties, content type and payload format round trip; response
// topic and correlation data carry a request and its response;
// subscription identifiers come on the messages of their subscription;
// a no-local subscription does not get the client's own publishes;
// retain handling 2 sends no retained message; a topic alias the client
// sets stands for its topic. What the script saw is checked here again,
// and the records it wrote are read from Kafka with franz-go.
func TestMQTTjs(t *testing.T) {
	toolOr(t, "node")
	mqttjsInstalled(t)
	env, addr := start(t)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "features.js")
	cmd.Dir = mqttjsDir
	cmd.Env = append(os.Environ(), "MQTT_URL=mqtt://"+addr, "MQTTJS_PREFIX=js", "MQTTJS_WAIT_MS=20000")
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if stderr.Len() > 0 {
		t.Logf("features.js stderr:\n%s", stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var res mqttjsResults
	if jerr := json.Unmarshal([]byte(lines[len(lines)-1]), &res); jerr != nil {
		t.Fatalf("features.js (%v) printed no results: %v\n%s", err, jerr, stdout.String())
	}
	if err != nil {
		t.Fatalf("features.js: %v (error %q, checks %v)", err, res.Error, res.Checks)
	}
	for _, name := range []string{"props", "subscription id 7", "reply", "subscription id 9", "no local", "retain handling 2",
		"retain handling 0", "topic alias"} {
		if !res.Checks[name] {
			t.Errorf("features.js did not pass check %q (checks %v)", name, res.Checks)
		}
	}

	if res.Connack.TopicAliasMaximum != 64 || res.Connack.ReceiveMaximum != 64 {
		t.Errorf("CONNACK %+v, want the defaults' topic alias maximum and receive maximum, 64", res.Connack)
	}
	p := res.Props
	if p.Topic != "js/props/1" || p.Payload != `{"t":21.5}` || p.QoS != 1 || p.ContentType != "application/json" ||
		!p.PayloadFormatIndicator || p.ResponseTopic != "js/replies/1" || p.CorrelationData != "010203" {
		t.Errorf("the message with properties arrived as %+v", p)
	}
	if want := map[string]any{"site": "north", "tag": []any{"a", "b"}}; !reflect.DeepEqual(p.UserProperties, want) {
		t.Errorf("user properties %v, want %v", p.UserProperties, want)
	}
	if !reflect.DeepEqual(p.SubscriptionIDs, []int{7}) || !reflect.DeepEqual(res.OtherSubscriptionIDs, []int{9}) {
		t.Errorf("subscription identifiers %v and %v, want [7] and [9]", p.SubscriptionIDs, res.OtherSubscriptionIDs)
	}
	if r := res.Reply; r.Topic != "js/replies/1" || r.Payload != "pong" || r.CorrelationData != "010203" {
		t.Errorf("the response arrived as %+v", r)
	}
	if nl := res.NoLocal; nl.PeerGot != "mine" || nl.LocalGot != "theirs" {
		t.Errorf("no local: %+v, want the peer to get mine and the publisher theirs", nl)
	}
	if rh := res.RetainHandling; rh.First != "probe" || !rh.FirstRetain || rh.Control != "kept" || !rh.ControlRetain {
		t.Errorf("retain handling: %+v", rh)
	}
	if a := res.Alias; len(a.Sent) != 2 || a.Sent[0].Topic != "js/alias/t" || a.Sent[1].Topic != "" || a.Sent[1].Alias != 1 ||
		!reflect.DeepEqual(a.Got, [][]string{{"js/alias/t", "first"}, {"js/alias/t", "second"}}) {
		t.Errorf("topic alias: %+v", a)
	}

	// What the script published, as a Kafka consumer reads it: props/1,
	// replies/1, other/x, nl/t twice, rh/kept, rh/probe, alias/t twice.
	byKey := map[string][]*kgo.Record{}
	for _, r := range consume(t, env, "mqtt-messages", 9) {
		byKey[string(r.Key)] = append(byKey[string(r.Key)], r)
	}
	if rs := byKey["js/props/1"]; len(rs) != 1 {
		t.Errorf("%d records of js/props/1", len(rs))
	} else {
		var tags []string
		for _, h := range rs[0].Headers {
			if h.Key == "tag" {
				tags = append(tags, string(h.Value))
			}
		}
		if !reflect.DeepEqual(tags, []string{"a", "b"}) {
			t.Errorf("tag headers %q, want a then b", tags)
		}
		for k, want := range map[string]string{"mqtt:qos": "1", "mqtt:client": "js-pub", "mqtt:content-type": "application/json",
			"mqtt:payload-format": "1", "mqtt:response-topic": "js/replies/1", "mqtt:correlation": "\x01\x02\x03", "site": "north"} {
			if got, ok := header(rs[0], k); !ok || got != want {
				t.Errorf("js/props/1 header %s = %q (present %v), want %q", k, got, ok, want)
			}
		}
	}
	if rs := byKey["js/alias/t"]; len(rs) != 2 || string(rs[0].Value) != "first" || string(rs[1].Value) != "second" {
		t.Errorf("records of js/alias/t: %d, want first then second", len(rs))
	}
	if _, ok := byKey[""]; ok {
		t.Error("a record keyed by an empty topic name: the alias was not resolved")
	}
}
