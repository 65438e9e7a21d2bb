package mqtt

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/meshka/meshka/acl"
	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/mappers/mqtt/layout"
	"github.com/meshka/meshka/mappers/mqtt/session"
	"github.com/meshka/meshka/mappers/mqtt/wire"
	"github.com/meshka/meshka/mesh"
)

// subscriptionQueue bounds the records one subscription's mesh reader
// holds for it before it is paused (and reads on alone, at its pace).
const subscriptionQueue = 256

// running is a subscription being delivered: one mesh subscription per
// Kafka topic its filter reads, or one share.
type running struct {
	sub    session.Subscription
	cancel context.CancelFunc
	subs   []*mesh.Subscription
	share  *mesh.Share
}

func (r *running) close() {
	r.cancel()
	for _, s := range r.subs {
		s.Close()
	}
	if r.share != nil {
		r.share.Close()
	}
}

// sharedPending is a shared subscription's record sent at QoS 1 or 2,
// acknowledged to its share when the client acknowledges it.
type sharedPending struct {
	share *mesh.Share
	rec   mesh.Record
}

// subscribe handles a SUBSCRIBE: each filter is checked, its
// subscription started (or its options changed), the session saved, the
// SUBACK sent, and then the retained messages the filters match.
func (c *conn) subscribe(pk *packets.Packet) error {
	if code := pk.SubscribeValidate(); code != packets.CodeSuccess {
		return &wire.Error{Code: code}
	}
	codes := make([]byte, len(pk.Filters))
	type started struct {
		sub   session.Subscription
		isNew bool
	}
	var ok []started
	for i, f := range pk.Filters {
		share, filter, shared := splitShare(f.Filter)
		sub := session.Subscription{Filter: filter, Share: share, QoS: f.Qos, NoLocal: f.NoLocal,
			RetainAsPublished: f.RetainAsPublished, RetainHandling: f.RetainHandling}
		if len(pk.Properties.SubscriptionIdentifier) > 0 {
			sub.Identifier = pk.Properties.SubscriptionIdentifier[0]
		}
		code := c.checkFilter(filter, shared, share, f)
		if code == packets.CodeSuccess {
			for _, topic := range c.b.routes.topicsFor(filter) {
				if !c.b.authorized(c, acl.Read, topic) {
					code = packets.ErrNotAuthorized
					break
				}
			}
		}
		if code == packets.ErrProtocolViolation {
			return protocolError("no local on a shared subscription") // [MQTT-3.8.3-4]
		}
		if code != packets.CodeSuccess {
			codes[i] = failure(c.version, code)
			continue
		}
		c.mu.Lock()
		isNew := c.st.Subscribe(sub)
		c.mu.Unlock()
		if err := c.startSubscription(sub, isNew); err != nil {
			c.log("subscription not started", "filter", f.Filter, "err", err)
			c.mu.Lock()
			c.st.Unsubscribe(sub.Key())
			c.mu.Unlock()
			codes[i] = failure(c.version, packets.ErrUnspecifiedError)
			continue
		}
		codes[i] = f.Qos
		ok = append(ok, started{sub, isNew})
	}
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	if err := c.save(ctx, false); err != nil {
		c.log("session not saved", "err", err)
	}
	c.send(&packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Suback}, PacketID: pk.PacketID, ReasonCodes: codes})
	for _, s := range ok {
		if s.sub.Share != "" || s.sub.RetainHandling == 2 || s.sub.RetainHandling == 1 && !s.isNew {
			continue // [MQTT-3.3.1-9] [MQTT-3.3.1-10] [MQTT-3.3.1-11]
		}
		c.sendRetained(s.sub)
	}
	return nil
}

// checkFilter says why a filter is refused, or success.
func (c *conn) checkFilter(filter string, shared bool, share string, f packets.Subscription) packets.Code {
	if config.CheckMQTTFilter(filter) != "" || shared && (share == "" || strings.ContainsAny(share, "+#")) {
		return packets.ErrTopicFilterInvalid
	}
	if f.Qos > 2 {
		return packets.ErrTopicFilterInvalid
	}
	if shared && f.NoLocal {
		return packets.ErrProtocolViolation
	}
	return packets.CodeSuccess
}

