// Package session is an MQTT session's state, apart from any connection:
// its subscriptions, where each has read its Kafka topics to, the QoS 1
// and 2 messages on their way in both directions, and the encoding in
// which the sessions topic keeps it. Everything here is plain data and
// functions over it, tested without sockets; the mapper's connections
// drive it.
package session

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Version is the encoding of State this package writes; it reads it and
// nothing newer.
const Version = 1

// State is what the sessions topic keeps of a session, keyed by client
// id, while the session lives: from a CONNECT until its expiry interval
// has passed after the last connection ended.
type State struct {
	V int `json:"v"`
	// Expiry is the session expiry interval, in seconds.
	Expiry uint32 `json:"expiry"`
	// Disconnected is when the last connection ended, Unix ms; 0 while a
	// connection holds the session.
	Disconnected int64 `json:"disconnected,omitempty"`
	// Node is the node whose connection held the session last.
	Node int32 `json:"node"`
	// Subscriptions in the order they were made.
	Subscriptions []Subscription `json:"subscriptions,omitempty"`
	// Inbound are the packet ids of QoS 2 publishes written to Kafka and
	// answered with PUBREC, whose PUBREL has not come: a publish again
	// with one of these ids is a duplicate, not written again.
	Inbound []uint16 `json:"inbound,omitempty"`
	// Outbound are the QoS 1 and 2 messages sent to the client and not
	// yet acknowledged, in the order sent.
	Outbound []Pending `json:"outbound,omitempty"`
}

// Subscription is one topic filter the session subscribed to.
type Subscription struct {
	Filter string `json:"filter"`
	// Share is the share name of a shared subscription
	// ($share/<Share>/<Filter>); empty for others.
	Share             string `json:"share,omitempty"`
	QoS               byte   `json:"qos"`
	NoLocal           bool   `json:"no_local,omitempty"`
	RetainAsPublished bool   `json:"rap,omitempty"`
	RetainHandling    byte   `json:"rh,omitempty"`
	// Identifier is the MQTT 5 subscription identifier; 0: none.
	Identifier int `json:"id,omitempty"`
	// Sent is, per Kafka topic and partition, the offset after the last
	// record the subscription handled (sent, or skipped as not for the
	// client). A shared subscription keeps none: its share commits.
	Sent map[string]map[int32]int64 `json:"sent,omitempty"`
}

// Key names the subscription within its session: MQTT replaces a
// subscription by subscribing to the same filter (and share) again.
func (s *Subscription) Key() string { return Key(s.Share, s.Filter) }

// Key is the key of the subscription to filter within share.
func Key(share, filter string) string {
	if share == "" {
		return filter
	}
	return "$share/" + share + "/" + filter
}

// Pending is a message sent to the client at QoS 1 or 2 and not yet
// acknowledged: Released once the client's PUBREC came (QoS 2), when
// what is left is PUBREL and its PUBCOMP.
type Pending struct {
	PacketID  uint16 `json:"pid"`
	Sub       string `json:"sub"` // the subscription's Key
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	QoS       byte   `json:"qos"`
	Released  bool   `json:"released,omitempty"`
}

// Encode is the record value of s.
func Encode(s *State) ([]byte, error) {
	s.V = Version
	return json.Marshal(s)
}

// Decode reads a record value Encode wrote.
func Decode(b []byte) (*State, error) {
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	if s.V < 1 || s.V > Version {
		return nil, fmt.Errorf("session: encoding version %d, this node reads 1 to %d", s.V, Version)
	}
	return &s, nil
}

// Expired says whether a session whose connection ended is past its
// expiry at now.
func (s *State) Expired(now time.Time) bool {
	if s.Disconnected == 0 {
		return false
	}
	return now.After(time.UnixMilli(s.Disconnected).Add(time.Duration(s.Expiry) * time.Second))
}

// Subscription finds the subscription of key.
func (s *State) Subscription(key string) (*Subscription, bool) {
	for i := range s.Subscriptions {
		if s.Subscriptions[i].Key() == key {
			return &s.Subscriptions[i], true
		}
	}
	return nil, false
}

