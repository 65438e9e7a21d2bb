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
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED. A partition of a topic whose
// topics rule validates produce has its records checked here, on the read
// goroutine (the batches of a request of 64 KiB or more on up to
// GOMAXPROCS goroutines at once, checkBatches), before any batch goes
// anywhere: a batch with a record the
// rule refuses gets INVALID_RECORD (with each refused record from v8) and
// is not forwarded; a good batch goes on byte for byte. A batch whose
// schemas cannot be read now (the external registry is unreachable or
// failing) is not the client's fault: it gets NOT_ENOUGH_REPLICAS, the
// retriable code a broker answers when it cannot accept a write for now
// and the write did not happen (see refuseUnchecked), and is not
// forwarded either.

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/acl"
	"github.com/meshka/meshka/actors/partition"
	"github.com/meshka/meshka/cluster"
	"github.com/meshka/meshka/internal/answer"
	"github.com/meshka/meshka/schema/validate"
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
	checked := c.s.checkBatches(req)
	// A transactional producer needs WRITE on its transactional id, and
	// every producer WRITE on each topic; a refused partition is
	// answered in its own entry, the others go on.
	var refused int16
	if req.TransactionID != nil && !c.allowed(acl.Write, acl.TransactionalID, *req.TransactionID) {
		refused = txnRefused
	}
	ti := -1
	resp.Topics = answer.Each(req.Topics, func(out *kmsg.ProduceResponseTopic, rt *kmsg.ProduceRequestTopic) {
		ti++
		pi := -1
		out.Topic = rt.Topic
		code := refused
		if code == 0 && !c.allowedTopic(acl.Write, rt.Topic) {
			code = topicRefused
		}
		out.Partitions = answer.Each(rt.Partitions, func(op *kmsg.ProduceResponseTopicPartition, rp *kmsg.ProduceRequestTopicPartition) {
			pi++
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
			if errs := checked.of(ti, pi); errs != nil {
				if validate.Unavailable(errs[0].Err) {
					c.s.trouble.Warn("schemas", "produce: batches not checked, the schema registry cannot be read; producers are told to retry", "topic", rt.Topic, "partition", rp.Partition, "err", errs[0].Err)
					refuseUnchecked(op, req.Version, errs[0].Err)
					return
				}
				c.s.log.Debug("produce: batch refused", "topic", rt.Topic, "partition", rp.Partition, "records", len(errs), "first", errs[0].Err)
				refuseBatch(op, req.Version, errs)
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

// refuseBatch answers a batch holding records its topic's rule refuses, as
// a Kafka broker answers records that fail its own checks: INVALID_RECORD
// for the whole batch, none of it written, and from v8 on each refused
// record's index in the batch (KIP-467's batch_index) with the reason, and
// a message for the batch.
func refuseBatch(op *kmsg.ProduceResponseTopicPartition, version int16, errs []validate.RecordError) {
	op.ErrorCode = kerr.InvalidRecord.Code
	op.BaseOffset, op.LogAppendTime, op.LogStartOffset = -1, -1, -1
	if version < 8 {
		return
	}
	var msg string
	if first := errs[0]; first.Index < 0 {
		msg = "the batch cannot be validated: " + first.Err.Error()
	} else {
		msg = fmt.Sprintf("%d record(s) do not match the topic's schema rule; record %d: %v", len(errs), first.Index, first.Err)
	}
	op.ErrorMessage = &msg
	for _, e := range errs {
		if e.Index < 0 {
			continue
		}
		m := e.Err.Error()
		op.ErrorRecords = append(op.ErrorRecords, kmsg.ProduceResponseTopicPartitionErrorRecord{RelativeOffset: int32(e.Index), ErrorMessage: &m})
	}
}

// refuseUnchecked answers a batch that could not be checked because its
// schemas' registry cannot be read now. Of the codes a broker answers,
// NOT_ENOUGH_REPLICAS says what clients need to know: retriable (every
// client retries it within its delivery timeout), the batch was not
// appended (unlike REQUEST_TIMED_OUT, which leaves an idempotent producer
// unsure), and not a reason to refresh metadata (unlike the storage and
// leadership errors). From v8 the message says the real cause.
func refuseUnchecked(op *kmsg.ProduceResponseTopicPartition, version int16, err error) {
	op.ErrorCode = kerr.NotEnoughReplicas.Code
	op.BaseOffset, op.LogAppendTime, op.LogStartOffset = -1, -1, -1
	if version >= 8 {
		msg := "the batch could not be checked against its topic's schema rule, retry: " + err.Error()
		op.ErrorMessage = &msg
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
