package upstream

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FetchOnce reads one partition straight from its upstream leader without
// waiting, for reads outside a partition cache's window and for clients of
// Fetch versions older than the cache serves. version caps the request's
// version: upstream converts old record formats for old clients itself.
// The answer is upstream's, bytes untouched.
func (c *Client) FetchOnce(ctx context.Context, topic string, partition int32, offset int64, maxBytes int32, isolation int8, version int16) kmsg.FetchResponseTopicPartition {
	out := kmsg.NewFetchResponseTopicPartition()
	out.Partition = partition
	out.HighWatermark, out.LastStableOffset, out.LogStartOffset = -1, -1, -1
	// The cached leader, even past the TTL: an answer saying it moved
	// drops the entry (below), so no read waits for a refresh.
	leader, ok := c.meta.CachedLeader(topic, partition)
	if !ok {
		pm, err := c.meta.Partition(ctx, topic, partition)
		if err != nil {
			out.ErrorCode = ErrCode(err)
			return out
		}
		leader = pm.Leader
	}
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis = 0
	req.MinBytes = 0
	req.MaxBytes = maxBytes
	req.IsolationLevel = isolation
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = partition
	rp.FetchOffset = offset
	rp.PartitionMaxBytes = maxBytes
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)

	ctx, cancel := c.timeout(ctx)
	defer cancel()
	kresp, err := c.main.Broker(int(leader)).Request(ctx, &pinned{Request: req, max: min(version, streamFetchVersion)})
	if err != nil {
		c.meta.Invalidate(topic)
		out.ErrorCode = ErrCode(err)
		return out
	}
	resp := kresp.(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 {
		out.ErrorCode = resp.ErrorCode
		return out
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if t.Topic == topic && p.Partition == partition {
				if RetriableLeaderErr(p.ErrorCode) || p.ErrorCode == kerr.UnknownTopicOrPartition.Code {
					c.meta.Invalidate(topic)
				}
				return p
			}
		}
	}
	out.ErrorCode = kerr.UnknownServerError.Code
	return out
}

// CachedApiVersions is upstream's ApiVersions answer if one was received,
// without asking. Safe for concurrent use; never blocks on the network.
func (c *Client) CachedApiVersions() *kmsg.ApiVersionsResponse {
	c.versionsMu.Lock()
	defer c.versionsMu.Unlock()
	return c.versions
}

// LatestOffset is the partition's current end (high watermark) upstream.
func (c *Client) LatestOffset(ctx context.Context, topic string, partition int32) (int64, error) {
	return c.OffsetAt(ctx, topic, partition, -1)
}

// Timestamps OffsetAt takes besides a time: the partition's end and its
// log start.
const (
	OffsetLatest   int64 = -1
	OffsetEarliest int64 = -2
)

// OffsetAt is upstream's ListOffsets answer for the partition: the first
// offset whose timestamp is at least timestamp (milliseconds since the
// epoch; the end when there is none), or the end (OffsetLatest) or the
// log start (OffsetEarliest).
func (c *Client) OffsetAt(ctx context.Context, topic string, partition int32, timestamp int64) (int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition = partition
	rp.Timestamp = timestamp
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	kresp, err := c.Request(ctx, req)
	if err != nil {
		return 0, err
	}
	for _, t := range kresp.(*kmsg.ListOffsetsResponse).Topics {
		for _, p := range t.Partitions {
			if p.Partition == partition {
				if p.ErrorCode != 0 {
					return 0, kerr.ErrorForCode(p.ErrorCode)
				}
				return p.Offset, nil
			}
		}
	}
	return 0, kerr.UnknownTopicOrPartition
}
