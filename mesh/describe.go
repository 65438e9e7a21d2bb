package mesh

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/meshka/meshka/upstream"
)

// TopicInfo is what upstream's metadata says of a topic.
type TopicInfo struct {
	Name       string
	Partitions int32
	// Replication is how many replicas upstream keeps of each partition
	// (of the first partition; 0 when upstream names none).
	Replication int16
	// Internal marks a topic of Kafka's own, __consumer_offsets say.
	Internal bool
}

// ClusterID is upstream's cluster id, asked of upstream once and then
// remembered; empty when upstream has none (Kafka before 0.10.1). It
// blocks until upstream answers or ctx ends.
func (m *Mesh) ClusterID(ctx context.Context) (string, error) {
	id, err := m.up.Meta().ClusterID(ctx)
	if err != nil {
		return "", fmt.Errorf("mesh: cluster id: %w", err)
	}
	if id == nil {
		return "", nil
	}
	return *id, nil
}

// Topics lists upstream's topics in name order, asking upstream at each
// call: what a listing shows must include topics created elsewhere a
// moment ago. Topics in error upstream are left out. It blocks until
// upstream answers or ctx ends.
func (m *Mesh) Topics(ctx context.Context) ([]TopicInfo, error) {
	ts, err := m.up.Meta().Topics(ctx, nil, false)
	if err != nil {
		return nil, fmt.Errorf("mesh: list topics: %w", err)
	}
	out := make([]TopicInfo, 0, len(ts))
	for _, t := range ts {
		if t.Err == 0 {
			out = append(out, topicInfo(t))
		}
	}
	slices.SortFunc(out, func(a, b TopicInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Topic describes one topic, from the metadata cache where it is fresh;
// kerr.UnknownTopicOrPartition (errors.Is) when upstream has no such
// topic. It blocks until upstream answers or ctx ends.
func (m *Mesh) Topic(ctx context.Context, name string) (TopicInfo, error) {
	ts, err := m.up.Meta().Topics(ctx, []string{name}, false)
	if err != nil {
		return TopicInfo{}, fmt.Errorf("mesh: topic %q: %w", name, err)
	}
	for _, t := range ts {
		if t.Name != name {
			continue
		}
		if t.Err != 0 {
			return TopicInfo{}, fmt.Errorf("mesh: topic %q: %w", name, kerr.ErrorForCode(t.Err))
		}
		return topicInfo(t), nil
	}
	return TopicInfo{}, fmt.Errorf("mesh: topic %q: %w", name, kerr.UnknownTopicOrPartition)
}

func topicInfo(t *upstream.TopicMeta) TopicInfo {
	ti := TopicInfo{Name: t.Name, Partitions: int32(len(t.Partitions)), Internal: t.Internal}
	if len(t.Partitions) > 0 {
		ti.Replication = int16(t.Partitions[0].Replicas)
	}
	return ti
}
