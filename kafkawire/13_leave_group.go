package kafkawire

// LeaveGroup, key 13.
//
// v0-v5 (v3+ leaves a batch of members, by member or instance id).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/actors/group"
)

func init() { register(13, 0, 5, handleLeaveGroup) }

func handleLeaveGroup(c *conn, kreq kmsg.Request) func() (kmsg.Response, error) {
	req := kreq.(*kmsg.LeaveGroupRequest)
	ch := make(chan *kmsg.LeaveGroupResponse, 1)
	code := c.s.sendGroup(req.Group, &group.Leave{Req: req, Reply: ch})
	return func() (kmsg.Response, error) {
		if code == 0 {
			resp, ok, err := await(c, ch, groupWait)
			if err != nil || ok {
				return resp, err
			}
		}
		resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
		resp.ErrorCode = coordinatorGone(code)
		return resp, nil
	}
}

// coordinatorGone is the code for a group actor that did not answer.
func coordinatorGone(code int16) int16 {
	if code == 0 {
		return kerr.CoordinatorNotAvailable.Code
	}
	return code
}
