package group

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Sync handles a SyncGroup request. Followers that sync before the leader
// are answered when the leader's assignment arrives.
func (g *Group) Sync(now time.Time, req *kmsg.SyncGroupRequest, to Waiter) []Reply {
	fail := func(code int16) []Reply { return []Reply{{to, syncError(req, code)}} }
	if req.Group == "" {
		return fail(kerr.InvalidGroupID.Code)
	}
	if code := g.validateMember(req.MemberID, req.InstanceID); code != 0 {
		return fail(code)
	}
	if req.Generation != g.generation {
		return fail(kerr.IllegalGeneration.Code)
	}
	if (req.ProtocolType != nil && *req.ProtocolType != g.protocolType) ||
		(req.Protocol != nil && *req.Protocol != g.protocol) {
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	m := g.members[req.MemberID]
	switch g.state {
	case PreparingRebalance:
		m.expires = now.Add(m.session)
		return fail(kerr.RebalanceInProgress.Code)
	case Stable:
		delete(g.unsynced, m.id)
		m.expires = now.Add(m.session)
		return []Reply{{to, g.syncOK(req, m)}}
	case CompletingRebalance:
	default:
		return fail(kerr.UnknownMemberID.Code)
	}

	var out []Reply
	if m.sync != nil {
		// The client gave up on its earlier request and sent this one.
		out = append(out, Reply{m.syncTo, syncError(m.sync, kerr.RebalanceInProgress.Code)})
	}
	m.sync, m.syncTo = req, to
	delete(g.unsynced, m.id)
	if m.id != g.leader {
		return out
	}
	for _, o := range g.members {
		o.assignment = []byte{} // a member the leader left out gets nothing
	}
	for _, a := range req.GroupAssignment {
		if o := g.members[a.MemberID]; o != nil {
			o.assignment = a.MemberAssignment
		}
	}
	g.state = Stable
	for _, o := range g.sortedMembers() {
		if o.sync != nil {
			out = append(out, Reply{o.syncTo, g.syncOK(o.sync, o)})
			o.sync, o.syncTo = nil, nil
			o.expires = now.Add(o.session)
		}
	}
	return out
}

func (g *Group) syncOK(req *kmsg.SyncGroupRequest, m *member) *kmsg.SyncGroupResponse {
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	resp.ProtocolType = kmsg.StringPtr(g.protocolType)
	resp.Protocol = kmsg.StringPtr(g.protocol)
	resp.MemberAssignment = m.assignment
	if resp.MemberAssignment == nil {
		resp.MemberAssignment = []byte{}
	}
	return resp
}

func syncError(req *kmsg.SyncGroupRequest, code int16) *kmsg.SyncGroupResponse {
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	resp.ErrorCode = code
	resp.MemberAssignment = []byte{}
	return resp
}
