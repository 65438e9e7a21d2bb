package group

import (
	"crypto/rand"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Join handles a JoinGroup request from the client behind to. The reply
// for to may come now or only when the join phase ends.
func (g *Group) Join(now time.Time, req *kmsg.JoinGroupRequest, clientID, clientHost string, to Waiter) []Reply {
	fail := func(code int16, memberID string) []Reply {
		return []Reply{{to, joinError(req, code, memberID)}}
	}
	if req.Group == "" {
		return fail(kerr.InvalidGroupID.Code, req.MemberID)
	}
	session := time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	if session < g.cfg.MinSessionTimeout || session > g.cfg.MaxSessionTimeout {
		return fail(kerr.InvalidSessionTimeout.Code, req.MemberID)
	}
	rebalance := session // v0 has no rebalance timeout: the session bounds the join phase
	if req.Version >= 1 && req.RebalanceTimeoutMillis > 0 {
		rebalance = time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	}
	m := &member{instanceID: req.InstanceID, clientID: clientID, clientHost: clientHost,
		protocols: req.Protocols, session: session, rebalance: rebalance}

	if req.MemberID == "" {
		return g.joinNew(now, req, m, to, fail)
	}
	if g.state == Dead {
		// The group does not exist here (never formed, deleted, or this
		// node just took it over): the member must start afresh.
		return fail(kerr.UnknownMemberID.Code, req.MemberID)
	}
	if _, ok := g.pending[req.MemberID]; ok {
		if req.InstanceID != nil {
			if owner, ok := g.static[*req.InstanceID]; ok && owner != req.MemberID {
				return fail(kerr.FencedInstanceID.Code, req.MemberID)
			}
		}
		if !g.supportsProtocols(req, "") {
			return fail(kerr.InconsistentGroupProtocol.Code, req.MemberID)
		}
		m.id = req.MemberID
		return g.addAndRebalance(now, m, req, to)
	}
	if code := g.validateMember(req.MemberID, req.InstanceID); code != 0 {
		return fail(code, req.MemberID)
	}
	old := g.members[req.MemberID]
	if !g.supportsProtocols(req, old.id) {
		return fail(kerr.InconsistentGroupProtocol.Code, req.MemberID)
	}
	old.expires = now.Add(session)
	switch g.state {
	case CompletingRebalance:
		if old.sameProtocols(req.Protocols) {
			// Most likely the JoinGroup response was lost: repeat it.
			return []Reply{{to, g.currentJoin(req, old.id, g.leader)}}
		}
	case Stable:
		// The leader rejoining asks for a new assignment (topic metadata
		// changed, say), even with unchanged member metadata.
		if old.id != g.leader && old.sameProtocols(req.Protocols) {
			return []Reply{{to, g.currentJoin(req, old.id, g.leader)}}
		}
	}
	out := g.park(old, m, req, to)
	if g.state == PreparingRebalance {
		return append(out, g.maybeCompleteJoin(now)...)
	}
	return append(out, g.prepareRebalance(now)...)
}

type failFunc func(code int16, memberID string) []Reply

// joinNew handles a join with no member id: a new member, or a static
// member whose process restarted.
func (g *Group) joinNew(now time.Time, req *kmsg.JoinGroupRequest, m *member, to Waiter, fail failFunc) []Reply {
	if !g.supportsProtocols(req, "") {
		return fail(kerr.InconsistentGroupProtocol.Code, "")
	}
	if req.InstanceID != nil {
		if old := g.members[g.static[*req.InstanceID]]; old != nil {
			return g.replaceStatic(now, old, req, m, to)
		}
	}
	if g.cfg.MaxSize > 0 && len(g.members)+len(g.pending) >= g.cfg.MaxSize {
		return fail(kerr.GroupMaxSizeReached.Code, "")
	}
	if g.state == Dead {
		g.reset()
		g.state = Empty
	}
	prefix := m.clientID
	if req.InstanceID != nil {
		prefix = *req.InstanceID // as Kafka: the id says which instance held it
	}
	m.id = newMemberID(prefix)
	if req.Version >= 4 && req.InstanceID == nil {
		// KIP-394: the client must come back with this id, so a client
		// that retries a timed-out join is not counted twice.
		g.pending[m.id] = now.Add(m.session)
		return fail(kerr.MemberIDRequired.Code, m.id)
	}
	return g.addAndRebalance(now, m, req, to)
}

// replaceStatic gives a restarted static member the place of the one it
// replaces; the old member id is fenced from then on.
func (g *Group) replaceStatic(now time.Time, old *member, req *kmsg.JoinGroupRequest, m *member, to Waiter) []Reply {
	out := g.unpark(old, kerr.FencedInstanceID.Code)
	prevLeader := g.leader
	m.id = newMemberID(*req.InstanceID)
	m.seq, m.assignment = old.seq, old.assignment
	m.expires = now.Add(m.session)
	delete(g.members, old.id)
	g.members[m.id] = m
	g.static[*req.InstanceID] = m.id
	if g.leader == old.id {
		g.leader = m.id
	}
	if g.unsynced[old.id] {
		delete(g.unsynced, old.id)
		g.unsynced[m.id] = true
	}
	switch g.state {
	case Stable:
		// No rebalance (KIP-345) unless the protocol the group would
		// select changes, as Kafka decides: the member fetches its old
		// assignment with SyncGroup.
		if g.selectProtocol() == g.protocol {
			return append(out, Reply{to, g.staticRejoin(req, m.id, prevLeader == old.id)})
		}
	case PreparingRebalance:
		m.join, m.joinTo = req, to
		return append(out, g.maybeCompleteJoin(now)...)
	}
	// In CompletingRebalance the leader is assigning to the old member
	// id, which nobody would collect: start over.
	m.join, m.joinTo = req, to
	return append(out, g.prepareRebalance(now)...)
}

func (g *Group) addAndRebalance(now time.Time, m *member, req *kmsg.JoinGroupRequest, to Waiter) []Reply {
	g.addMember(m, req.ProtocolType)
	m.join, m.joinTo = req, to
	m.expires = now.Add(m.session)
	if g.state == PreparingRebalance {
		return g.maybeCompleteJoin(now)
	}
	return g.prepareRebalance(now)
}

// park updates old from its new join and holds the request for the end of
// the join phase.
func (g *Group) park(old, m *member, req *kmsg.JoinGroupRequest, to Waiter) []Reply {
	var out []Reply
	if old.join != nil {
		// The client gave up on its earlier request and sent this one.
		out = append(out, Reply{old.joinTo, joinError(old.join, kerr.RebalanceInProgress.Code, old.id)})
	}
	old.clientID, old.clientHost = m.clientID, m.clientHost
	old.protocols, old.session, old.rebalance = m.protocols, m.session, m.rebalance
	old.join, old.joinTo = req, to
	return out
}

// supportsProtocols is Kafka's admission test for a joining member's
// protocols, judged against the members other than self (so a member may
// change its own protocols when nobody else constrains it).
func (g *Group) supportsProtocols(req *kmsg.JoinGroupRequest, self string) bool {
	if req.ProtocolType == "" || len(req.Protocols) == 0 {
		return false
	}
	if g.state == Dead || g.state == Empty {
		return true
	}
	if req.ProtocolType != g.protocolType {
		return false
	}
	for _, p := range req.Protocols {
		all := true
		for _, o := range g.members {
			if o.id == self {
				continue
			}
			if _, ok := o.metadata(p.Name); !ok {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// staticRejoin answers a static member that came back to a stable group.
// A returning leader is told it leads: from v9 with the member list and
// SkipAssignment (KIP-814), so it knows the group without assigning again;
// before v9 with no members, the answer older clients recognise.
func (g *Group) staticRejoin(req *kmsg.JoinGroupRequest, memberID string, wasLeader bool) *kmsg.JoinGroupResponse {
	if !wasLeader {
		return g.currentJoin(req, memberID, g.leader)
	}
	resp := g.currentJoin(req, memberID, memberID)
	if req.Version >= 9 {
		resp.SkipAssignment = true
	} else {
		resp.Members = nil
	}
	return resp
}

func (g *Group) currentJoin(req *kmsg.JoinGroupRequest, memberID, leader string) *kmsg.JoinGroupResponse {
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	g.fillJoin(resp, memberID, leader)
	return resp
}

// joinError is a failed JoinGroup response: no generation, protocol or
// leader, and the member id the client should use next.
func joinError(req *kmsg.JoinGroupRequest, code int16, memberID string) *kmsg.JoinGroupResponse {
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.ErrorCode = code
	resp.Generation = -1
	resp.MemberID = memberID
	return resp
}

// newMemberID makes a member id as Kafka does: a prefix naming the client,
// then a random UUID so ids are never reused.
func newMemberID(prefix string) string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%s-%x-%x-%x-%x-%x", prefix, b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
