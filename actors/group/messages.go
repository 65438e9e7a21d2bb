package group

import (
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kind is the actor kind group actors are registered under.
const Kind = "group"

// Identity names a group actor: <upstream>/<group id>.
func Identity(upstreamName, groupID string) string {
	return upstreamName + "/" + groupID
}

// ParseIdentity splits an identity made by Identity. Upstream names hold no
// '/', group ids may, so only the first separator counts.
func ParseIdentity(id string) (upstreamName, groupID string, err error) {
	i := strings.IndexByte(id, '/')
	if i <= 0 {
		return "", "", fmt.Errorf("group identity %q: want <upstream>/<group>", id)
	}
	return id[:i], id[i+1:], nil
}

// Messages to a group actor. Like partition messages they carry Go channels
// and are node-local. Every Reply channel must have room for one value: the
// actor sends exactly one reply to each, never blocking on it, though Join
// and Sync may be answered much later (when the rebalance or the leader's
// assignment comes). Requests are decoded at the client's version and kept
// by the group after they are sent, so the sender must not reuse them.

// Join carries a JoinGroup request.
type Join struct {
	Req        *kmsg.JoinGroupRequest
	ClientID   string
	ClientHost string
	Reply      chan<- *kmsg.JoinGroupResponse
}

// Sync carries a SyncGroup request.
type Sync struct {
	Req   *kmsg.SyncGroupRequest
	Reply chan<- *kmsg.SyncGroupResponse
}

// Heartbeat carries a Heartbeat request.
type Heartbeat struct {
	Req   *kmsg.HeartbeatRequest
	Reply chan<- *kmsg.HeartbeatResponse
}

// Leave carries a LeaveGroup request.
type Leave struct {
	Req   *kmsg.LeaveGroupRequest
	Reply chan<- *kmsg.LeaveGroupResponse
}

// CheckCommit asks whether an OffsetCommit or TxnOffsetCommit from this
// generation and member may be stored upstream. Reply gets a Kafka error
// code, 0 when it may.
type CheckCommit struct {
	Generation    int32
	MemberID      string
	InstanceID    *string
	Transactional bool // a TxnOffsetCommit
	Reply         chan<- int16
}

// CheckOffsetDelete asks, per topic, whether the group's committed offsets
// may be deleted: 0, or the error code to answer for that topic.
type CheckOffsetDelete struct {
	Topics []string
	Reply  chan<- map[string]int16
}

// Describe asks for the group as DescribeGroups shows it.
type Describe struct {
	Reply chan<- kmsg.DescribeGroupsResponseGroup
}

// Delete asks the group to be deleted for DeleteGroups; Reply gets 0 or the
// error code.
type Delete struct {
	Reply chan<- int16
}

// Summary asks for the group as ListGroups shows it.
type Summary struct {
	Reply chan<- GroupSummary
}

// GroupSummary is one ListGroups entry. State "Dead" means the group does
// not exist on this node.
type GroupSummary struct {
	Group, State, ProtocolType string
}

// tick tells the actor its group's next deadline may have passed.
type tick struct{ seq uint64 }