// failure is a SUBACK's failure code: MQTT 5's reason, or 3.1.1's 0x80.
func failure(version byte, code packets.Code) byte {
	if version != wire.V5 {
		return 0x80
	}
	return code.Code
}

// splitShare splits $share/<name>/<filter>.
func splitShare(f string) (share, filter string, shared bool) {
	rest, ok := strings.CutPrefix(f, "$share/")
	if !ok {
		return "", f, false
	}
	name, filter, ok := strings.Cut(rest, "/")
	if !ok {
		return "", "", true
	}
	return name, filter, true
}

// startSubscription starts delivering sub: a new subscription from the
// topics' ends, a resumed one from where the session had read to. A
// subscription replacing one of the same key keeps reading; its new
// options apply to what it delivers next.
func (c *conn) startSubscription(sub session.Subscription, isNew bool) error {
	key := sub.Key()
	c.mu.Lock()
	if r, ok := c.subs[key]; ok {
		r.sub = sub
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()
	ctx, cancel := context.WithCancel(c.ctx)
	r := &running{sub: sub, cancel: cancel}
	filter, err := mesh.KeyPattern(sub.Filter)
	if err != nil {
		cancel()
		return err
	}
	topics := c.b.routes.topicsFor(sub.Filter)
	if sub.Share != "" {
		sh, err := c.b.m.Share(mesh.ShareOptions{Group: shareGroup(sub.Share, sub.Filter), Topics: topics,
			Filter: mesh.Filter{Key: filter}, Acknowledge: true, ClientID: c.clientID, Queue: subscriptionQueue})
		if err != nil {
			cancel()
			return err
		}
		r.share = sh
	} else {
		for _, topic := range topics {
			start := mesh.Latest()
			if !isNew {
				c.mu.Lock()
				at := c.st.ResumeAt(key, topic)
				c.mu.Unlock()
				if at != nil {
					start = mesh.AtOffsets(at)
				}
			}
			s, err := c.b.m.Subscribe(ctx, mesh.SubscribeOptions{Topic: topic, Start: start, Filter: mesh.Filter{Key: filter},
				Queue: subscriptionQueue, Slow: mesh.Pause})
			if err != nil {
				r.close()
				return err
			}
			// Where it starts is where a resume starts, until it has
			// delivered something.
			c.mu.Lock()
			c.st.Started(key, topic, s.Positions())
			c.mu.Unlock()
			r.subs = append(r.subs, s)
		}
	}
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		r.close()
		return errors.New("mqtt: connection ended")
	}
	c.subs[key] = r
	c.mu.Unlock()
	for _, s := range r.subs {
		c.wg.Add(1)
		go func() { defer c.wg.Done(); c.deliverFrom(ctx, r, s) }()
	}
	if r.share != nil {
		c.wg.Add(1)
		go func() { defer c.wg.Done(); c.deliverShared(ctx, r) }()
	}
	return nil
}

// shareGroup is the Kafka consumer group of a shared subscription.
func shareGroup(share, filter string) string { return "mqtt-share/" + share + "/" + filter }

// resume starts the subscriptions of a resumed session and sends again
// the PUBRELs of QoS 2 messages the client had received.
func (c *conn) resume() {
	c.mu.Lock()
	subs := append([]session.Subscription(nil), c.st.Subscriptions...)
	var rel []uint16
	for _, pd := range c.st.Outbound {
		if pd.Released {
			rel = append(rel, pd.PacketID)
		}
	}
	c.mu.Unlock()
	for _, pid := range rel {
		c.send(&packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrel, Qos: 1}, PacketID: pid})
	}
	for _, sub := range subs {
		if err := c.startSubscription(sub, false); err != nil {
			c.log("subscription not resumed", "filter", sub.Key(), "err", err)
		}
	}
}

// stopSubscriptions ends every delivery.
func (c *conn) stopSubscriptions() {
	c.mu.Lock()
	subs := c.subs
	c.subs = map[string]*running{}
	c.mu.Unlock()
	for _, r := range subs {
		r.close()
	}
}

