package group

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// prepareRebalance opens a join phase: every member must rejoin by the
// largest rebalance timeout of the group.
func (g *Group) prepareRebalance(now time.Time) []Reply {
	var out []Reply
	if g.state == CompletingRebalance {
		// The leader is assigning for a membership that no longer holds;
		// its assignment would be refused, so everyone starts over.
		for _, m := range g.sortedMembers() {
			m.assignment = nil
			if m.sync != nil {
				out = append(out, Reply{m.syncTo, syncError(m.sync, kerr.RebalanceInProgress.Code)})
				m.sync, m.syncTo = nil, nil
			}
		}
	}
	g.unsynced = nil
	fromEmpty := g.state == Empty
	g.state = PreparingRebalance
	timeout := g.rebalanceTimeout()
	if fromEmpty && g.cfg.InitialRebalanceDelay > 0 {
		// Consumers of a new deployment start one after another; waiting
		// a little gathers them into one generation instead of one each.
		g.initialDelay, g.newcomer = true, false
		g.delayLeft = max(timeout-g.cfg.InitialRebalanceDelay, 0)
		g.joinDeadline = now.Add(g.cfg.InitialRebalanceDelay)
		return out
	}
	g.initialDelay = false
	g.joinDeadline = now.Add(timeout)
	return append(out, g.maybeCompleteJoin(now)...)
}

// maybeCompleteJoin ends the join phase early once every member has
// rejoined and no member id handed out with MEMBER_ID_REQUIRED is still
// expected back.
func (g *Group) maybeCompleteJoin(now time.Time) []Reply {
	if g.state != PreparingRebalance || g.initialDelay || len(g.pending) > 0 {
		return nil
	}
	for _, m := range g.members {
		if m.join == nil {
			return nil
		}
	}
	return g.completeJoin(now)
}

func (g *Group) joinPhaseOver(now time.Time) []Reply {
	if g.initialDelay && g.newcomer && g.delayLeft > 0 {
		// Someone came during the delay: more may follow. Wait again,
		// within the rebalance timeout in total.
		d := min(g.cfg.InitialRebalanceDelay, g.delayLeft)
		g.delayLeft -= d
		g.newcomer = false
		g.joinDeadline = now.Add(d)
		return nil
	}
	g.initialDelay = false
	return g.completeJoin(now)
}

// completeJoin starts the next generation with the members that rejoined.
func (g *Group) completeJoin(now time.Time) []Reply {
	var out []Reply
	for _, m := range g.sortedMembers() {
		// A static member is expected back under its instance id; only
		// its session timeout removes it (KIP-345).
		if m.join == nil && m.instanceID == nil {
			out = append(out, g.removeMember(m, kerr.UnknownMemberID.Code)...)
		}
	}
	var joined []*member
	for _, m := range g.sortedMembers() {
		if m.join != nil {
			joined = append(joined, m)
		}
	}
	if len(g.members) > 0 && len(joined) == 0 {
		// Only absent static members are left: no one could lead. Wait
		// for them, or for their sessions to end.
		g.joinDeadline = now.Add(g.rebalanceTimeout())
		return out
	}
	g.generation++
	if g.generation < 0 {
		g.generation = 1
	}
	if len(g.members) == 0 {
		g.state, g.protocol, g.leader = Empty, "", ""
		return out
	}
	if m := g.members[g.leader]; m == nil || m.join == nil {
		g.leader = joined[0].id
	}
	g.protocol = g.selectProtocol()
	g.state = CompletingRebalance
	g.unsynced = make(map[string]bool, len(g.members))
	for id := range g.members {
		g.unsynced[id] = true
	}
	g.syncDeadline = now.Add(g.rebalanceTimeout())
	for _, m := range joined {
		resp := m.join.ResponseKind().(*kmsg.JoinGroupResponse)
		g.fillJoin(resp, m.id, g.leader)
		out = append(out, Reply{m.joinTo, resp})
		m.join, m.joinTo = nil, nil
		m.expires = now.Add(m.session)
	}
	return out
}

// selectProtocol picks among the protocols every member supports: each
// member votes for the first of them in its own preference order, and the
// most votes win. Ties go to the leader's preference, so the outcome does
// not depend on map order.
func (g *Group) selectProtocol() string {
	support := make(map[string]int)
	for _, m := range g.members {
		for _, p := range m.protocols {
			support[p.Name]++
		}
	}
	votes := make(map[string]int)
	for _, m := range g.members {
		for _, p := range m.protocols {
			if support[p.Name] == len(g.members) {
				votes[p.Name]++
				break
			}
		}
	}
	best, most := "", 0
	if l := g.members[g.leader]; l != nil {
		for _, p := range l.protocols {
			if votes[p.Name] > most {
				best, most = p.Name, votes[p.Name]
			}
		}
	}
	return best
}

// fillJoin answers a join with the current generation. Only the leader
// named in the response gets the member list it must assign.
func (g *Group) fillJoin(resp *kmsg.JoinGroupResponse, memberID, leader string) {
	resp.Generation = g.generation
	resp.ProtocolType = kmsg.StringPtr(g.protocolType)
	resp.Protocol = kmsg.StringPtr(g.protocol)
	resp.LeaderID = leader
	resp.MemberID = memberID
	if memberID != leader {
		return
	}
	for _, m := range g.sortedMembers() {
		meta, _ := m.metadata(g.protocol)
		resp.Members = append(resp.Members, kmsg.JoinGroupResponseMember{
			MemberID: m.id, InstanceID: m.instanceID, ProtocolMetadata: meta,
		})
	}
}
