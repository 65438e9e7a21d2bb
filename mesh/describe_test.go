package mesh_test

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/meshka/meshka/internal/testenv"
	"github.com/meshka/meshka/mesh"
)

// ClusterID, Topics and Topic say what upstream says: its cluster id,
// its topics in name order with partitions and replication, and an
// unknown topic as UNKNOWN_TOPIC_OR_PARTITION.
func TestDescribe(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, time.Minute)
	m := env.Node.Mesh()
	if id, err := m.ClusterID(ctx); err != nil || id != "meshka-embedded" {
		t.Fatalf("cluster id %q, %v", id, err)
	}
	if _, err := m.CreateTopics(ctx, mesh.TopicSpec{Name: "zeta", Partitions: 2, Replication: 1}, mesh.TopicSpec{Name: "alpha", Partitions: 5, Replication: 3}); err != nil {
		t.Fatal(err)
	}
	ts, err := m.Topics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	byName := map[string]mesh.TopicInfo{}
	for _, ti := range ts {
		names = append(names, ti.Name)
		byName[ti.Name] = ti
	}
	for i := 1; i < len(names); i++ {
		if names[i-1] >= names[i] {
			t.Fatalf("not in name order: %v", names)
		}
	}
	if a := byName["alpha"]; a.Partitions != 5 || a.Replication != 3 || a.Internal {
		t.Errorf("alpha: %+v", a)
	}
	if z, err := m.Topic(ctx, "zeta"); err != nil || z.Partitions != 2 || z.Replication != 1 {
		t.Errorf("zeta: %+v, %v", z, err)
	}
	if _, err := m.Topic(ctx, "nowhere"); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Errorf("unknown topic: %v", err)
	}
}