// deliverFrom delivers one mesh subscription's records to the client.
func (c *conn) deliverFrom(ctx context.Context, r *running, s *mesh.Subscription) {
	for {
		rec, err := s.Next(ctx)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, mesh.ErrClosed) {
				c.log("subscription ended", "filter", r.sub.Key(), "err", err)
			}
			return
		}
		if !c.deliver(ctx, r, rec, nil) {
			return
		}
	}
}

// deliverShared delivers a share's records to the client.
func (c *conn) deliverShared(ctx context.Context, r *running) {
	for {
		rec, err := r.share.Next(ctx)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, mesh.ErrClosed) {
				c.log("shared subscription ended", "filter", r.sub.Key(), "err", err)
			}
			return
		}
		if !c.deliver(ctx, r, rec, r.share) {
			return
		}
	}
}

// deliver sends rec to the client as the subscription asks, or skips it
// (no local, expired, too large for the client); false: the connection
// ended.
func (c *conn) deliver(ctx context.Context, r *running, rec mesh.Record, share *mesh.Share) bool {
	c.mu.Lock()
	sub := r.sub
	c.mu.Unlock()
	key := sub.Key()
	skip := func() {
		if share != nil {
			share.Ack(rec)
			return
		}
		c.mu.Lock()
		c.st.Handled(key, rec.Topic, rec.Partition, rec.Offset)
		c.dirty = true
		c.mu.Unlock()
	}
	decoded := c.b.routes.decodes(rec.Topic)
	if decoded && !c.b.decodeValue(ctx, &rec) {
		skip()
		return true
	}
	pk, expired, err := layout.Publish(&rec, sub.QoS, time.Now())
	if err != nil || expired || sub.NoLocal && pk.Origin == c.clientID {
		skip()
		return true
	}
	if decoded && rec.Value != nil && pk.Properties.ContentType == "" {
		pk.Properties.ContentType = "application/json" // MQTT 5 only: 3.1.1 has no properties
	}
	if !sub.RetainAsPublished {
		pk.FixedHeader.Retain = false // [MQTT-3.3.1-12]
	}
	if sub.Identifier > 0 && c.version == wire.V5 {
		pk.Properties.SubscriptionIdentifier = []int{sub.Identifier}
	}
	pk.ProtocolVersion = c.version
	if pk.FixedHeader.Qos == 0 {
		queued, fits := c.sendPublish(&pk, kindQoS0)
		if !fits {
			skip()
			return true
		}
		if !queued {
			c.b.stats.dropped.Add(1)
			c.b.metrics.dropped.Inc()
		} else {
			c.b.stats.delivered.Add(1)
			c.b.metrics.sent[0].Inc()
		}
		skip()
		return ctx.Err() == nil
	}
	// QoS 1 or 2: a message sent again after a reconnect keeps its packet
	// id; a new one takes a slot of the client's receive maximum.
	c.mu.Lock()
	replay, pending := session.Fresh, (*session.Pending)(nil)
	if share == nil {
		replay, pending = c.st.Replayed(key, rec.Topic, rec.Partition, rec.Offset)
	}
	c.mu.Unlock()
	switch replay {
	case session.Done:
		return true
	case session.Again:
		pk.PacketID = pending.PacketID
		pk.FixedHeader.Dup = true
		pk.FixedHeader.Qos = pending.QoS
	case session.Fresh:
		pid, ok := c.takeSlot(ctx) // c.mu held when ok
		if !ok {
			return false
		}
		pk.PacketID = pid
		c.st.Send(session.Pending{PacketID: pid, Sub: key, Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, QoS: pk.FixedHeader.Qos})
		if share != nil {
			c.shared[pid] = sharedPending{share: share, rec: rec}
		}
		c.dirty = true
		c.mu.Unlock()
	}
	queued, fits := c.sendPublish(&pk, kindQoS12)
	if !fits {
		c.acknowledged(pk.PacketID, true) // discarded as if sent [MQTT-3.1.2-25]
		return true
	}
	if !queued {
		return false
	}
	c.b.stats.delivered.Add(1)
	c.b.metrics.sent[qosIndex(pk.FixedHeader.Qos)].Inc()
	c.saveSoon()
	return true
}

