package upstream

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sync/singleflight"
)

// TopicMeta is upstream's view of one topic as last fetched.
type TopicMeta struct {
	Name       string
	ID         [16]byte
	Internal   bool
	Err        int16
	Partitions []PartitionMeta
	fetched    time.Time
}

// PartitionMeta is upstream's view of one partition.
type PartitionMeta struct {
	Partition   int32
	Leader      int32
	LeaderEpoch int32
	Replicas    int32 // how many replicas upstream keeps of it
	Err         int16
}

// MetaCache caches upstream topic metadata for a bounded time. Entries are
// dropped early when a request learns they are stale (a leader moved, a topic
// was created or deleted). Safe for concurrent use; lookups may block on an
// upstream Metadata request.
type MetaCache struct {
	c   *Client
	ttl time.Duration

	mu        sync.RWMutex
	topics    map[string]*TopicMeta
	brokers   map[int32]string // node id to host:port, from the last answer naming it
	clusterID *string

	group singleflight.Group
}

func newMetaCache(c *Client, ttl time.Duration) *MetaCache {
	return &MetaCache{c: c, ttl: ttl, topics: make(map[string]*TopicMeta), brokers: make(map[int32]string)}
}

// ClusterID is upstream's cluster id, asking upstream if none is known yet.
func (m *MetaCache) ClusterID(ctx context.Context) (*string, error) {
	m.mu.RLock()
	id := m.clusterID
	m.mu.RUnlock()
	if id != nil {
		return id, nil
	}
	if _, err := m.fetch(ctx, []string{}, false); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.clusterID, nil
}

// Topics returns metadata for the named topics (all topics when names is
// nil), from the cache where fresh. autoCreate asks upstream to create
// missing topics, as a Kafka client's Metadata request may.
func (m *MetaCache) Topics(ctx context.Context, names []string, autoCreate bool) ([]*TopicMeta, error) {
	if names != nil {
		out := make([]*TopicMeta, 0, len(names))
		now := time.Now()
		m.mu.RLock()
		for _, n := range names {
			t, ok := m.topics[n]
			if !ok || now.Sub(t.fetched) > m.ttl || t.Err != 0 {
				out = nil
				break
			}
			out = append(out, t)
		}
		m.mu.RUnlock()
		if out != nil {
			return out, nil
		}
	}
	return m.fetch(ctx, names, autoCreate)
}

// Partition returns the metadata of one partition. A topic or partition
// upstream does not know yields UNKNOWN_TOPIC_OR_PARTITION.
func (m *MetaCache) Partition(ctx context.Context, topic string, partition int32) (PartitionMeta, error) {
	ts, err := m.Topics(ctx, []string{topic}, false)
	if err != nil {
		return PartitionMeta{}, err
	}
	if len(ts) == 0 {
		return PartitionMeta{}, kerr.UnknownTopicOrPartition
	}
	t := ts[0]
	if t.Err != 0 {
		return PartitionMeta{}, kerr.ErrorForCode(t.Err)
	}
	if partition < 0 || int(partition) >= len(t.Partitions) {
		return PartitionMeta{}, kerr.UnknownTopicOrPartition
	}
	p := t.Partitions[partition]
	if p.Err != 0 {
		return p, kerr.ErrorForCode(p.Err)
	}
	return p, nil
}

// CachedPartition is the partition's metadata as cached, without asking
// upstream, even past the TTL. ok is false when the topic is not cached
// or has no such partition. For paths that learn of a change from
// upstream's own answers (a fetch gets NOT_LEADER_OR_FOLLOWER or
// UNKNOWN_TOPIC_OR_PARTITION, which drop or replace the entry), so they
// never wait for a refresh.
func (m *MetaCache) CachedPartition(topic string, partition int32) (PartitionMeta, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	t, found := m.topics[topic]
	if !found || partition < 0 || int(partition) >= len(t.Partitions) {
		return PartitionMeta{}, false
	}
	return t.Partitions[partition], true
}

