package mqtt

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/meshka/meshka/acl"
	"github.com/meshka/meshka/mappers/mqtt/layout"
	"github.com/meshka/meshka/mappers/mqtt/wire"
	"github.com/meshka/meshka/mesh"
)

// publish handles a PUBLISH from the client: QoS 0 is handed to the
// producer; QoS 1 is answered with PUBACK once upstream acknowledged it,
// QoS 2 with PUBREC, and a QoS 2 packet id already written is answered
// without writing it again.
func (c *conn) publish(pk *packets.Packet) error {
	if code := pk.PublishValidate(uint16(c.b.cfg.TopicAliasMaximum)); code != packets.CodeSuccess {
		return &wire.Error{Code: code}
	}
	if c.version == wire.V5 && pk.Properties.TopicAliasFlag {
		a := pk.Properties.TopicAlias
		c.mu.Lock()
		if pk.TopicName != "" {
			c.aliases[a] = pk.TopicName
		} else if name, ok := c.aliases[a]; ok {
			pk.TopicName = name
		} else {
			c.mu.Unlock()
			return protocolError("a topic alias not set") // [MQTT-3.3.2-7]
		}
		c.mu.Unlock()
	}
	if strings.HasPrefix(pk.TopicName, "$share/") {
		return &wire.Error{Code: packets.ErrTopicNameInvalid}
	}
	if pk.Properties.PayloadFormatFlag && pk.Properties.PayloadFormat == 1 && !utf8.Valid(pk.Payload) {
		return c.refusePublish(pk, packets.ErrPayloadFormatInvalid)
	}
	qos := pk.FixedHeader.Qos
	if qos == 2 {
		c.mu.Lock()
		dup := c.st.Received(pk.PacketID)
		c.mu.Unlock()
		if dup {
			// written already: answer again, write nothing
			c.send(&packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrec}, PacketID: pk.PacketID})
			return nil
		}
	}
	topic, vs := c.b.routes.routeFor(pk.TopicName)
	if !c.b.authorized(c, acl.Write, topic) {
		return c.refusePublish(pk, packets.ErrNotAuthorized)
	}
	rec := layout.Record(pk, c.clientID, topic, time.Now())
	// A converting route encodes the JSON payload; the topics rules
	// (docs/schemas.md) check the record. A record either refuses is not
	// written: QoS 1 and 2 are answered 0x99 in publish order below, and
	// a schema that cannot be read now 0x80.
	var invalid error
	if vs != nil && len(rec.Value) > 0 {
		invalid = c.b.encodeValue(c.ctx, vs, &rec)
	}
	if invalid == nil {
		invalid = c.b.m.Check(rec)
	}
	if invalid != nil {
		if _, ok := errors.AsType[*mesh.UncheckedError](invalid); ok {
			c.b.metrics.refused[refusedUnchecked].Inc()
		} else if _, ok := errors.AsType[*mesh.InvalidRecordError](invalid); ok {
			c.b.metrics.refused[refusedInvalid].Inc()
		}
		c.log("publish refused", "topic", pk.TopicName, "err", invalid)
		if qos == 0 {
			return nil
		}
	} else {
		c.b.stats.published.Add(1)
		c.b.metrics.received[qosIndex(qos)].Inc()
	}
	if qos == 0 {
		err := c.b.qos0.Produce(c.ctx, rec, nil)
		if err == nil && pk.FixedHeader.Retain {
			err = c.b.retain(c.ctx, pk, nil)
		}
		if err != nil && c.ctx.Err() == nil {
			c.log("QoS 0 publish not written", "err", err)
		}
		return nil
	}
	c.mu.Lock()
	for c.inflight >= c.b.cfg.MaxInflight {
		if c.version == wire.V5 {
			c.mu.Unlock()
			return &wire.Error{Code: packets.ErrReceiveMaximum} // [MQTT-3.3.4-9]
		}
		// MQTT 3.1.1 has no Receive Maximum to tell the client: it is
		// read no further until an answer frees a slot, or the server
		// ends the connection.
		if c.serverEnd != nil {
			c.mu.Unlock()
			return c.serverEnd
		}
		c.acks.waitRoom(&c.mu)
	}
	c.inflight++
	slot := c.acks.add(pk.PacketID, qos)
	c.mu.Unlock()

	if invalid != nil {
		c.answered(slot, invalid)
		return nil
	}
	parts := 1
	if pk.FixedHeader.Retain {
		parts = 2
	}
	done := make(chan error, parts)
	answer := func(_ mesh.Record, err error) { done <- err }
	if err := c.b.all.Produce(c.ctx, rec, answer); err != nil {
		done <- err
	}
	if pk.FixedHeader.Retain {
		if err := c.b.retain(c.ctx, pk, answer); err != nil {
			done <- err
		}
	}
	// The answer is sent by a goroutine of the connection's, in the order
	// the publishes came.
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		var err error
		for range parts {
			if e := <-done; e != nil && err == nil {
				err = e
			}
		}
		c.answered(slot, err)
	}()
	return nil
}

// refusePublish answers a publish that is not written: MQTT 5 with the
// reason in PUBACK or PUBREC (QoS 0: dropped); MQTT 3.1.1, which has no
// way to say so, by closing the connection.
func (c *conn) refusePublish(pk *packets.Packet, code packets.Code) error {
	c.log("publish refused", "topic", pk.TopicName, "reason", code.Reason)
	switch code.Code {
	case packets.ErrNotAuthorized.Code:
		c.b.metrics.refused[refusedNotAuthorized].Inc()
	case packets.ErrPayloadFormatInvalid.Code:
		c.b.metrics.refused[refusedPayloadFormat].Inc()
	}
	if c.version != wire.V5 {
		if pk.FixedHeader.Qos == 0 {
			return nil
		}
		return &wire.Error{Code: code}
	}
	switch pk.FixedHeader.Qos {
	case 1:
		c.send(&packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pk.PacketID, ReasonCode: code.Code,
			Properties: packets.Properties{ReasonString: code.Reason}})
	case 2:
		c.send(&packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrec}, PacketID: pk.PacketID, ReasonCode: code.Code,
			Properties: packets.Properties{ReasonString: code.Reason}})
	}
	return nil
}

