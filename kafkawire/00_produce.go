package kafkawire

// Produce, key 0.
//
// v0-v12 (v13 names topics by id and is not handled); v0-v2 carry the old
// message formats, which pass upstream untouched at the same version. Each
// partition's batch goes to its partition actor on the read goroutine, in
// request order, and the actor forwards it to the upstream leader byte for
// byte with the client's version, acks, timeout and transactional id,
// several batches in flight per partition on one ordered connection, so
// upstream appends them in the order clients sent them. The answer is
// upstream's, per partition. acks=0 gets no response. With ACLs, a
// partition of a topic the principal may not WRITE gets
// TOPIC_AUTHORIZATION_FAILED, and every partition of a transactional
// produce whose transactional id it may not WRITE gets
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/acl"
	"github.com/meshka/meshka/actors/partition"
	"github.com/meshka/meshka/cluster"
	"github.com/meshka/meshka/internal/answer"
	"github.com/meshka/meshka/upstream"
)

func init() { register(0, 0, 12, handleProduce) }

func handleProduce(c *conn, kreq kmsg.Request) func() (kmsg.Response, error) {
	req := kreq.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	type wait struct {
		rp    *kmsg.ProduceResponseTopicPartition
		reply *cluster.Reply
	}
	var waits []wait
	// A transactional producer needs WRITE on its transactional id, and
	// every producer WRITE on each topic; a refused partition is
	// answered in its own entry, the others go on.
	var refused int16
	if req.TransactionID != nil && !c.allowed(acl.Write, acl.TransactionalID, *req.TransactionID) {
		refused = txnRefused
	}
	resp.Topics = answer.Each(req.Topics, func(out *kmsg.ProduceResponseTopic, rt *kmsg.ProduceRequestTopic) {
		out.Topic = rt.Topic
		code := refused
		if code == 0 && !c.allowedTopic(acl.Write, rt.Topic) {
			code = topicRefused
		}
		out.Partitions = answer.Each(rt.Partitions, func(op *kmsg.ProduceResponseTopicPartition, rp *kmsg.ProduceRequestTopicPartition) {
			op.Partition = rp.Partition
			if code != 0 {
				op.ErrorCode = code
				return
			}
			if code := c.s.checkPartition(c, rt.Topic, rp.Partition); code != 0 {
				op.ErrorCode = code
				return
			}
			if rp.Records == nil {
				op.ErrorCode = kerr.InvalidRecord.Code
				return
			}
			c.s.m.produced(rt.Topic, len(rp.Records))
			msg := partition.NewProduceRequest(upstream.ProduceArgs{
				Topic: rt.Topic, Partition: rp.Partition, Version: req.Version,
				Acks: req.Acks, TimeoutMillis: req.TimeoutMillis,
				TransactionalID: req.TransactionID, Records: rp.Records,
			})
			id := c.s.partitionID(rt.Topic, rp.Partition)
			var err error
			if req.Acks == 0 {
				err = c.s.deps.Mesh.Tell(partition.Kind, id, msg)
			} else {
				var r *cluster.Reply
				if r, err = c.s.deps.Mesh.Ask(partition.Kind, id, msg); err == nil {
					waits = append(waits, wait{op, r})
				}
			}
			if err != nil {
				c.s.log.Warn("produce: partition actor unavailable", "topic", rt.Topic, "partition", rp.Partition, "err", err)
				op.ErrorCode = kerr.NotLeaderForPartition.Code
			}
		})
	})
	if req.Acks == 0 {
		return now(nil, nil)
	}
	return func() (kmsg.Response, error) {
		defer func() {
			for _, w := range waits {
				w.reply.Close()
			}
		}()
		// The actor always answers; the bound only guards against a stuck
		// upstream beyond the client's own timeout.
		limit := time.NewTimer(time.Duration(req.TimeoutMillis)*time.Millisecond + c.s.cfg.FetchMaxWaitCap + time.Minute)
		defer limit.Stop()
		for _, w := range waits {
			select {
			case v := <-w.reply.C():
				v, err := w.reply.Result(v)
				if r, ok := v.(*partition.ProduceResponse); ok && err == nil {
					*w.rp = r.Result(w.rp.Partition)
				} else {
					// The actor stopped first (its node gave the
					// partition away): the client asks the new leader.
					w.rp.ErrorCode = kerr.NotLeaderForPartition.Code
				}
			case <-limit.C:
				w.rp.ErrorCode = kerr.RequestTimedOut.Code
			case <-c.ctx.Done():
				return nil, c.ctx.Err()
			}
		}
		return resp, nil
	}
}

// checkPartition answers whether this node serves the partition: upstream
// must know it (so no actor is made for a made-up name) and this node must
// host its actor, else the client is told to refresh its metadata.
func (s *Server) checkPartition(c *conn, topic string, p int32) int16 {
	if _, err := s.deps.Upstream.Meta().Partition(c.ctx, topic, p); err != nil {
		return errCode(err)
	}
	if !s.deps.Mesh.Owns(partition.Kind, s.partitionID(topic, p)) {
		return kerr.NotLeaderForPartition.Code
	}
	return 0
}
