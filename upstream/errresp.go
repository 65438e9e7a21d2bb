package upstream

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/internal/answer"
)

// ErrCode is the Kafka error code a client should see for err: Kafka's own
// when there is one, else a retriable timeout (upstream unreachable).
func ErrCode(err error) int16 {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	return kerr.RequestTimedOut.Code
}

// ErrorResponse builds the response a broker gives when it cannot serve any
// part of req: code on every topic, partition or resource the request
// named, so the client sees a Kafka error rather than a closed connection.
func ErrorResponse(kreq kmsg.Request, code int16) kmsg.Response {
	kresp := kreq.ResponseKind()
	switch req := kreq.(type) {
	case *kmsg.ListOffsetsRequest:
		kresp.(*kmsg.ListOffsetsResponse).Topics = answer.Each(req.Topics, func(rt *kmsg.ListOffsetsResponseTopic, t *kmsg.ListOffsetsRequestTopic) {
			rt.Topic = t.Topic
			rt.Partitions = answer.Each(t.Partitions, func(rp *kmsg.ListOffsetsResponseTopicPartition, p *kmsg.ListOffsetsRequestTopicPartition) {
				rp.Partition, rp.ErrorCode = p.Partition, code
			})
		})
	case *kmsg.OffsetForLeaderEpochRequest:
		kresp.(*kmsg.OffsetForLeaderEpochResponse).Topics = answer.Each(req.Topics, func(rt *kmsg.OffsetForLeaderEpochResponseTopic, t *kmsg.OffsetForLeaderEpochRequestTopic) {
			rt.Topic = t.Topic
			rt.Partitions = answer.Each(t.Partitions, func(rp *kmsg.OffsetForLeaderEpochResponseTopicPartition, p *kmsg.OffsetForLeaderEpochRequestTopicPartition) {
				rp.Partition, rp.ErrorCode = p.Partition, code
			})
		})
	case *kmsg.OffsetFetchRequest:
		resp := kresp.(*kmsg.OffsetFetchResponse)
		resp.ErrorCode = code // v2-v7; before v2 only partitions carry errors
		resp.Topics = answer.Each(req.Topics, func(rt *kmsg.OffsetFetchResponseTopic, t *kmsg.OffsetFetchRequestTopic) {
			rt.Topic = t.Topic
			rt.Partitions = answer.Each(t.Partitions, func(rp *kmsg.OffsetFetchResponseTopicPartition, p *int32) {
				rp.Partition, rp.Offset, rp.ErrorCode = *p, -1, code
			})
		})
		resp.Groups = answer.Each(req.Groups, func(rg *kmsg.OffsetFetchResponseGroup, g *kmsg.OffsetFetchRequestGroup) {
			rg.Group, rg.ErrorCode = g.Group, code
		})
	case *kmsg.OffsetCommitRequest:
		kresp.(*kmsg.OffsetCommitResponse).Topics = answer.Each(req.Topics, func(rt *kmsg.OffsetCommitResponseTopic, t *kmsg.OffsetCommitRequestTopic) {
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			rt.Partitions = answer.Each(t.Partitions, func(rp *kmsg.OffsetCommitResponseTopicPartition, p *kmsg.OffsetCommitRequestTopicPartition) {
				rp.Partition, rp.ErrorCode = p.Partition, code
			})
		})
	case *kmsg.TxnOffsetCommitRequest:
		kresp.(*kmsg.TxnOffsetCommitResponse).Topics = answer.Each(req.Topics, func(rt *kmsg.TxnOffsetCommitResponseTopic, t *kmsg.TxnOffsetCommitRequestTopic) {
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			rt.Partitions = answer.Each(t.Partitions, func(rp *kmsg.TxnOffsetCommitResponseTopicPartition, p *kmsg.TxnOffsetCommitRequestTopicPartition) {
				rp.Partition, rp.ErrorCode = p.Partition, code
			})
		})
	case *kmsg.OffsetDeleteRequest:
		kresp.(*kmsg.OffsetDeleteResponse).ErrorCode = code
	case *kmsg.DeleteGroupsRequest:
		kresp.(*kmsg.DeleteGroupsResponse).Groups = answer.Each(req.Groups, func(rg *kmsg.DeleteGroupsResponseGroup, g *string) {
			rg.Group, rg.ErrorCode = *g, code
		})
	case *kmsg.AddOffsetsToTxnRequest:
		kresp.(*kmsg.AddOffsetsToTxnResponse).ErrorCode = code
	case *kmsg.EndTxnRequest:
		kresp.(*kmsg.EndTxnResponse).ErrorCode = code
	case *kmsg.AddPartitionsToTxnRequest:
		resp := kresp.(*kmsg.AddPartitionsToTxnResponse)
		resp.ErrorCode = code
		resp.Topics = answer.Each(req.Topics, func(rt *kmsg.AddPartitionsToTxnResponseTopic, t *kmsg.AddPartitionsToTxnRequestTopic) {
			rt.Topic = t.Topic
			rt.Partitions = answer.Each(t.Partitions, func(rp *kmsg.AddPartitionsToTxnResponseTopicPartition, p *int32) {
				rp.Partition, rp.ErrorCode = *p, code
			})
		})
	case *kmsg.InitProducerIDRequest:
		kresp.(*kmsg.InitProducerIDResponse).ErrorCode = code
	case *kmsg.CreateTopicsRequest:
		kresp.(*kmsg.CreateTopicsResponse).Topics = answer.Each(req.Topics, func(rt *kmsg.CreateTopicsResponseTopic, t *kmsg.CreateTopicsRequestTopic) {
			rt.Topic, rt.ErrorCode = t.Topic, code
		})
	case *kmsg.DeleteTopicsRequest:
		resp := kresp.(*kmsg.DeleteTopicsResponse)
		resp.Topics = append(answer.Each(req.TopicNames, func(rt *kmsg.DeleteTopicsResponseTopic, n *string) {
			rt.Topic, rt.ErrorCode = kmsg.StringPtr(*n), code
		}), answer.Each(req.Topics, func(rt *kmsg.DeleteTopicsResponseTopic, t *kmsg.DeleteTopicsRequestTopic) {
			rt.Topic, rt.TopicID, rt.ErrorCode = t.Topic, t.TopicID, code
		})...)
	case *kmsg.DeleteRecordsRequest:
		kresp.(*kmsg.DeleteRecordsResponse).Topics = answer.Each(req.Topics, func(rt *kmsg.DeleteRecordsResponseTopic, t *kmsg.DeleteRecordsRequestTopic) {
			rt.Topic = t.Topic
			rt.Partitions = answer.Each(t.Partitions, func(rp *kmsg.DeleteRecordsResponseTopicPartition, p *kmsg.DeleteRecordsRequestTopicPartition) {
				rp.Partition, rp.ErrorCode = p.Partition, code
			})
		})
	case *kmsg.CreatePartitionsRequest:
		kresp.(*kmsg.CreatePartitionsResponse).Topics = answer.Each(req.Topics, func(rt *kmsg.CreatePartitionsResponseTopic, t *kmsg.CreatePartitionsRequestTopic) {
			rt.Topic, rt.ErrorCode = t.Topic, code
		})
	case *kmsg.DescribeConfigsRequest:
		kresp.(*kmsg.DescribeConfigsResponse).Resources = answer.Each(req.Resources, func(rr *kmsg.DescribeConfigsResponseResource, r *kmsg.DescribeConfigsRequestResource) {
			rr.ResourceType, rr.ResourceName, rr.ErrorCode = r.ResourceType, r.ResourceName, code
		})
	case *kmsg.AlterConfigsRequest:
		kresp.(*kmsg.AlterConfigsResponse).Resources = answer.Each(req.Resources, func(rr *kmsg.AlterConfigsResponseResource, r *kmsg.AlterConfigsRequestResource) {
			rr.ResourceType, rr.ResourceName, rr.ErrorCode = r.ResourceType, r.ResourceName, code
		})
	case *kmsg.IncrementalAlterConfigsRequest:
		kresp.(*kmsg.IncrementalAlterConfigsResponse).Resources = answer.Each(req.Resources, func(rr *kmsg.IncrementalAlterConfigsResponseResource, r *kmsg.IncrementalAlterConfigsRequestResource) {
			rr.ResourceType, rr.ResourceName, rr.ErrorCode = r.ResourceType, r.ResourceName, code
		})
	}
	return kresp
}
