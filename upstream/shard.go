package upstream

import (
	"context"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A part is the piece of a client's request that goes to one upstream
// broker, or that is answered at once with an error code.
type part struct {
	broker int32 // -1: any broker
	code   int16 // non-zero: not sent; every entry answered with this code
}

// topicList says how to reach the topics and partitions of one request or
// response type, so one splitter and one merger serve them all.
type topicList[T, P any] struct {
	name  func(*T) string
	parts func(*T) *[]P
}

// split groups a request's partitions into parts; dest says where each
// partition goes. The topics of each part keep the request's order.
func split[T, P any](topics []T, l topicList[T, P], partition func(*P) int32, dest func(topic string, partition int32) part) map[part][]T {
	out := make(map[part][]T)
	for ti := range topics {
		t := &topics[ti]
		for pi := range *l.parts(t) {
			p := &(*l.parts(t))[pi]
			d := dest(l.name(t), partition(p))
			ts := out[d]
			if n := len(ts); n == 0 || l.name(&ts[n-1]) != l.name(t) {
				nt := *t
				*l.parts(&nt) = nil
				ts = append(ts, nt)
			}
			last := &ts[len(ts)-1]
			*l.parts(last) = append(*l.parts(last), *p)
			out[d] = ts
		}
	}
	return out
}

// merge adds from's topics to into, joining the partitions of a topic that
// both name.
func merge[T, P any](into *[]T, from []T, l topicList[T, P]) {
next:
	for fi := range from {
		f := &from[fi]
		for ii := range *into {
			if t := &(*into)[ii]; l.name(t) == l.name(f) {
				*l.parts(t) = append(*l.parts(t), *l.parts(f)...)
				continue next
			}
		}
		*into = append(*into, *f)
	}
}

// leaderOf is where a partition request goes: the partition's upstream
// leader, or the error a broker would answer for it.
func (c *Client) leaderOf(ctx context.Context) func(string, int32) part {
	return func(topic string, p int32) part {
		pm, err := c.meta.Partition(ctx, topic, p)
		switch {
		case err != nil:
			return part{broker: -1, code: ErrCode(err)}
		case pm.Leader < 0:
			return part{broker: -1, code: kerr.LeaderNotAvailable.Code}
		}
		return part{broker: pm.Leader}
	}
}

// sendParts sends each part (a copy of req holding only that part's
// entries, made by sub) to its broker, answers the parts that cannot be
// sent with their code, and hands every answer to add, one at a time.
func (c *Client) sendParts(ctx context.Context, parts []part, sub func(part) kmsg.Request, add func(kmsg.Response)) {
	resps := make([]kmsg.Response, len(parts))
	eachParallel(len(parts), func(i int) {
		p, req := parts[i], sub(parts[i])
		if p.code != 0 {
			resps[i] = ErrorResponse(req, p.code)
			return
		}
		resp, err := c.toBroker(ctx, p.broker, req)
		if err != nil {
			resp = ErrorResponse(req, ErrCode(err))
		}
		resps[i] = resp
	})
	for _, r := range resps {
		add(r)
	}
}

func keysOf[T any](m map[part]T) []part {
	out := make([]part, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

var (
	listOffsetsReq = topicList[kmsg.ListOffsetsRequestTopic, kmsg.ListOffsetsRequestTopicPartition]{
		func(t *kmsg.ListOffsetsRequestTopic) string { return t.Topic },
		func(t *kmsg.ListOffsetsRequestTopic) *[]kmsg.ListOffsetsRequestTopicPartition { return &t.Partitions }}
	listOffsetsResp = topicList[kmsg.ListOffsetsResponseTopic, kmsg.ListOffsetsResponseTopicPartition]{
		func(t *kmsg.ListOffsetsResponseTopic) string { return t.Topic },
		func(t *kmsg.ListOffsetsResponseTopic) *[]kmsg.ListOffsetsResponseTopicPartition { return &t.Partitions }}
	deleteRecordsReq = topicList[kmsg.DeleteRecordsRequestTopic, kmsg.DeleteRecordsRequestTopicPartition]{
		func(t *kmsg.DeleteRecordsRequestTopic) string { return t.Topic },
		func(t *kmsg.DeleteRecordsRequestTopic) *[]kmsg.DeleteRecordsRequestTopicPartition {
			return &t.Partitions
		}}
	deleteRecordsResp = topicList[kmsg.DeleteRecordsResponseTopic, kmsg.DeleteRecordsResponseTopicPartition]{
		func(t *kmsg.DeleteRecordsResponseTopic) string { return t.Topic },
		func(t *kmsg.DeleteRecordsResponseTopic) *[]kmsg.DeleteRecordsResponseTopicPartition {
			return &t.Partitions
		}}
	epochReq = topicList[kmsg.OffsetForLeaderEpochRequestTopic, kmsg.OffsetForLeaderEpochRequestTopicPartition]{
		func(t *kmsg.OffsetForLeaderEpochRequestTopic) string { return t.Topic },
		func(t *kmsg.OffsetForLeaderEpochRequestTopic) *[]kmsg.OffsetForLeaderEpochRequestTopicPartition {
			return &t.Partitions
		}}
	epochResp = topicList[kmsg.OffsetForLeaderEpochResponseTopic, kmsg.OffsetForLeaderEpochResponseTopicPartition]{
		func(t *kmsg.OffsetForLeaderEpochResponseTopic) string { return t.Topic },
		func(t *kmsg.OffsetForLeaderEpochResponseTopic) *[]kmsg.OffsetForLeaderEpochResponseTopicPartition {
			return &t.Partitions
		}}
)

// byLeader splits a partition request by upstream leader, sends each part
// at the client's version, and merges the answers. A leader that moved
// answers NOT_LEADER_OR_FOLLOWER for its partitions; the cached metadata
// of topics answered with such errors is dropped, so the client's retry
// finds the new leader.
func (c *Client) byLeader(ctx context.Context, kreq kmsg.Request) kmsg.Response {
	dest := c.leaderOf(ctx)
	kresp := kreq.ResponseKind()
	switch req := kreq.(type) {
	case *kmsg.ListOffsetsRequest:
		resp := kresp.(*kmsg.ListOffsetsResponse)
		parts := split(req.Topics, listOffsetsReq, func(p *kmsg.ListOffsetsRequestTopicPartition) int32 { return p.Partition }, dest)
		c.sendParts(ctx, keysOf(parts), func(p part) kmsg.Request { sub := *req; sub.Topics = parts[p]; return &sub },
			func(r kmsg.Response) {
				lr := r.(*kmsg.ListOffsetsResponse)
				resp.ThrottleMillis = max(resp.ThrottleMillis, lr.ThrottleMillis)
				merge(&resp.Topics, lr.Topics, listOffsetsResp)
			})
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				c.dropStaleLeader(t.Topic, p.ErrorCode)
			}
		}
	case *kmsg.DeleteRecordsRequest:
		resp := kresp.(*kmsg.DeleteRecordsResponse)
		parts := split(req.Topics, deleteRecordsReq, func(p *kmsg.DeleteRecordsRequestTopicPartition) int32 { return p.Partition }, dest)
		c.sendParts(ctx, keysOf(parts), func(p part) kmsg.Request { sub := *req; sub.Topics = parts[p]; return &sub },
			func(r kmsg.Response) {
				dr := r.(*kmsg.DeleteRecordsResponse)
				resp.ThrottleMillis = max(resp.ThrottleMillis, dr.ThrottleMillis)
				merge(&resp.Topics, dr.Topics, deleteRecordsResp)
			})
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				c.dropStaleLeader(t.Topic, p.ErrorCode)
			}
		}
	case *kmsg.OffsetForLeaderEpochRequest:
		resp := kresp.(*kmsg.OffsetForLeaderEpochResponse)
		parts := split(req.Topics, epochReq, func(p *kmsg.OffsetForLeaderEpochRequestTopicPartition) int32 { return p.Partition }, dest)
		c.sendParts(ctx, keysOf(parts), func(p part) kmsg.Request { sub := *req; sub.Topics = parts[p]; return &sub },
			func(r kmsg.Response) {
				er := r.(*kmsg.OffsetForLeaderEpochResponse)
				resp.ThrottleMillis = max(resp.ThrottleMillis, er.ThrottleMillis)
				merge(&resp.Topics, er.Topics, epochResp)
			})
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				c.dropStaleLeader(t.Topic, p.ErrorCode)
			}
		}
	}
	return kresp
}

