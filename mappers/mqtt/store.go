package mqtt

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/meshka/meshka/mappers/mqtt/layout"
	"github.com/meshka/meshka/mappers/mqtt/session"
)

// saveEvery is how soon a session that changed (messages sent or
// acknowledged) is saved to the sessions topic: what a node that dies
// loses of a session's progress, sent again to the client after it
// reconnects (QoS 1 and 2 are at least once across a node's death).
const saveEvery = 500 * time.Millisecond

// leaseName is the mesh lease namespace of MQTT sessions.
const leaseName = "mqtt-session"

// lease is a connection's hold on its session: one in the whole cluster
// at a time.
type lease struct {
	release func()
}

// acquire takes the session of clientID for c: a connection holding it
// is told to end (0x8E), saves the session and lets go, and then c has
// it.
func (b *Broker) acquire(ctx context.Context, clientID string, c *conn, persistent bool) (*lease, error) {
	leases := b.clean
	if persistent {
		leases = b.persistent
	}
	release, err := leases.acquire(ctx, clientID, fmt.Sprintf("node %d %s", b.env.NodeID, c.nc.RemoteAddr()), c.takeover)
	if err != nil {
		return nil, err
	}
	return &lease{release: release}, nil
}

func (ls *lease) releaseNow() {
	if ls != nil {
		ls.release()
	}
}

// loadSession reads the session of clientID: present says it resumes a
// session; a clean start, an expired session or none starts a new one
// (and deletes what was kept).
func (b *Broker) loadSession(ctx context.Context, clientID string, clean bool) (st *session.State, present bool, err error) {
	e, ok, err := b.sessions.Get(ctx, []byte(clientID))
	if errors.Is(err, kerr.UnknownTopicOrPartition) && clean {
		// No sessions topic: a clean session needs nothing from it.
		b.missing.Do(func() {
			b.log.Warn("no sessions topic: only clean sessions without expiry work", "topic", b.cfg.Topics.Sessions)
		})
		return &session.State{}, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if ok {
		old, derr := session.Decode(e.Value)
		switch {
		case derr != nil:
			b.log.Warn("session not readable; starting a new one", "client", clientID, "err", derr)
		case !clean && !old.Expired(time.Now()):
			return old, true, nil
		}
		if err := b.sessions.Delete(ctx, []byte(clientID)); err != nil {
			return nil, false, err
		}
	}
	return &session.State{}, false, nil
}

// sessionKept says whether the sessions topic holds a session of
// clientID (false when it cannot tell).
func (b *Broker) sessionKept(ctx context.Context, clientID string) bool {
	_, ok, err := b.sessions.Get(ctx, []byte(clientID))
	return err == nil && ok
}

// deleteSession deletes what is kept of a session that ended.
func (b *Broker) deleteSession(ctx context.Context, clientID string) error {
	_, ok, err := b.sessions.Get(ctx, []byte(clientID))
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return nil
	}
	if err != nil || !ok {
		return err
	}
	return b.sessions.Delete(ctx, []byte(clientID))
}

// save writes the session to the sessions topic, when it is one that
// outlives its connection (or always, when force).
func (c *conn) save(ctx context.Context, force bool) error {
	c.mu.Lock()
	if c.st.Expiry == 0 && !force {
		c.dirty = false
		c.mu.Unlock()
		return nil
	}
	snap := c.st.Clone()
	c.dirty = false
	c.mu.Unlock()
	if snap.Expiry == 0 {
		return nil
	}
	v, err := session.Encode(snap)
	if err != nil {
		return err
	}
	_, err = c.b.sessions.Put(ctx, []byte(c.clientID), v)
	return err
}

// saveSoon saves the session within saveEvery, once for many changes.
func (c *conn) saveSoon() {
	c.mu.Lock()
	if !c.dirty || c.saving || c.ended || c.st.Expiry == 0 {
		c.mu.Unlock()
		return
	}
	c.saving = true
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		t := time.NewTimer(saveEvery)
		defer t.Stop()
		select {
		case <-t.C:
		case <-c.ctx.Done():
			c.mu.Lock()
			c.saving = false
			c.mu.Unlock()
			return // end saves
		}
		ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
		err := c.save(ctx, false)
		cancel()
		c.mu.Lock()
		c.saving = false
		c.mu.Unlock()
		if err != nil && c.ctx.Err() == nil {
			c.log("session not saved", "err", err)
		}
		c.saveSoon()
	}()
}

