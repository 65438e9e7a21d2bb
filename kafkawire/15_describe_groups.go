package kafkawire

// DescribeGroups, key 15.
//
// v0-v5 (v6 adds per-group errors for unknown groups and is not handled).
// Each group is described by its actor: state, protocol, members and their
// assignments. A group no member joined is Empty, as Kafka describes a group
// that only has committed offsets.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/actors/group"
)

func init() { register(15, 0, 5, handleDescribeGroups) }

func handleDescribeGroups(c *conn, kreq kmsg.Request) func() (kmsg.Response, error) {
	req := kreq.(*kmsg.DescribeGroupsRequest)
	return func() (kmsg.Response, error) {
		resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
		for _, id := range req.Groups {
			ch := make(chan kmsg.DescribeGroupsResponseGroup, 1)
			g, code, err := ask(c, id, &group.Describe{Reply: ch}, ch, groupWait)
			if err != nil {
				return nil, err
			}
			if code != 0 {
				g = kmsg.NewDescribeGroupsResponseGroup()
				g.ErrorCode = code
			}
			g.Group = id
			resp.Groups = append(resp.Groups, g)
		}
		return resp, nil
	}
}