// dropStaleLeader forgets a topic's cached metadata when a partition
// answer says the leader it was sent to no longer leads it.
func (c *Client) dropStaleLeader(topic string, code int16) {
	switch code {
	case kerr.NotLeaderForPartition.Code, kerr.UnknownTopicOrPartition.Code, kerr.FencedLeaderEpoch.Code,
		kerr.LeaderNotAvailable.Code, kerr.UnknownLeaderEpoch.Code:
		c.meta.Invalidate(topic)
	}
}

// Config resource types whose name is a broker id: those go to that broker.
const (
	resourceBroker       = 4
	resourceBrokerLogger = 8
)

// resourcePart is where a config resource goes: the broker it names, or
// any broker (topics, and the cluster-wide broker default with no name).
func resourcePart(typ int8, name string) part {
	if typ == resourceBroker || typ == resourceBrokerLogger {
		if id, err := strconv.ParseInt(name, 10, 32); err == nil && id >= 0 {
			return part{broker: int32(id)}
		}
	}
	return part{broker: -1}
}

// byResource splits a config request by the broker each resource needs
// and merges the answers.
func (c *Client) byResource(ctx context.Context, kreq kmsg.Request) kmsg.Response {
	kresp := kreq.ResponseKind()
	switch req := kreq.(type) {
	case *kmsg.DescribeConfigsRequest:
		resp := kresp.(*kmsg.DescribeConfigsResponse)
		parts := make(map[part][]kmsg.DescribeConfigsRequestResource)
		for _, r := range req.Resources {
			p := resourcePart(int8(r.ResourceType), r.ResourceName)
			parts[p] = append(parts[p], r)
		}
		c.sendParts(ctx, keysOf(parts), func(p part) kmsg.Request { sub := *req; sub.Resources = parts[p]; return &sub },
			func(r kmsg.Response) {
				dr := r.(*kmsg.DescribeConfigsResponse)
				resp.ThrottleMillis = max(resp.ThrottleMillis, dr.ThrottleMillis)
				resp.Resources = append(resp.Resources, dr.Resources...)
			})
	case *kmsg.AlterConfigsRequest:
		resp := kresp.(*kmsg.AlterConfigsResponse)
		parts := make(map[part][]kmsg.AlterConfigsRequestResource)
		for _, r := range req.Resources {
			p := resourcePart(int8(r.ResourceType), r.ResourceName)
			parts[p] = append(parts[p], r)
		}
		c.sendParts(ctx, keysOf(parts), func(p part) kmsg.Request { sub := *req; sub.Resources = parts[p]; return &sub },
			func(r kmsg.Response) {
				ar := r.(*kmsg.AlterConfigsResponse)
				resp.ThrottleMillis = max(resp.ThrottleMillis, ar.ThrottleMillis)
				resp.Resources = append(resp.Resources, ar.Resources...)
			})
	case *kmsg.IncrementalAlterConfigsRequest:
		resp := kresp.(*kmsg.IncrementalAlterConfigsResponse)
		parts := make(map[part][]kmsg.IncrementalAlterConfigsRequestResource)
		for _, r := range req.Resources {
			p := resourcePart(int8(r.ResourceType), r.ResourceName)
			parts[p] = append(parts[p], r)
		}
		c.sendParts(ctx, keysOf(parts), func(p part) kmsg.Request { sub := *req; sub.Resources = parts[p]; return &sub },
			func(r kmsg.Response) {
				ir := r.(*kmsg.IncrementalAlterConfigsResponse)
				resp.ThrottleMillis = max(resp.ThrottleMillis, ir.ThrottleMillis)
				resp.Resources = append(resp.Resources, ir.Resources...)
			})
	}
	return kresp
}
