package group

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Heartbeat handles a Heartbeat request: it keeps the member's session
// alive and tells it when to rejoin.
func (g *Group) Heartbeat(now time.Time, req *kmsg.HeartbeatRequest, to Waiter) []Reply {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	resp.ErrorCode = g.heartbeat(now, req)
	return []Reply{{to, resp}}
}

func (g *Group) heartbeat(now time.Time, req *kmsg.HeartbeatRequest) int16 {
	if req.Group == "" {
		return kerr.InvalidGroupID.Code
	}
	if code := g.validateMember(req.MemberID, req.InstanceID); code != 0 {
		return code
	}
	if req.Generation != g.generation {
		return kerr.IllegalGeneration.Code
	}
	m := g.members[req.MemberID]
	switch g.state {
	case PreparingRebalance:
		m.expires = now.Add(m.session)
		return kerr.RebalanceInProgress.Code
	case CompletingRebalance, Stable:
		// A member heartbeats between its JoinGroup response and its
		// SyncGroup; that is no reason to rejoin.
		m.expires = now.Add(m.session)
		return 0
	}
	return kerr.UnknownMemberID.Code
}

// CheckCommit says whether an offset commit from this generation and member
// may be stored (0) or the error code to answer it with. A valid commit
// also counts as the member being alive. A transactional commit
// (TxnOffsetCommit) that names no generation or member is accepted even
// while the group has members, as Kafka's coordinator does: before v3 the
// request has no such fields, and producers that commit for a group they
// are not a member of (sarama, kafkajs) send none.
func (g *Group) CheckCommit(now time.Time, generation int32, memberID string, instanceID *string, transactional bool) int16 {
	standalone := generation < 0 && memberID == "" && instanceID == nil
	switch {
	case g.state == Dead:
		if generation < 0 {
			// A consumer using assign() with committed offsets: the group
			// now exists, with no members and no protocol, as in Kafka.
			g.reset()
			g.state = Empty
			return 0
		}
		// As Kafka answers for a group it does not have: a consumer left
		// over from before a restart or a move learns to rejoin.
		return kerr.IllegalGeneration.Code
	case generation < 0 && g.state == Empty:
		return 0
	case standalone && transactional:
		return 0
	case standalone:
		// Offsets of a group under management belong to its members.
		return kerr.UnknownMemberID.Code
	}
	if code := g.validateMember(memberID, instanceID); code != 0 {
		return code
	}
	if generation != g.generation {
		return kerr.IllegalGeneration.Code
	}
	m := g.members[memberID]
	if g.state == CompletingRebalance {
		// The member knows the new generation but not yet its assignment,
		// so what it commits cannot be for partitions it owns.
		return kerr.RebalanceInProgress.Code
	}
	m.expires = now.Add(m.session)
	return 0
}
