package upstream

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Forward sends a client's request upstream at exactly the version the
// client used, to the broker a Kafka client would have picked, and returns
// upstream's answer for the caller to write back unchanged in meaning.
//
// One version on both legs is what keeps a forwarded request faithful:
// a request re-encoded at a higher version can mean something else.
// EndTxn v5 bumps the producer epoch (KIP-890), which a client speaking v3
// never learns, so its next transaction is fenced; newer versions add error
// codes that older clients do not know, and fields whose defaults are not
// what the older version did.
//
// Routing follows the request's kind:
//   - admin requests (CreateTopics, DeleteTopics, CreatePartitions): the
//     controller;
//   - transaction requests: the transaction coordinator of the
//     transactional id; group offset requests: the group's coordinator
//     (see toCoordinator);
//   - partition requests (ListOffsets, DeleteRecords, OffsetForLeaderEpoch):
//     split by each partition's upstream leader;
//   - config requests: broker resources to that broker, the rest to any;
//   - anything else: any broker.
//
// Parts that cannot be sent are answered inside the response with a Kafka
// error code, as a broker would. An error is returned only when nothing
// could be sent; ErrorResponse turns it into an answer.
func (c *Client) Forward(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	ctx, cancel := c.timeout(ctx)
	defer cancel()
	switch r := req.(type) {
	case kmsg.AdminRequest:
		return c.main.Request(ctx, &pinnedAdmin{pinned{Request: req, max: req.GetVersion()}})
	case *kmsg.InitProducerIDRequest:
		if r.TransactionalID == nil {
			return c.anyBroker(ctx, req)
		}
		return c.toCoordinator(ctx, coordinatorTxn, *r.TransactionalID, req)
	case *kmsg.AddPartitionsToTxnRequest:
		if r.Version >= 4 {
			// v4+ batches many transactional ids and is meant for
			// brokers (KIP-890); meshka advertises v0-v3 only.
			return nil, fmt.Errorf("upstream: AddPartitionsToTxn v%d is not forwarded", r.Version)
		}
		return c.toCoordinator(ctx, coordinatorTxn, r.TransactionalID, req)
	case *kmsg.AddOffsetsToTxnRequest:
		return c.toCoordinator(ctx, coordinatorTxn, r.TransactionalID, req)
	case *kmsg.EndTxnRequest:
		return c.toCoordinator(ctx, coordinatorTxn, r.TransactionalID, req)
	case *kmsg.TxnOffsetCommitRequest:
		return c.toCoordinator(ctx, coordinatorGroup, r.Group, req)
	case *kmsg.OffsetCommitRequest:
		return c.toCoordinator(ctx, coordinatorGroup, r.Group, req)
	case *kmsg.OffsetDeleteRequest:
		return c.toCoordinator(ctx, coordinatorGroup, r.Group, req)
	case *kmsg.OffsetFetchRequest:
		if r.Version < 8 {
			return c.toCoordinator(ctx, coordinatorGroup, r.Group, req)
		}
		return c.offsetFetchGroups(ctx, r), nil
	case *kmsg.DeleteGroupsRequest:
		return c.deleteGroups(ctx, r), nil
	case *kmsg.ListOffsetsRequest, *kmsg.DeleteRecordsRequest, *kmsg.OffsetForLeaderEpochRequest:
		return c.byLeader(ctx, req), nil
	case *kmsg.DescribeConfigsRequest, *kmsg.AlterConfigsRequest, *kmsg.IncrementalAlterConfigsRequest:
		return c.byResource(ctx, req), nil
	}
	return c.anyBroker(ctx, req)
}

// exact wraps req so kgo issues it at the version it carries: kgo takes the
// highest version up to the request's MaxVersion that the broker supports,
// and meshka only accepts versions upstream supports.
func exact(req kmsg.Request) kmsg.Request {
	return &pinned{Request: req, max: req.GetVersion()}
}

// anyBroker sends req, at its version, to whichever upstream broker kgo
// picks, retrying on connection errors.
func (c *Client) anyBroker(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	return c.main.Request(ctx, exact(req))
}

// toBroker sends req, at its version, to one upstream broker, retrying on
// connection errors.
func (c *Client) toBroker(ctx context.Context, broker int32, req kmsg.Request) (kmsg.Response, error) {
	if broker < 0 {
		return c.anyBroker(ctx, req)
	}
	return c.main.Broker(int(broker)).RetriableRequest(ctx, exact(req))
}
