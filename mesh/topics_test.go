package mesh_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/meshka/meshka/internal/testenv"
	"github.com/meshka/meshka/mesh"
)

// CreateTopics creates topics with their partitions and configs, or
// upstream's defaults; a topic that exists counts as created; what
// upstream refuses, and names Kafka does not allow, are errors per topic.
func TestCreateTopics(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, time.Minute)
	m := env.Node.Mesh()
	if _, err := m.Partitions(ctx, "sessions"); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("before: %v", err)
	}
	specs := []mesh.TopicSpec{
		{Name: "sessions", Partitions: 4, Replication: 1, Configs: map[string]string{"cleanup.policy": "compact"}},
		{Name: "defaults"},
		{Name: "dot.ted", Partitions: 1},
	}
	got, err := m.CreateTopics(ctx, specs...)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got["sessions"] != nil || got["defaults"] != nil || got["dot.ted"] != nil {
		t.Fatalf("create: %v", got)
	}
	if n, err := m.Partitions(ctx, "sessions"); err != nil || n != 4 {
		t.Fatalf("sessions: %d partitions, %v", n, err)
	}
	if n, err := m.Partitions(ctx, "defaults"); err != nil || n != 3 { // the embedded upstream's default
		t.Fatalf("defaults: %d partitions, %v", n, err)
	}
	configs, err := kadm.NewClient(env.DirectClient(t)).DescribeTopicConfigs(ctx, "sessions")
	if err != nil {
		t.Fatal(err)
	}
	c, err := configs.On("sessions", nil)
	if err != nil {
		t.Fatal(err)
	}
	policy := ""
	for _, kv := range c.Configs {
		if kv.Key == "cleanup.policy" && kv.Value != nil {
			policy = *kv.Value
		}
	}
	if policy != "compact" {
		t.Fatalf("cleanup.policy %q upstream", policy)
	}

	// Again: the topics exist, which is no error.
	if got, err := m.CreateTopics(ctx, specs...); err != nil || got["sessions"] != nil || got["defaults"] != nil {
		t.Fatalf("create again: %v %v", got, err)
	}

	got, err = m.CreateTopics(ctx,
		mesh.TopicSpec{Name: "too-replicated", Partitions: 1, Replication: 99},
		mesh.TopicSpec{Name: "bad!name"},
		mesh.TopicSpec{Name: "dot_ted"}, // collides with dot.ted in Kafka
		mesh.TopicSpec{Name: "fine", Partitions: 2},
	)
	if err != nil {
		t.Fatal(err)
	}
	var ke *kerr.Error
	if err := got["too-replicated"]; !errors.Is(err, kerr.InvalidReplicationFactor) || !errors.As(err, &ke) {
		t.Errorf("replication 99: %v", err)
	}
	if err := got["bad!name"]; !errors.Is(err, kerr.InvalidTopicException) || !strings.Contains(err.Error(), "'!'") {
		t.Errorf("a bad name: %v", err)
	}
	if err := got["dot_ted"]; !errors.Is(err, kerr.InvalidTopicException) {
		t.Errorf("a colliding name: %v", err)
	}
	if got["fine"] != nil {
		t.Errorf("fine: %v", got["fine"])
	}
	if _, err := m.CreateTopics(ctx, mesh.TopicSpec{Name: "twice"}, mesh.TopicSpec{Name: "twice"}); err == nil {
		t.Error("a name given twice")
	}
}