// Subscribe adds sub, or replaces the subscription of the same key,
// keeping where that one had read to. It says whether sub is new.
func (s *State) Subscribe(sub Subscription) (isNew bool) {
	if old, ok := s.Subscription(sub.Key()); ok {
		sub.Sent = old.Sent
		*old = sub
		return false
	}
	s.Subscriptions = append(s.Subscriptions, sub)
	return true
}

// Unsubscribe removes the subscription of key, and its pending
// messages, and says whether there was one.
func (s *State) Unsubscribe(key string) bool {
	i := slices.IndexFunc(s.Subscriptions, func(x Subscription) bool { return x.Key() == key })
	if i < 0 {
		return false
	}
	s.Subscriptions = slices.Delete(s.Subscriptions, i, i+1)
	return true
}

// ResumeAt is where the subscription of key resumes reading topic's
// partitions: per partition, the offset of its first pending message, or
// the offset after the last it handled.
func (s *State) ResumeAt(key, topic string) map[int32]int64 {
	sub, ok := s.Subscription(key)
	if !ok || sub.Sent[topic] == nil {
		return nil
	}
	at := make(map[int32]int64, len(sub.Sent[topic]))
	for p, o := range sub.Sent[topic] {
		at[p] = o
	}
	for _, pd := range s.Outbound {
		if pd.Sub == key && pd.Topic == topic {
			if o, ok := at[pd.Partition]; !ok || pd.Offset < o {
				at[pd.Partition] = pd.Offset
			}
		}
	}
	return at
}

// Handled records that the subscription of key is past offset in topic's
// partition.
func (s *State) Handled(key, topic string, partition int32, offset int64) {
	sub, ok := s.Subscription(key)
	if !ok || sub.Share != "" {
		return
	}
	if sub.Sent == nil {
		sub.Sent = map[string]map[int32]int64{}
	}
	if sub.Sent[topic] == nil {
		sub.Sent[topic] = map[int32]int64{}
	}
	if offset+1 > sub.Sent[topic][partition] {
		sub.Sent[topic][partition] = offset + 1
	}
}

// Started records where the subscription of key starts reading topic's
// partitions, for those it has no position in.
func (s *State) Started(key, topic string, at map[int32]int64) {
	sub, ok := s.Subscription(key)
	if !ok || sub.Share != "" {
		return
	}
	if sub.Sent == nil {
		sub.Sent = map[string]map[int32]int64{}
	}
	if sub.Sent[topic] == nil {
		sub.Sent[topic] = map[int32]int64{}
	}
	for p, o := range at {
		if _, ok := sub.Sent[topic][p]; !ok {
			sub.Sent[topic][p] = o
		}
	}
}

// Replay is what to do with a record a resumed subscription reads again.
type Replay int8

const (
	// Fresh: not sent before; send it.
	Fresh Replay = iota
	// Again: sent and not acknowledged; send it again, as a duplicate,
	// with its packet id.
	Again
	// Done: the client has it (acknowledged, or released); skip it.
	Done
)

// Replayed says what to do with the record at offset of topic's
// partition that the subscription of key reads, and for Again the
// pending message it is.
func (s *State) Replayed(key, topic string, partition int32, offset int64) (Replay, *Pending) {
	sub, ok := s.Subscription(key)
	if !ok || sub.Share != "" {
		return Fresh, nil
	}
	for i := range s.Outbound {
		pd := &s.Outbound[i]
		if pd.Sub == key && pd.Topic == topic && pd.Partition == partition && pd.Offset == offset {
			if pd.Released {
				return Done, nil
			}
			return Again, pd
		}
	}
	if offset < sub.Sent[topic][partition] {
		return Done, nil
	}
	return Fresh, nil
}

// Send records a message sent at QoS 1 or 2 with packet id pid.
func (s *State) Send(pd Pending) {
	s.Outbound = append(s.Outbound, pd)
	s.Handled(pd.Sub, pd.Topic, pd.Partition, pd.Offset)
}