// sendPublish queues a PUBLISH for the client, with a topic alias when
// the client takes them (MQTT 5): the first message of a topic sets one,
// later ones use it, until the client's Topic Alias Maximum is used up.
// fits is false for a packet larger than the client's Maximum Packet
// Size, which is not sent.
func (c *conn) sendPublish(pk *packets.Packet, kind putKind) (queued, fits bool) {
	c.aliasMu.Lock()
	defer c.aliasMu.Unlock()
	var set string
	if c.clientAliasMax > 0 && c.version == wire.V5 {
		if a, ok := c.outAliases[pk.TopicName]; ok {
			pk.Properties.TopicAlias, pk.Properties.TopicAliasFlag = a, true
			pk.TopicName = ""
		} else if len(c.outAliases) < int(c.clientAliasMax) {
			if c.outAliases == nil {
				c.outAliases = map[string]uint16{}
			}
			a := uint16(len(c.outAliases) + 1)
			pk.Properties.TopicAlias, pk.Properties.TopicAliasFlag = a, true
			set = pk.TopicName
		}
	}
	buf, err := encode(pk)
	if err != nil || !c.fits(buf) {
		return false, false
	}
	queued = c.out.put(buf, kind)
	if queued && set != "" {
		c.outAliases[set] = pk.Properties.TopicAlias
	}
	return queued, true
}

// takeSlot waits for a slot of the client's receive maximum and takes a
// packet id for a QoS 1 or 2 message; on success c.mu is held, for the
// caller to record the message pending. False: the connection ended, or
// every packet id is pending.
func (c *conn) takeSlot(ctx context.Context) (uint16, bool) {
	select {
	case <-c.quota:
	case <-ctx.Done():
		return 0, false
	}
	c.mu.Lock()
	pid, ok := c.ids.Take()
	if !ok {
		c.mu.Unlock()
		c.quota <- struct{}{}
		return 0, false
	}
	return pid, true
}

// fits says whether a packet is within the client's Maximum Packet Size.
func (c *conn) fits(buf []byte) bool {
	return c.clientMaxPacket == 0 || len(buf) <= int(c.clientMaxPacket)
}

// acknowledged handles a PUBACK (QoS 1) or PUBCOMP (QoS 2) for a message
// sent to the client: its packet id and receive maximum slot are free.
func (c *conn) acknowledged(pid uint16, comp bool) {
	c.mu.Lock()
	pd, ok := c.st.Pending(pid)
	if !ok || !comp && pd.QoS != 1 {
		c.mu.Unlock()
		return
	}
	c.st.Acknowledged(pid)
	c.ids.Free(pid)
	sp, shared := c.shared[pid]
	delete(c.shared, pid)
	c.dirty = true
	c.mu.Unlock()
	if shared {
		sp.share.Ack(sp.rec)
	}
	select {
	case c.quota <- struct{}{}:
	default:
	}
	c.saveSoon()
}

// received handles a PUBREC for a QoS 2 message sent to the client: it is
// released, and PUBREL follows.
func (c *conn) received(pk *packets.Packet) {
	c.mu.Lock()
	pd, ok := c.st.Pending(pk.PacketID)
	if ok && pk.ReasonCode >= 0x80 {
		// the client refused it: done with it [MQTT-4.3.3]
		c.mu.Unlock()
		c.acknowledged(pk.PacketID, true)
		return
	}
	if ok && pd.QoS == 2 {
		c.st.Release(pk.PacketID)
		c.dirty = true
	}
	c.mu.Unlock()
	out := &packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrel, Qos: 1}, PacketID: pk.PacketID}
	if !ok && c.version == wire.V5 {
		out.ReasonCode = packets.ErrPacketIdentifierNotFound.Code
	}
	c.send(out)
	c.saveSoon()
}

