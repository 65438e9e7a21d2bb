package kafkawire

// DeleteGroups, key 42.
//
// A group can be deleted when its actor has no members (else
// NON_EMPTY_GROUP); its committed offsets are then deleted upstream. With
// ACLs, a group the principal may not DELETE gets GROUP_AUTHORIZATION_FAILED
// in its entry.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/acl"
	"github.com/meshka/meshka/actors/group"
)

func init() { register(42, 0, maxOf(42), handleDeleteGroups) }

func handleDeleteGroups(c *conn, kreq kmsg.Request) func() (kmsg.Response, error) {
	req := kreq.(*kmsg.DeleteGroupsRequest)
	return func() (kmsg.Response, error) {
		resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
		for _, id := range req.Groups {
			r := kmsg.NewDeleteGroupsResponseGroup()
			r.Group = id
			if !c.allowed(acl.Delete, acl.Group, id) {
				r.ErrorCode = groupRefused
				resp.Groups = append(resp.Groups, r)
				continue
			}
			_, hadActor := c.s.groups.lookup(id)
			answer, code, err := ask[*group.DeleteResponse](c, id, &group.DeleteRequest{}, groupWait)
			if err != nil {
				return nil, err
			}
			if code == 0 {
				code = int16(answer.ErrorCode)
			}
			if code == 0 {
				up := *req
				up.Groups = []string{id}
				kresp, err := c.s.deps.Upstream.Forward(c.ctx, &up)
				switch {
				case err != nil:
					code = errCode(err)
				case len(kresp.(*kmsg.DeleteGroupsResponse).Groups) == 1:
					code = kresp.(*kmsg.DeleteGroupsResponse).Groups[0].ErrorCode
				}
				// A group that only ever lived in meshka has no offsets
				// upstream; it existed, so deleting it succeeded.
				if code == kerr.GroupIDNotFound.Code && hadActor {
					code = 0
				}
				if code == 0 {
					c.s.groups.remove(id)
				}
			}
			r.ErrorCode = code
			resp.Groups = append(resp.Groups, r)
		}
		return resp, nil
	}
}