// Pending finds the pending message of pid.
func (s *State) Pending(pid uint16) (*Pending, bool) {
	for i := range s.Outbound {
		if s.Outbound[i].PacketID == pid {
			return &s.Outbound[i], true
		}
	}
	return nil, false
}

// Acknowledged removes the pending message of pid (its PUBACK, or
// PUBCOMP, came) and returns it.
func (s *State) Acknowledged(pid uint16) (Pending, bool) {
	i := slices.IndexFunc(s.Outbound, func(p Pending) bool { return p.PacketID == pid })
	if i < 0 {
		return Pending{}, false
	}
	pd := s.Outbound[i]
	s.Outbound = slices.Delete(s.Outbound, i, i+1)
	return pd, true
}

// Release marks the QoS 2 message of pid released (its PUBREC came),
// and says whether it was pending.
func (s *State) Release(pid uint16) bool {
	pd, ok := s.Pending(pid)
	if !ok {
		return false
	}
	pd.Released = true
	return true
}

// Forget drops the pending messages of the subscription of key, and of
// every shared subscription when key is empty (a share's members get its
// unacknowledged records again from its commits).
func (s *State) Forget(key string) {
	s.Outbound = slices.DeleteFunc(s.Outbound, func(p Pending) bool {
		if key == "" {
			return strings.HasPrefix(p.Sub, "$share/")
		}
		return p.Sub == key
	})
}

// Prune drops the pending messages of no subscription (retained
// messages sent on a subscribe, which are not read again on a resume).
func (s *State) Prune() {
	s.Outbound = slices.DeleteFunc(s.Outbound, func(p Pending) bool {
		_, ok := s.Subscription(p.Sub)
		return !ok
	})
}

// Received says whether pid is a QoS 2 publish already written, whose
// PUBREL has not come.
func (s *State) Received(pid uint16) bool { return slices.Contains(s.Inbound, pid) }

// Receive records a QoS 2 publish written to Kafka.
func (s *State) Receive(pid uint16) {
	if !s.Received(pid) {
		s.Inbound = append(s.Inbound, pid)
	}
}

// Complete removes pid, its PUBREL come, and says whether it was there.
func (s *State) Complete(pid uint16) bool {
	i := slices.Index(s.Inbound, pid)
	if i < 0 {
		return false
	}
	s.Inbound = slices.Delete(s.Inbound, i, i+1)
	return true
}

// Clone is a deep copy of s, to encode while s changes.
func (s *State) Clone() *State {
	c := *s
	c.Subscriptions = slices.Clone(s.Subscriptions)
	for i := range c.Subscriptions {
		sent := c.Subscriptions[i].Sent
		if sent == nil {
			continue
		}
		cp := make(map[string]map[int32]int64, len(sent))
		for t, m := range sent {
			mm := make(map[int32]int64, len(m))
			for p, o := range m {
				mm[p] = o
			}
			cp[t] = mm
		}
		c.Subscriptions[i].Sent = cp
	}
	c.Inbound = slices.Clone(s.Inbound)
	c.Outbound = slices.Clone(s.Outbound)
	return &c
}

// PacketIDs hands out the packet ids of messages sent to the client:
// 1 to 65535, never one still pending.
type PacketIDs struct {
	next  uint16
	inUse map[uint16]bool
}

// Take returns a free id, or false when all 65535 are pending.
func (p *PacketIDs) Take() (uint16, bool) {
	if p.inUse == nil {
		p.inUse = map[uint16]bool{}
	}
	if len(p.inUse) >= 65535 {
		return 0, false
	}
	for {
		p.next++
		if p.next == 0 {
			p.next = 1
		}
		if !p.inUse[p.next] {
			p.inUse[p.next] = true
			return p.next, true
		}
	}
}

// Hold marks id pending (a resumed session's).
func (p *PacketIDs) Hold(id uint16) {
	if p.inUse == nil {
		p.inUse = map[uint16]bool{}
	}
	p.inUse[id] = true
}

// Free returns id.
func (p *PacketIDs) Free(id uint16) { delete(p.inUse, id) }
