package kafkawire

// SyncGroup, key 14.
//
// v0-v5. Followers wait in the group actor for the leader's assignment,
// bounded like a rebalance.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/actors/group"
)

func init() { register(14, 0, 5, handleSyncGroup) }

// syncWait bounds a follower's wait for the leader's assignment: Kafka's
// longest rebalance timeout is the session bound, 30 minutes at most.
const syncWait = 30 * time.Minute

func handleSyncGroup(c *conn, kreq kmsg.Request) func() (kmsg.Response, error) {
	req := kreq.(*kmsg.SyncGroupRequest)
	return groupCall[*group.SyncResponse](c, req, req.Group, group.NewSync(req), syncWait, func(code int16) *kmsg.SyncGroupResponse {
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = code
		return resp
	})
}