// CachedLeader is the partition's leader as cached, without asking
// upstream, even past the TTL: a leader that moved answers
// NOT_LEADER_OR_FOLLOWER, which drops the entry. ok is false when the
// entry is missing or in error.
func (m *MetaCache) CachedLeader(topic string, partition int32) (leader int32, ok bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	t, found := m.topics[topic]
	if !found || partition < 0 || int(partition) >= len(t.Partitions) {
		return 0, false
	}
	p := t.Partitions[partition]
	if p.Err != 0 || p.Leader < 0 {
		return 0, false
	}
	return p.Leader, true
}

// BrokerAddr is the host:port upstream last gave for a broker id.
func (m *MetaCache) BrokerAddr(id int32) (string, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	a, ok := m.brokers[id]
	return a, ok
}

// KnownTopics names the topics in the cache, fresh or not, sorted.
func (m *MetaCache) KnownTopics() []string {
	m.mu.RLock()
	out := make([]string, 0, len(m.topics))
	for n := range m.topics {
		out = append(out, n)
	}
	m.mu.RUnlock()
	sort.Strings(out)
	return out
}

// Invalidate drops cached entries so the next lookup asks upstream.
func (m *MetaCache) Invalidate(topics ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, t := range topics {
		delete(m.topics, t)
	}
}

// fetch asks upstream for the named topics. Callers asking for the same
// topics at once share one request, which runs on the client's lifetime,
// not on the first caller's context, so a caller that gives up does not
// fail the others; each caller waits only as long as its own ctx allows.
func (m *MetaCache) fetch(ctx context.Context, names []string, autoCreate bool) ([]*TopicMeta, error) {
	key := fmt.Sprint(autoCreate, names == nil, names)
	ch := m.group.DoChan(key, func() (any, error) {
		ts, err := m.fetchNow(m.c.life, names, autoCreate)
		if err != nil {
			m.c.health.failed(err)
		} else {
			m.c.health.answered()
		}
		return ts, err
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.([]*TopicMeta), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (m *MetaCache) fetchNow(ctx context.Context, names []string, autoCreate bool) ([]*TopicMeta, error) {
	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = autoCreate
	if names != nil {
		req.Topics = make([]kmsg.MetadataRequestTopic, 0, len(names))
		for _, n := range names {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(n)
			req.Topics = append(req.Topics, rt)
		}
	}
	kresp, err := m.c.Request(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("upstream metadata: %w", err)
	}
	resp := kresp.(*kmsg.MetadataResponse)
	now := time.Now()
	out := make([]*TopicMeta, 0, len(resp.Topics))
	m.mu.Lock()
	defer m.mu.Unlock()
	if resp.ClusterID != nil {
		id := *resp.ClusterID
		m.clusterID = &id
	}
	for _, b := range resp.Brokers {
		m.brokers[b.NodeID] = net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
	}
	for i := range resp.Topics {
		rt := &resp.Topics[i]
		if rt.Topic == nil {
			continue
		}
		t := &TopicMeta{Name: *rt.Topic, ID: rt.TopicID, Internal: rt.IsInternal, Err: rt.ErrorCode, fetched: now}
		t.Partitions = make([]PartitionMeta, len(rt.Partitions))
		for _, rp := range rt.Partitions {
			if rp.Partition < 0 || int(rp.Partition) >= len(rt.Partitions) {
				continue // a gap; upstream is mid-change, the TTL heals it
			}
			t.Partitions[rp.Partition] = PartitionMeta{Partition: rp.Partition, Leader: rp.Leader, LeaderEpoch: rp.LeaderEpoch,
				Replicas: int32(len(rp.Replicas)), Err: rp.ErrorCode}
		}
		if t.Err == 0 {
			m.topics[t.Name] = t
		} else {
			delete(m.topics, t.Name)
		}
		out = append(out, t)
	}
	return out, nil
}
