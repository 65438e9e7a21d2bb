package mesh

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TopicSpec describes a topic for CreateTopics.
type TopicSpec struct {
	Name string
	// Partitions is the topic's partition count; 0 or -1: upstream's
	// default (num.partitions).
	Partitions int32
	// Replication is the topic's replication factor; 0 or -1: upstream's
	// default (default.replication.factor).
	Replication int16
	// Configs are topic configs, cleanup.policy=compact say.
	Configs map[string]string
}

// createTimeout bounds how long upstream's controller may take to
// create the topics, when ctx says nothing shorter.
const createTimeout = 20 * time.Second

// maxTopicName is Kafka's bound on a topic name's length.
const maxTopicName = 249

// CreateTopics creates topics upstream, through its controller, as a
// Kafka admin client would. The map has an entry per spec: nil when the
// topic was created or existed already (TOPIC_ALREADY_EXISTS counts as
// done: a binding creates what it needs at every start, whatever the
// existing topic's settings), else upstream's refusal as a Kafka error
// (errors.As a *kerr.Error, upstream's message added when it gave one:
// INVALID_REPLICATION_FACTOR, INVALID_CONFIG, POLICY_VIOLATION,
// TOPIC_AUTHORIZATION_FAILED). A name Kafka does not allow is refused
// with INVALID_TOPIC_EXCEPTION without asking upstream. The error is set
// only when nothing could be asked: upstream unreachable, a name given
// twice, ctx ended. The created topics' metadata is asked afresh at their
// first use. It blocks until upstream answers or ctx ends.
func (m *Mesh) CreateTopics(ctx context.Context, specs ...TopicSpec) (map[string]error, error) {
	if m.ctx.Err() != nil {
		return nil, ErrClosed
	}
	out := make(map[string]error, len(specs))
	req := kmsg.NewPtrCreateTopicsRequest()
	// v4 (KIP-464) is the first to take -1 for upstream's defaults.
	req.Version = m.upstreamVersion(req.Key(), req.MaxVersion())
	wait := createTimeout
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, max(time.Until(dl), time.Millisecond))
	}
	req.TimeoutMillis = int32(wait / time.Millisecond)
	for _, s := range specs {
		if _, dup := out[s.Name]; dup {
			return nil, fmt.Errorf("mesh: create topics: %q is named twice", s.Name)
		}
		if err := topicNameError(s.Name); err != nil {
			out[s.Name] = err
			continue
		}
		t := kmsg.NewCreateTopicsRequestTopic()
		t.Topic, t.NumPartitions, t.ReplicationFactor = s.Name, s.Partitions, s.Replication
		if t.NumPartitions <= 0 {
			t.NumPartitions = -1
		}
		if t.ReplicationFactor <= 0 {
			t.ReplicationFactor = -1
		}
		if req.Version < 4 && (t.NumPartitions < 0 || t.ReplicationFactor < 0) {
			out[s.Name] = fmt.Errorf("upstream's CreateTopics (v%d) takes no defaults, give partitions and replication: %w",
				req.Version, kerr.InvalidRequest)
			continue
		}
		for _, k := range slices.Sorted(maps.Keys(s.Configs)) {
			c := kmsg.NewCreateTopicsRequestTopicConfig()
			c.Name, c.Value = k, kmsg.StringPtr(s.Configs[k])
			t.Configs = append(t.Configs, c)
		}
		req.Topics = append(req.Topics, t)
		out[s.Name] = nil
	}
	if len(req.Topics) == 0 {
		return out, nil
	}
	kresp, err := m.up.Forward(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("mesh: create topics: %w", err)
	}
	answered := map[string]bool{}
	for _, t := range kresp.(*kmsg.CreateTopicsResponse).Topics {
		answered[t.Topic] = true
		err := kerr.ErrorForCode(t.ErrorCode)
		switch {
		case err == nil, errors.Is(err, kerr.TopicAlreadyExists):
			continue
		case t.ErrorMessage != nil && *t.ErrorMessage != "":
			err = fmt.Errorf("%s: %w", *t.ErrorMessage, err)
		}
		out[t.Topic] = err
	}
	for _, t := range req.Topics {
		m.up.Meta().Invalidate(t.Topic)
		if !answered[t.Topic] {
			out[t.Topic] = fmt.Errorf("upstream's answer leaves topic %q out: %w", t.Topic, kerr.UnknownServerError)
		}
	}
	return out, nil
}

// topicNameError is the error of a name Kafka does not allow for a
// topic (its Topic.validate): empty, "." or "..", longer than 249
// characters, or with characters other than ASCII letters, digits, '.',
// '_' and '-'.
func topicNameError(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("an empty topic name: %w", kerr.InvalidTopicException)
	case name == "." || name == "..":
		return fmt.Errorf("topic name %q: %w", name, kerr.InvalidTopicException)
	case len(name) > maxTopicName:
		return fmt.Errorf("a topic name of %d characters, more than %d: %w", len(name), maxTopicName, kerr.InvalidTopicException)
	}
	for _, c := range []byte(name) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("topic name %q holds %q (only ASCII letters, digits, '.', '_' and '-' are allowed): %w",
				name, c, kerr.InvalidTopicException)
		}
	}
	return nil
}
