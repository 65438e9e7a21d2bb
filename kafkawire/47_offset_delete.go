package kafkawire

// OffsetDelete, key 47.
//
// The group actor refuses topics its live members subscribe to
// (GROUP_SUBSCRIBED_TO_TOPIC), as Kafka's coordinator does; the rest are
// deleted upstream, where the offsets live. With ACLs, the group needs
// DELETE (else GROUP_AUTHORIZATION_FAILED for the request) and each topic
// READ (else TOPIC_AUTHORIZATION_FAILED in its partitions).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/acl"
	"github.com/meshka/meshka/actors/group"
	"github.com/meshka/meshka/internal/answer"
)

func init() { register(47, 0, maxOf(47), handleOffsetDelete) }

func handleOffsetDelete(c *conn, kreq kmsg.Request) func() (kmsg.Response, error) {
	client := kreq.(*kmsg.OffsetDeleteRequest)
	ok, no := split(client.Topics, func(t *kmsg.OffsetDeleteRequestTopic) bool { return c.allowedTopic(acl.Read, t.Topic) })
	req := client
	if no != nil {
		allowed := *client
		allowed.Topics = ok
		req = &allowed
	}
	refusedTopics := answer.Each(no, func(rt *kmsg.OffsetDeleteResponseTopic, t *kmsg.OffsetDeleteRequestTopic) {
		rt.Topic = t.Topic
		rt.Partitions = answer.Each(t.Partitions, func(rp *kmsg.OffsetDeleteResponseTopicPartition, p *kmsg.OffsetDeleteRequestTopicPartition) {
			rp.Partition, rp.ErrorCode = p.Partition, topicRefused
		})
	})
	return func() (kmsg.Response, error) {
		resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
		if req.Group == "" {
			resp.ErrorCode = kerr.InvalidGroupID.Code
			return resp, nil
		}
		if !c.allowed(acl.Delete, acl.Group, req.Group) {
			resp.ErrorCode = groupRefused
			return resp, nil
		}
		if len(req.Topics) == 0 && no != nil {
			resp.Topics = refusedTopics
			return resp, nil
		}
		topics := make([]string, 0, len(req.Topics))
		for _, t := range req.Topics {
			topics = append(topics, t.Topic)
		}
		checked, code, err := ask[*group.CheckOffsetDeleteResponse](c, req.Group, &group.CheckOffsetDeleteRequest{Topics: topics}, groupWait)
		if err != nil {
			return nil, err
		}
		if code != 0 {
			resp.ErrorCode = code
			return resp, nil
		}
		refused := checked.ErrorCodes
		up := *req
		up.Topics = nil
		var held []kmsg.OffsetDeleteRequestTopic // refused by the group
		for _, t := range req.Topics {
			if refused[t.Topic] == 0 {
				up.Topics = append(up.Topics, t)
			} else {
				held = append(held, t)
			}
		}
		upResp := kmsg.NewPtrOffsetDeleteResponse()
		if len(up.Topics) > 0 {
			kresp, err := c.s.deps.Upstream.Forward(c.ctx, &up)
			if err != nil {
				resp.ErrorCode = errCode(err)
				return resp, nil
			}
			upResp = kresp.(*kmsg.OffsetDeleteResponse)
			if upResp.ErrorCode != 0 {
				resp.ErrorCode = upResp.ErrorCode
				return resp, nil
			}
		}
		resp.Topics = answer.Each(held, func(rt *kmsg.OffsetDeleteResponseTopic, t *kmsg.OffsetDeleteRequestTopic) {
			rt.Topic = t.Topic
			rt.Partitions = answer.Each(t.Partitions, func(rp *kmsg.OffsetDeleteResponseTopicPartition, p *kmsg.OffsetDeleteRequestTopicPartition) {
				rp.Partition, rp.ErrorCode = p.Partition, int16(refused[t.Topic])
			})
		})
		resp.Topics = append(resp.Topics, upResp.Topics...)
		resp.Topics = append(resp.Topics, refusedTopics...)
		return resp, nil
	}
}
