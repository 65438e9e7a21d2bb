package httpmap_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	httpmap "github.com/meshka/meshka/mappers/http"
)

// An instance subscribed with topic_pattern takes topics that come to
// match it later, as a Kafka consumer does at a metadata refresh: one
// subscribed while no topic matches answers empty records, then reads
// the first matching topic once it is created, and a second one too.
func TestV2ConsumerPatternTakesNewTopics(t *testing.T) {
	defer httpmap.SetPatternRefresh(100 * time.Millisecond)()
	env, base, _ := startConfluent(t)
	c := createConsumer(t, base, "cp", `{"name":"p","format":"json","auto.offset.reset":"earliest"}`)
	resp, body := do(t, "POST", c.instance(base)+"/subscription", `{"topic_pattern":"sensor-.*"}`, v2ct())
	if resp.StatusCode != 204 {
		t.Fatalf("subscribe: %d %s", resp.StatusCode, body)
	}
	if got := c.records(base); len(got) != 0 {
		t.Fatalf("records with no topic matching: %v", got)
	}
	adm := kadm.NewClient(env.DirectClient(t))
	kc := env.DirectClient(t)
	for i, topic := range []string{"sensor-a", "sensor-b"} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
		cancel()
		produceN(t, kc, topic, 2, func(j int) string { return fmt.Sprintf(`{"n":%d}`, 10*i+j) })
		got := c.readAll(2, base)
		for _, r := range got {
			if r.Topic != topic {
				t.Fatalf("read %s, want %s", r.Topic, topic)
			}
		}
	}
	resp, body = do(t, "GET", c.instance(base)+"/subscription", "", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "sensor-a") || !strings.Contains(body, "sensor-b") {
		t.Fatalf("subscription: %d %s", resp.StatusCode, body)
	}
}
