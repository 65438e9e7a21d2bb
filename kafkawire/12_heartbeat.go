package kafkawire

// Heartbeat, key 12.
//
// v0-v4, answered by the group actor.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/actors/group"
)

func init() { register(12, 0, 4, handleHeartbeat) }

func handleHeartbeat(c *conn, kreq kmsg.Request) func() (kmsg.Response, error) {
	req := kreq.(*kmsg.HeartbeatRequest)
	return groupCall[*group.HeartbeatResponse](c, req, req.Group, group.NewHeartbeat(req), groupWait, func(code int16) *kmsg.HeartbeatResponse {
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = code
		return resp
	})
}