// unsubscribe handles an UNSUBSCRIBE.
func (c *conn) unsubscribe(pk *packets.Packet) error {
	if len(pk.Filters) == 0 {
		return protocolError("UNSUBSCRIBE without topic filters") // [MQTT-3.10.3-2]
	}
	codes := make([]byte, len(pk.Filters))
	for i, f := range pk.Filters {
		share, filter, _ := splitShare(f.Filter)
		key := session.Key(share, filter)
		c.mu.Lock()
		found := c.st.Unsubscribe(key)
		r := c.subs[key]
		delete(c.subs, key)
		c.mu.Unlock()
		if r != nil {
			r.close()
		}
		if !found {
			codes[i] = 0x11 // no subscription existed
		}
	}
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	if err := c.save(ctx, false); err != nil {
		c.log("session not saved", "err", err)
	}
	c.send(&packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Unsuback}, PacketID: pk.PacketID, ReasonCodes: codes})
	return nil
}

// sendRetained sends the retained messages sub's filter matches, with
// the retain flag set [MQTT-3.3.1-8].
func (c *conn) sendRetained(sub session.Subscription) {
	filter, err := mesh.KeyPattern(sub.Filter)
	if err != nil {
		return
	}
	prefix := literalPrefix(sub.Filter)
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	after := []byte(nil)
	for {
		page, err := c.b.retained.Scan(ctx, mesh.ScanOptions{Prefix: []byte(prefix), After: after, Limit: 500})
		if err != nil {
			if c.ctx.Err() == nil {
				c.log("retained messages not read", "filter", sub.Filter, "err", err)
			}
			return
		}
		for _, e := range page.Entries {
			if !filter.Match(e.Key) {
				continue
			}
			rec := mesh.Record{Topic: c.b.cfg.Topics.Retained, Partition: e.Partition, Offset: e.Offset, Key: e.Key, Value: e.Value,
				Headers: e.Headers, Timestamp: e.Timestamp}
			if !c.sendOneRetained(ctx, sub, rec) {
				return
			}
		}
		if !page.More || len(page.Entries) == 0 {
			return
		}
		after = page.Entries[len(page.Entries)-1].Key
	}
}

// sendOneRetained sends one retained message at the subscription's QoS;
// false: the connection ended.
func (c *conn) sendOneRetained(ctx context.Context, sub session.Subscription, rec mesh.Record) bool {
	pk, expired, err := layout.Publish(&rec, sub.QoS, time.Now())
	if err != nil || expired {
		return true
	}
	pk.FixedHeader.Retain = true
	pk.ProtocolVersion = c.version
	if sub.Identifier > 0 && c.version == wire.V5 {
		pk.Properties.SubscriptionIdentifier = []int{sub.Identifier}
	}
	kind := kindQoS0
	if pk.FixedHeader.Qos > 0 {
		pid, ok := c.takeSlot(ctx) // c.mu held when ok
		if !ok {
			return false
		}
		pk.PacketID = pid
		// pending under a key no subscription has: acknowledged like any
		// other, and never read again on a resume
		c.st.Outbound = append(c.st.Outbound, session.Pending{PacketID: pid, Sub: "\x00retained", Topic: rec.Topic,
			Partition: rec.Partition, Offset: rec.Offset, QoS: pk.FixedHeader.Qos})
		c.mu.Unlock()
		kind = kindQoS12
	}
	queued, fits := c.sendPublish(&pk, kind)
	if !fits {
		if pk.PacketID != 0 {
			c.acknowledged(pk.PacketID, true)
		}
		return true
	}
	return queued || kind == kindQoS0
}

// literalPrefix is the part of a filter before its first wildcard.
func literalPrefix(filter string) string {
	if i := strings.IndexAny(filter, "+#"); i >= 0 {
		return filter[:i]
	}
	return filter
}

// authorized says whether the connection's principal may do op on a
// Kafka topic.
func (b *Broker) authorized(c *conn, op acl.Operation, topic string) bool {
	if b.env.ACL == nil || !b.env.ACL.Enabled() {
		return true
	}
	return b.env.ACL.Authorize(c.principal, c.host, op, acl.Topic, topic)
}
