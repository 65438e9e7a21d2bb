package kafkawire

// ListGroups, key 16.
//
// v0-v5. The groups this node coordinates, with their actors' states
// (groups Kafka clients joined here, and the shares of bindings), and
// every group upstream knows (groups with committed offsets, Empty there
// because members join meshka, not upstream). States (v4+) and types (v5+)
// filter as Kafka's do, case-insensitively for states. With ACLs, a
// principal with DESCRIBE on the cluster sees every group, others only
// the groups they may DESCRIBE.

import (
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/acl"
	"github.com/meshka/meshka/actors/group"
)

func init() { register(16, 0, 5, handleListGroups) }

func handleListGroups(c *conn, kreq kmsg.Request) func() (kmsg.Response, error) {
	req := kreq.(*kmsg.ListGroupsRequest)
	return func() (kmsg.Response, error) {
		resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
		seen := make(map[string]bool)
		all := !c.aclOn() || c.allowedCluster(acl.Describe)
		visible := func(id string) bool { return all || c.allowed(acl.Describe, acl.Group, id) }
		add := func(id, state, typ string) {
			if seen[id] || !visible(id) || !matches(req.StatesFilter, state, true) || !matches(req.TypesFilter, "classic", false) {
				return
			}
			seen[id] = true
			g := kmsg.NewListGroupsResponseGroup()
			g.Group, g.ProtocolType, g.GroupState, g.GroupType = id, typ, state, "classic"
			resp.Groups = append(resp.Groups, g)
		}
		// The groups clients asked this node about, and those whose
		// actors run here for any other reason (a share of the mesh API
		// coordinated here, its members on any node).
		ids := c.s.groups.list()
		for _, identity := range c.s.deps.Mesh.Activations(group.Kind) {
			if up, id, err := group.ParseIdentity(identity); err == nil && up == c.s.deps.UpstreamName {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		for _, id := range slices.Compact(ids) {
			if !c.s.coordinates(id) || !visible(id) {
				// Listed by the node that does, as Kafka's brokers each
				// list their own.
				continue
			}
			sum, code, err := ask[*group.SummaryResponse](c, id, &group.SummaryRequest{}, groupWait)
			if err != nil {
				return nil, err
			}
			if code == 0 && sum.State != "Dead" {
				add(id, sum.State, sum.ProtocolType)
			}
		}
		up := kmsg.NewPtrListGroupsRequest()
		kresp, err := c.s.deps.Upstream.Request(c.ctx, up)
		if err != nil {
			if c.ctx.Err() == nil {
				c.s.upstreamTrouble("ListGroups", err)
			}
			return resp, nil
		}
		for _, g := range kresp.(*kmsg.ListGroupsResponse).Groups {
			if _, local := c.s.groups.lookup(g.Group); !local {
				add(g.Group, "Empty", g.ProtocolType)
			}
		}
		return resp, nil
	}
}

func matches(filter []string, v string, fold bool) bool {
	if len(filter) == 0 {
		return true
	}
	for _, f := range filter {
		if f == v || fold && strings.EqualFold(f, v) {
			return true
		}
	}
	return false
}
