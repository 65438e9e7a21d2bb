package kafkawire

// JoinGroup, key 11.
//
// v0-v9. Coordinated by the group's actor (group.Kind), on whichever node
// owns the group; the answer comes when the rebalance completes, so the
// wait is bounded by the request's rebalance timeout (its session timeout
// before v1).

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/actors/group"
)

func init() { register(11, 0, 9, handleJoinGroup) }

func handleJoinGroup(c *conn, kreq kmsg.Request) func() (kmsg.Response, error) {
	req := kreq.(*kmsg.JoinGroupRequest)
	host, _, _ := splitHost(c.remote)
	wait := time.Duration(max(req.RebalanceTimeoutMillis, req.SessionTimeoutMillis)) * time.Millisecond
	return groupCall[*group.JoinResponse](c, req, req.Group, group.NewJoin(req, c.clientID, "/"+host), wait+groupWait,
		func(code int16) *kmsg.JoinGroupResponse {
			resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
			resp.ErrorCode, resp.Generation, resp.MemberID = code, -1, req.MemberID
			return resp
		})
}
