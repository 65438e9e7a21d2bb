package group

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Leave handles a LeaveGroup request: one member before v3, a batch with
// per-member errors from v3 (where static members may be named by
// instance id alone). The remaining members rebalance once for the batch.
func (g *Group) Leave(now time.Time, req *kmsg.LeaveGroupRequest, to Waiter) []Reply {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return []Reply{{to, resp}}
	}
	var out []Reply
	removed, unpended := false, false
	leave := func(memberID string, instanceID *string) int16 {
		if instanceID != nil {
			owner, ok := g.static[*instanceID]
			if !ok {
				return kerr.UnknownMemberID.Code
			}
			if memberID != "" && memberID != owner {
				return kerr.FencedInstanceID.Code
			}
			memberID = owner
		}
		if _, ok := g.pending[memberID]; ok {
			delete(g.pending, memberID)
			unpended = true
			return 0
		}
		m := g.members[memberID]
		if m == nil {
			return kerr.UnknownMemberID.Code
		}
		out = append(out, g.removeMember(m, kerr.UnknownMemberID.Code)...)
		removed = true
		return 0
	}
	if req.Version < 3 {
		resp.ErrorCode = leave(req.MemberID, nil)
	} else {
		for _, lm := range req.Members {
			r := kmsg.NewLeaveGroupResponseMember()
			r.MemberID, r.InstanceID = lm.MemberID, lm.InstanceID
			r.ErrorCode = leave(lm.MemberID, lm.InstanceID)
			resp.Members = append(resp.Members, r)
		}
	}
	if removed {
		out = append(out, g.membersChanged(now)...)
	} else if unpended {
		out = append(out, g.maybeCompleteJoin(now)...)
	}
	return append([]Reply{{to, resp}}, out...)
}

// Delete makes an Empty group Dead for DeleteGroups; a group in any other
// live state is refused with NON_EMPTY_GROUP.
func (g *Group) Delete() int16 {
	if g.state != Empty && g.state != Dead {
		return kerr.NonEmptyGroup.Code
	}
	// Deleting a group that does not exist here still succeeds: its
	// committed offsets upstream may outlive this node's memory of it.
	g.reset()
	return 0
}
