package kafkawire

// FindCoordinator, key 10.
//
// v0-v5 (v4+ batches keys). The coordinator of a group is the node hosting
// its group actor. The coordinator of a transactional id is this node,
// which forwards transaction requests to upstream's transaction
// coordinator. Share groups (type 2, v6) are not handled. With ACLs, a
// group key needs DESCRIBE on the group (else GROUP_AUTHORIZATION_FAILED)
// and a transactional id DESCRIBE on it (else
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED).

import (
	"github.com/meshka/meshka/acl"
	"github.com/meshka/meshka/actors/group"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(10, 0, 5, handleFindCoordinator) }

func handleFindCoordinator(c *conn, kreq kmsg.Request) func() (kmsg.Response, error) {
	req := kreq.(*kmsg.FindCoordinatorRequest)
	return func() (kmsg.Response, error) {
		resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
		self := c.registry().Self()
		answer := func(key string) (int16, int32, string, int32) {
			switch {
			case req.CoordinatorType != 0 && req.CoordinatorType != 1:
				return kerr.InvalidRequest.Code, -1, "", -1
			case key == "" && req.CoordinatorType == 1:
				return kerr.InvalidRequest.Code, -1, "", -1
			case req.CoordinatorType == 0 && !c.allowed(acl.Describe, acl.Group, key):
				return groupRefused, -1, "", -1
			case req.CoordinatorType == 1 && !c.allowed(acl.Describe, acl.TransactionalID, key):
				return txnRefused, -1, "", -1
			case req.CoordinatorType == 0:
				n := c.registry().Owner(group.Kind, group.Identity(c.s.deps.UpstreamName, key))
				if n.ID < 0 {
					return kerr.CoordinatorNotAvailable.Code, -1, "", -1 // no live node: this one has left
				}
				return 0, n.ID, n.Host, n.Port
			}
			return 0, self.ID, self.Host, self.Port
		}
		if req.Version < 4 {
			resp.ErrorCode, resp.NodeID, resp.Host, resp.Port = answer(req.CoordinatorKey)
			return resp, nil
		}
		for _, key := range req.CoordinatorKeys {
			co := kmsg.NewFindCoordinatorResponseCoordinator()
			co.Key = key
			co.ErrorCode, co.NodeID, co.Host, co.Port = answer(key)
			resp.Coordinators = append(resp.Coordinators, co)
		}
		return resp, nil
	}
}
