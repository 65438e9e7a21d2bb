package kafkawire

// LeaveGroup, key 13.
//
// v0-v5 (v3+ leaves a batch of members, by member or instance id).

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/actors/group"
)

func init() { register(13, 0, 5, handleLeaveGroup) }

func handleLeaveGroup(c *conn, kreq kmsg.Request) func() (kmsg.Response, error) {
	req := kreq.(*kmsg.LeaveGroupRequest)
	return groupCall[*group.LeaveResponse](c, req, req.Group, group.NewLeave(req), groupWait, func(code int16) *kmsg.LeaveGroupResponse {
		resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
		resp.ErrorCode = code
		return resp
	})
}