// answered is a QoS 1 or 2 publish written (err nil) or not; the
// answers go out in the order the publishes came [MQTT-4.6.0-2].
func (c *conn) answered(slot *ackSlot, err error) {
	c.mu.Lock()
	slot.done, slot.err = true, err
	ready := c.acks.ready()
	for _, s := range ready {
		c.inflight--
		if s.err == nil && s.qos == 2 {
			c.st.Receive(s.pid)
		}
	}
	if len(ready) > 0 {
		c.dirty = true
		c.acks.freed()
	}
	c.mu.Unlock()
	for _, s := range ready {
		typ := packets.Puback
		if s.qos == 2 {
			typ = packets.Pubrec
		}
		pk := &packets.Packet{FixedHeader: packets.FixedHeader{Type: typ}, PacketID: s.pid}
		if s.err != nil {
			code := publishErrorCode(s.err)
			c.log("publish not written", "err", s.err)
			if c.version != wire.V5 {
				// 3.1.1 cannot refuse a publish: the client resends it
				// after it reconnects.
				c.nc.Close()
				return
			}
			pk.ReasonCode = code.Code
			pk.Properties.ReasonString = code.Reason
		}
		c.send(pk)
	}
	c.saveSoon()
}

// publishErrorCode is the MQTT 5 reason for a publish upstream, or the
// node's topics rules, refused.
func publishErrorCode(err error) packets.Code {
	if ie, ok := errors.AsType[*mesh.InvalidRecordError](err); ok {
		return packets.Code{Code: packets.ErrPayloadFormatInvalid.Code, Reason: ie.Err.Error()}
	}
	if ue, ok := errors.AsType[*mesh.UncheckedError](err); ok {
		// Not the payload's fault: the schemas could not be read.
		return packets.Code{Code: packets.ErrUnspecifiedError.Code, Reason: "the record could not be checked now, retry: " + ue.Err.Error()}
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		switch ke {
		case kerr.TopicAuthorizationFailed:
			return packets.ErrNotAuthorized
		case kerr.MessageTooLarge, kerr.RecordListTooLarge:
			return packets.ErrPacketTooLarge
		case kerr.UnknownTopicOrPartition, kerr.InvalidTopicException:
			return packets.ErrTopicNameInvalid
		case kerr.PolicyViolation, kerr.InvalidRecord:
			return packets.ErrPayloadFormatInvalid
		case kerr.ThrottlingQuotaExceeded:
			return packets.ErrQuotaExceeded
		}
		return packets.Code{Code: packets.ErrUnspecifiedError.Code, Reason: "upstream refused the record: " + ke.Message}
	}
	return packets.Code{Code: packets.ErrUnspecifiedError.Code, Reason: "the record was not written: " + err.Error()}
}

// release handles a PUBREL: the QoS 2 publish is done.
func (c *conn) release(pk *packets.Packet) {
	c.mu.Lock()
	known := c.st.Complete(pk.PacketID)
	if known {
		c.dirty = true
	}
	c.mu.Unlock()
	out := &packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubcomp}, PacketID: pk.PacketID}
	if !known && c.version == wire.V5 {
		out.ReasonCode = packets.ErrPacketIdentifierNotFound.Code
	}
	c.send(out)
	c.saveSoon()
}

// retain keeps pk as its topic's retained message (an empty payload
// clears it), in the retained topic; done, when not nil, is called with
// the outcome.
func (b *Broker) retain(ctx context.Context, pk *packets.Packet, done func(mesh.Record, error)) error {
	key := []byte(pk.TopicName)
	if done == nil {
		done = func(_ mesh.Record, err error) {
			if err != nil {
				b.log.Warn("retained message not kept", "topic", pk.TopicName, "err", err)
			}
		}
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		var err error
		if len(pk.Payload) == 0 {
			err = b.retained.Delete(ctx, key)
		} else {
			r := layout.Record(pk, "", b.cfg.Topics.Retained, time.Now())
			_, err = b.retained.Put(ctx, key, r.Value, r.Headers...)
		}
		done(mesh.Record{}, err)
	}()
	return nil
}

// ackQueue orders the answers to the client's QoS 1 and 2 publishes.
type ackQueue struct {
	q    []*ackSlot
	room *sync.Cond // on the connection's mu: answers went out
}

// waitRoom waits, mu (the connection's) held, until answers go out.
func (a *ackQueue) waitRoom(mu *sync.Mutex) {
	if a.room == nil {
		a.room = sync.NewCond(mu)
	}
	a.room.Wait()
}

func (a *ackQueue) freed() {
	if a.room != nil {
		a.room.Broadcast()
	}
}

type ackSlot struct {
	pid  uint16
	qos  byte
	done bool
	err  error
}

func (a *ackQueue) add(pid uint16, qos byte) *ackSlot {
	s := &ackSlot{pid: pid, qos: qos}
	a.q = append(a.q, s)
	return s
}

// ready removes and returns the answered slots at the head.
func (a *ackQueue) ready() []*ackSlot {
	n := 0
	for n < len(a.q) && a.q[n].done {
		n++
	}
	out := a.q[:n:n]
	a.q = a.q[n:]
	return out
}
