package kafkawire

// OffsetFetch, key 9.
//
// v0-v9. Committed offsets live upstream under the same group id, so the
// request goes at the client's version to upstream's coordinator of the
// group; from v8 a request may name several groups, and each goes to its
// own coordinator, the answers merged. Members join groups at meshka, never
// upstream, so upstream may not know a group that has no commits yet; a
// Kafka broker answers that with offset -1 per partition and no error,
// which is what clients wait for, so meshka answers the same. With ACLs, a
// group the principal may not DESCRIBE gets GROUP_AUTHORIZATION_FAILED; a
// topic it may not DESCRIBE gets TOPIC_AUTHORIZATION_FAILED in its
// partitions (offset -1), and a request for every topic with commits
// leaves such topics out, as Kafka does.

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/acl"
	"github.com/meshka/meshka/internal/answer"
	"github.com/meshka/meshka/upstream"
)

func init() { register(9, 0, maxOf(9), handleOffsetFetch) }

func handleOffsetFetch(c *conn, kreq kmsg.Request) func() (kmsg.Response, error) {
	req := kreq.(*kmsg.OffsetFetchRequest)
	if !c.aclOn() {
		return forward(noCommitsYet)(c, req)
	}
	if req.Version < 8 {
		return c.offsetFetchOne(req)
	}
	up := *req
	up.Groups = nil
	var refusedGroups []string
	refusedTopics := map[string][]kmsg.OffsetFetchRequestGroupTopic{} // by group
	for _, g := range req.Groups {
		if !c.allowed(acl.Describe, acl.Group, g.Group) {
			refusedGroups = append(refusedGroups, g.Group)
			continue
		}
		ok, no := split(g.Topics, func(t *kmsg.OffsetFetchRequestGroupTopic) bool { return c.allowedTopic(acl.Describe, t.Topic) })
		if no != nil {
			refusedTopics[g.Group] = no
			if len(ok) == 0 {
				continue
			}
			g.Topics = ok
		}
		up.Groups = append(up.Groups, g)
	}
	refusedTopic := func(t *kmsg.OffsetFetchRequestGroupTopic) kmsg.OffsetFetchResponseGroupTopic {
		rt := kmsg.NewOffsetFetchResponseGroupTopic()
		rt.Topic, rt.TopicID = t.Topic, t.TopicID
		rt.Partitions = answer.Each(t.Partitions, func(rp *kmsg.OffsetFetchResponseGroupTopicPartition, p *int32) {
			rp.Partition, rp.Offset, rp.LeaderEpoch, rp.ErrorCode = *p, -1, -1, topicRefused
		})
		return rt
	}
	return func() (kmsg.Response, error) {
		resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
		if len(up.Groups) > 0 {
			resp = c.forward(&up, &up).(*kmsg.OffsetFetchResponse)
			noCommitsYet(c, &up, resp)
		}
		for gi := range resp.Groups {
			g := &resp.Groups[gi]
			all := slices.ContainsFunc(req.Groups, func(rg kmsg.OffsetFetchRequestGroup) bool { return rg.Group == g.Group && rg.Topics == nil })
			if all {
				g.Topics = slices.DeleteFunc(g.Topics, func(t kmsg.OffsetFetchResponseGroupTopic) bool { return !c.allowedTopic(acl.Describe, t.Topic) })
			}
			for i := range refusedTopics[g.Group] {
				g.Topics = append(g.Topics, refusedTopic(&refusedTopics[g.Group][i]))
			}
			delete(refusedTopics, g.Group)
		}
		for _, rg := range req.Groups {
			ts, ok := refusedTopics[rg.Group]
			if !ok {
				continue // answered above, or refused whole
			}
			g := kmsg.NewOffsetFetchResponseGroup()
			g.Group = rg.Group
			for i := range ts {
				g.Topics = append(g.Topics, refusedTopic(&ts[i]))
			}
			resp.Groups = append(resp.Groups, g)
			delete(refusedTopics, rg.Group)
		}
		for _, id := range refusedGroups {
			g := kmsg.NewOffsetFetchResponseGroup()
			g.Group, g.ErrorCode = id, groupRefused
			resp.Groups = append(resp.Groups, g)
		}
		return resp, nil
	}
}

// offsetFetchOne is OffsetFetch before v8, one group, with ACLs.
func (c *conn) offsetFetchOne(req *kmsg.OffsetFetchRequest) func() (kmsg.Response, error) {
	if !c.allowed(acl.Describe, acl.Group, req.Group) {
		return now(upstream.ErrorResponse(req, groupRefused), nil)
	}
	ok, no := split(req.Topics, func(t *kmsg.OffsetFetchRequestTopic) bool { return c.allowedTopic(acl.Describe, t.Topic) })
	up := *req
	if no != nil {
		up.Topics = ok
	}
	return func() (kmsg.Response, error) {
		resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
		if req.Topics == nil || len(ok) > 0 {
			resp = c.forward(&up, &up).(*kmsg.OffsetFetchResponse)
			noCommitsYet(c, &up, resp)
		}
		if req.Topics == nil {
			// Every topic with commits: those it may describe.
			resp.Topics = slices.DeleteFunc(resp.Topics, func(t kmsg.OffsetFetchResponseTopic) bool { return !c.allowedTopic(acl.Describe, t.Topic) })
		}
		for _, t := range no {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = t.Topic
			rt.Partitions = answer.Each(t.Partitions, func(rp *kmsg.OffsetFetchResponseTopicPartition, p *int32) {
				rp.Partition, rp.Offset, rp.LeaderEpoch, rp.ErrorCode = *p, -1, -1, topicRefused
			})
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil
	}
}

func noCommitsYet(_ *conn, kreq kmsg.Request, kresp kmsg.Response) {
	req, resp := kreq.(*kmsg.OffsetFetchRequest), kresp.(*kmsg.OffsetFetchResponse)
	notFound := kerr.GroupIDNotFound.Code
	if resp.ErrorCode == notFound {
		resp.ErrorCode = 0
		resp.Topics = resp.Topics[:0]
		for _, t := range req.Topics {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetFetchResponseTopicPartition()
				rp.Partition, rp.Offset, rp.LeaderEpoch = p, -1, -1
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
	}
	for gi := range resp.Groups {
		g := &resp.Groups[gi]
		if g.ErrorCode != notFound {
			continue
		}
		g.ErrorCode = 0
		g.Topics = g.Topics[:0]
		for _, rg := range req.Groups {
			if rg.Group != g.Group {
				continue
			}
			for _, t := range rg.Topics {
				rt := kmsg.NewOffsetFetchResponseGroupTopic()
				rt.Topic, rt.TopicID = t.Topic, t.TopicID
				for _, p := range t.Partitions {
					rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					rp.Partition, rp.Offset, rp.LeaderEpoch = p, -1, -1
					rt.Partitions = append(rt.Partitions, rp)
				}
				g.Topics = append(g.Topics, rt)
			}
		}
	}
}