// willOf is the will message a CONNECT carries, as a PUBLISH.
func willOf(pk *packets.Packet, version byte) *packets.Packet {
	cn := &pk.Connect
	w := &packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: cn.WillQos, Retain: cn.WillRetain},
		ProtocolVersion: version, TopicName: cn.WillTopic, Payload: cn.WillPayload}
	if version == 5 {
		p := cn.WillProperties
		w.Properties = packets.Properties{ContentType: p.ContentType, PayloadFormat: p.PayloadFormat, PayloadFormatFlag: p.PayloadFormatFlag,
			MessageExpiryInterval: p.MessageExpiryInterval, ResponseTopic: p.ResponseTopic, CorrelationData: p.CorrelationData,
			User: p.User, WillDelayInterval: p.WillDelayInterval}
	}
	return w
}

// willOnEnd publishes the will of a connection that ended without
// DISCONNECT, or schedules it after its delay: a will delay, bounded by
// the session's expiry, passes unless the session is resumed first
// [MQTT-3.1.3-9]. A session taken over publishes its will at once only
// when it has no delay.
func (b *Broker) willOnEnd(ctx context.Context, c *conn, takenOver bool) {
	delay := time.Duration(c.will.Properties.WillDelayInterval) * time.Second
	if exp := time.Duration(c.st.Expiry) * time.Second; exp < delay {
		delay = exp
	}
	if delay <= 0 || b.ctx.Err() != nil {
		// no delay, or the node stops: a will waiting here would be lost
		b.publishWill(ctx, c.clientID, c.will)
		return
	}
	if takenOver {
		return // a new connection has the session before the delay passed
	}
	disconnected := c.st.Disconnected
	will, id := c.will, c.clientID
	b.later(id+"\x00will", delay, func() {
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		defer cancel()
		// Resumed elsewhere meanwhile? The sessions topic says.
		if e, ok, err := b.sessions.Get(ctx, []byte(id)); err == nil && ok {
			if st, err := session.Decode(e.Value); err == nil && st.Disconnected != disconnected {
				return
			}
		}
		b.publishWill(ctx, id, will)
	})
}

// publishWill publishes a will as the client would have.
func (b *Broker) publishWill(ctx context.Context, clientID string, w *packets.Packet) {
	topic := b.routes.topicFor(w.TopicName)
	rec := layout.Record(w, clientID, topic, time.Now())
	if _, err := b.all.ProduceSync(ctx, rec); err != nil {
		b.log.Warn("will not published", "client", clientID, "topic", w.TopicName, "err", err)
		return
	}
	if w.FixedHeader.Retain {
		b.retain(ctx, w, nil)
	}
	b.log.Debug("will published", "client", clientID, "topic", w.TopicName)
}

// expireLater deletes a disconnected session once its expiry passes,
// unless it was resumed meanwhile (on any node).
func (b *Broker) expireLater(clientID string, disconnected int64, expiry uint32) {
	b.later(clientID+"\x00expiry", time.Duration(expiry)*time.Second, func() {
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		defer cancel()
		e, ok, err := b.sessions.Get(ctx, []byte(clientID))
		if err != nil || !ok {
			return
		}
		st, err := session.Decode(e.Value)
		if err != nil || st.Disconnected != disconnected {
			return
		}
		if err := b.sessions.Delete(ctx, []byte(clientID)); err != nil {
			b.log.Warn("expired session not deleted", "client", clientID, "err", err)
		}
	})
}

// later runs f after d on a goroutine of the broker's, unless the broker
// stops or cancelTimers cancels it; one timer per key.
func (b *Broker) later(key string, d time.Duration, f func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ctx.Err() != nil {
		return
	}
	if t, ok := b.timers[key]; ok {
		t.Stop()
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		b.mu.Lock()
		if b.timers[key] != t || b.ctx.Err() != nil {
			b.mu.Unlock()
			return
		}
		delete(b.timers, key)
		b.wg.Add(1)
		b.mu.Unlock()
		defer b.wg.Done()
		f()
	})
	b.timers[key] = t
}

// cancelTimers cancels a session's will and expiry on this node: it is
// resumed.
func (b *Broker) cancelTimers(clientID string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, k := range []string{clientID + "\x00will", clientID + "\x00expiry"} {
		if t, ok := b.timers[k]; ok {
			t.Stop()
			delete(b.timers, k)
		}
	}
}
