package test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	paho3 "github.com/eclipse/paho.mqtt.golang"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/internal/testenv"
	"github.com/meshka/meshka/node"
)

// scrape reads a node's /metrics and parses it.
func scrape(t *testing.T, n *node.Node) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	resp, err := http.Get("http://" + n.AdminAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s, %v", resp.Status, err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return mfs, string(body)
}

// value sums the series of family name whose labels include want: a
// counter's or gauge's value, a histogram's count.
func value(mfs map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	mf, ok := mfs[name]
	if !ok {
		return -1
	}
	var sum float64
	for _, m := range mf.GetMetric() {
		match := 0
		for _, l := range m.GetLabel() {
			if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
				match++
			}
		}
		if match != len(want) {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

// documented are the families docs/metrics.md lists.
func documented(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range regexp.MustCompile("(?m)^\\| `(meshka_[a-z_]+)` \\|").FindAllStringSubmatch(string(b), -1) {
		out = append(out, m[1])
	}
	if len(out) < 30 {
		t.Fatalf("docs/metrics.md lists %d families", len(out))
	}
	return out
}

// Every family docs/metrics.md lists is on /metrics once a node has
// served Kafka, MQTT and HTTP clients, and each moves with the traffic
// that should move it: produce, fetch, a cache hit and a miss, a group
// rebalance. promtool (Debian's prometheus package) checks the output.
func TestMetrics(t *testing.T) {
	ctx := timeout(t, 90*time.Second)
	env := testenv.Start(t, func(c *config.Config) {
		c.MQTT.Listen = "127.0.0.1:0"
		c.HTTP.Listen = "127.0.0.1:0"
		c.Admin.TopicLabels = true
	})
	before, _ := scrape(t, env.Node)

	direct := env.DirectClient(t)
	createTopic(t, ctx, direct, "metered", 1, nil)
	for i := range 10 {
		if err := direct.ProduceSync(ctx, &kgo.Record{Topic: "metered", Value: fmt.Appendf(nil, "early %d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// The tail reader starts the partition's cache at the end (10); the
	// one from offset 0 then asks before the cache's window: a miss,
	// read through from upstream.
	tail := env.Client(t, kgo.ConsumeTopics("metered"), kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()))
	tail.PollRecords(timeout(t, 2*time.Second), 1) // starts its fetches; nothing to read yet
	producer := env.Client(t)
	for i := range 5 {
		if err := producer.ProduceSync(ctx, &kgo.Record{Topic: "metered", Value: fmt.Appendf(nil, "late %d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	consumeN(t, ctx, tail, 5)
	early := env.Client(t, kgo.ConsumeTopics("metered"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	consumeN(t, ctx, early, 15)

	// A group of two: the second member's join rebalances it.
	g1 := env.Client(t, kgo.ConsumerGroup("metered-group"), kgo.ConsumeTopics("metered"))
	consumeN(t, ctx, g1, 15)
	g2 := env.Client(t, kgo.ConsumerGroup("metered-group"), kgo.ConsumeTopics("metered"))
	g2.PollRecords(timeout(t, 3*time.Second), 1)

	// MQTT: one message published and delivered at QoS 1.
	broker, _ := env.Node.Binding("mqtt")
	mqttAddr := broker.(interface{ Addr() net.Addr }).Addr().String()
	got := make(chan struct{}, 1)
	sub := paho3.NewClient(paho3.NewClientOptions().AddBroker("tcp://" + mqttAddr).SetClientID("metrics-sub"))
	if tok := sub.Connect(); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("MQTT connect: %v", tok.Error())
	}
	defer sub.Disconnect(100)
	if tok := sub.Subscribe("metrics/x", 1, func(paho3.Client, paho3.Message) { got <- struct{}{} }); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("MQTT subscribe: %v", tok.Error())
	}
	if tok := sub.Publish("metrics/x", 1, false, "hello"); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("MQTT publish: %v", tok.Error())
	}
	select {
	case <-got:
	case <-ctx.Done():
		t.Fatal("MQTT message not delivered")
	}

	// HTTP: the OpenAPI document, and a path no route serves.
	httpBinding, _ := env.Node.Binding("http")
	httpAddr := httpBinding.(interface{ Addr() net.Addr }).Addr().String()
	for _, path := range []string{"/openapi.json", "/nowhere"} {
		resp, err := http.Get("http://" + httpAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}

	after, text := scrape(t, env.Node)
	for _, name := range documented(t) {
		if _, ok := after[name]; !ok {
			t.Errorf("documented family %s is not on /metrics", name)
		}
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := after[name]; !ok {
			t.Errorf("%s is not on /metrics", name)
		}
	}
	grew := func(name string, labels map[string]string) {
		t.Helper()
		b, a := value(before, name, labels), value(after, name, labels)
		if a <= max(b, 0) {
			t.Errorf("%s%v did not grow: %v before, %v after", name, labels, b, a)
		}
	}
	grew("meshka_kafka_requests_total", map[string]string{"api": "Produce", "outcome": "ok"})
	grew("meshka_kafka_requests_total", map[string]string{"api": "Fetch", "outcome": "ok"})
	grew("meshka_kafka_requests_total", map[string]string{"api": "JoinGroup"})
	grew("meshka_kafka_requests_total", map[string]string{"api": "SyncGroup"})
	grew("meshka_kafka_request_duration_seconds", map[string]string{"api": "Produce"})
	grew("meshka_received_bytes_total", map[string]string{"protocol": "kafka"})
	grew("meshka_sent_bytes_total", map[string]string{"protocol": "kafka"})
	grew("meshka_received_bytes_total", map[string]string{"protocol": "mqtt"})
	grew("meshka_sent_bytes_total", map[string]string{"protocol": "mqtt"})
	grew("meshka_received_bytes_total", map[string]string{"protocol": "http"})
	grew("meshka_sent_bytes_total", map[string]string{"protocol": "http"})
	grew("meshka_connections_accepted_total", map[string]string{"protocol": "kafka", "listener": "default"})
	grew("meshka_connections_accepted_total", map[string]string{"protocol": "http"})
	grew("meshka_cache_hits_total", nil)
	grew("meshka_cache_misses_total", nil)
	grew("meshka_cache_read_throughs_total", nil)
	grew("meshka_cache_bytes", nil)
	grew("meshka_upstream_requests_total", nil)
	grew("meshka_upstream_fetch_bytes_total", nil)
	grew("meshka_upstream_produce_bytes_total", nil)
	grew("meshka_actors", map[string]string{"kind": "partition"})
	grew("meshka_actors", map[string]string{"kind": "group"})
	grew("meshka_mqtt_messages_received_total", map[string]string{"qos": "1"})
	grew("meshka_mqtt_messages_sent_total", map[string]string{"qos": "1"})
	grew("meshka_http_requests_total", map[string]string{"capability": "openapi", "code": "200"})
	grew("meshka_http_requests_total", map[string]string{"capability": "none", "code": "404"})
	grew("meshka_topic_produced_bytes_total", map[string]string{"topic": "metered"})
	grew("meshka_topic_fetched_bytes_total", map[string]string{"topic": "metered"})
	if v := value(after, "meshka_connections", map[string]string{"protocol": "mqtt"}); v < 1 {
		t.Errorf("meshka_connections{protocol=mqtt} = %v with a client connected", v)
	}
	if v := value(after, "meshka_mqtt_sessions", nil); v < 1 {
		t.Errorf("meshka_mqtt_sessions = %v with a client connected", v)
	}
	if v := value(after, "meshka_upstream_up", nil); v != 1 {
		t.Errorf("meshka_upstream_up = %v", v)
	}
	if v := value(after, "meshka_cache_limit_bytes", nil); v != float64(config.Default().Cache.NodeMaxBytes) {
		t.Errorf("meshka_cache_limit_bytes = %v", v)
	}
	if v := value(after, "meshka_cluster_members", nil); v != 1 {
		t.Errorf("meshka_cluster_members = %v", v)
	}

	if _, err := exec.LookPath("promtool"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool is not installed (Debian's prometheus package); .ci/run installs it")
		}
		t.Log("promtool is not installed: the output was not checked by it")
		return
	}
	cmd := exec.CommandContext(ctx, "promtool", "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// The membership families follow the mesh: a second node joining, then
// leaving, moves the first node's members and topology changes.
func TestMetricsMembership(t *testing.T) {
	c := testenv.StartCluster(t, 2)
	c.WaitMembers(t, 2)
	first, _ := scrape(t, c.Nodes[0])
	if v := value(first, "meshka_cluster_members", nil); v != 2 {
		t.Fatalf("meshka_cluster_members = %v, want 2", v)
	}
	c.Stop(t, 1)
	waitFor(t, timeout(t, 20*time.Second), "node 0 to see 1 member", func() bool {
		m, _ := scrape(t, c.Nodes[0])
		return value(m, "meshka_cluster_members", nil) == 1
	})
	c.Restart(t, 1)
	c.WaitMembers(t, 2)
	last, _ := scrape(t, c.Nodes[0])
	if b, a := value(first, "meshka_cluster_topology_changes_total", nil), value(last, "meshka_cluster_topology_changes_total", nil); a < b+2 {
		t.Errorf("meshka_cluster_topology_changes_total went from %v to %v over a leave and a join", b, a)
	}
}
