package kafkawire

// DescribeGroups, key 15.
//
// v0-v5 (v6 adds per-group errors for unknown groups and is not handled).
// Each group is described by its actor: state, protocol, members and their
// assignments. A group no member joined is Empty, as Kafka describes a group
// that only has committed offsets. With ACLs, a group the principal may
// not DESCRIBE gets GROUP_AUTHORIZATION_FAILED in its entry; v3+ clients
// asking for authorized operations get the principal's on each group.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/acl"
	"github.com/meshka/meshka/actors/group"
)

func init() { register(15, 0, 5, handleDescribeGroups) }

func handleDescribeGroups(c *conn, kreq kmsg.Request) func() (kmsg.Response, error) {
	req := kreq.(*kmsg.DescribeGroupsRequest)
	return func() (kmsg.Response, error) {
		resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
		for _, id := range req.Groups {
			if !c.allowed(acl.Describe, acl.Group, id) {
				g := kmsg.NewDescribeGroupsResponseGroup()
				g.Group, g.ErrorCode = id, groupRefused
				resp.Groups = append(resp.Groups, g)
				continue
			}
			g, err := c.describeGroup(req, id)
			if err != nil {
				return nil, err
			}
			g.Group = id
			if req.IncludeAuthorizedOperations && c.aclOn() {
				g.AuthorizedOperations = c.authorizedOps(acl.Group, id)
			}
			resp.Groups = append(resp.Groups, g)
		}
		return resp, nil
	}
}

// describeGroup asks the group's actor to describe it at req's version.
func (c *conn) describeGroup(req *kmsg.DescribeGroupsRequest, id string) (kmsg.DescribeGroupsResponseGroup, error) {
	answer, code, err := ask[*group.DescribeResponse](c, id, &group.DescribeRequest{Version: int32(req.Version)}, groupWait)
	if err != nil {
		return kmsg.DescribeGroupsResponseGroup{}, err
	}
	if code == 0 {
		one := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
		err := group.DecodeResponse(one, answer)
		if err == nil && len(one.Groups) == 1 {
			return one.Groups[0], nil
		}
		c.s.log.Error("group actor's description does not decode", "group", id, "err", err, "groups", len(one.Groups))
		code = kerr.CoordinatorNotAvailable.Code
	}
	g := kmsg.NewDescribeGroupsResponseGroup()
	g.ErrorCode = code
	return g, nil
}
