package kafkawire

// DescribeCluster, key 60.
//
// v0-v2. The brokers are meshka nodes and the controller is this node; the
// cluster id is upstream's. meshka has no controllers to list, so a request
// for controller endpoints (v1+, type 2) gets UNSUPPORTED_ENDPOINT_TYPE, as
// a Kafka broker answers. As in Kafka, ACLs refuse no one here: the
// cluster's authorized operations (DESCRIBE on it first) are reported when
// asked.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/acl"
)

func init() { register(60, 0, 2, handleDescribeCluster) }

func handleDescribeCluster(c *conn, kreq kmsg.Request) func() (kmsg.Response, error) {
	req := kreq.(*kmsg.DescribeClusterRequest)
	return func() (kmsg.Response, error) {
		resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
		resp.EndpointType = req.EndpointType
		if req.Version >= 1 && req.EndpointType != 1 {
			resp.ErrorCode = kerr.UnsupportedEndpointType.Code
			return resp, nil
		}
		id, err := c.s.deps.Upstream.Meta().ClusterID(c.ctx)
		if err != nil || id == nil {
			resp.ErrorCode = kerr.BrokerNotAvailable.Code
			return resp, nil
		}
		resp.ClusterID = *id
		if req.IncludeClusterAuthorizedOperations && c.aclOn() {
			resp.ClusterAuthorizedOperations = 0
			if c.allowedCluster(acl.Describe) {
				resp.ClusterAuthorizedOperations = c.authorizedOps(acl.Cluster, acl.ClusterName)
			}
		}
		resp.ControllerID = c.registry().Controller().ID
		for _, n := range c.registry().Nodes() {
			b := kmsg.NewDescribeClusterResponseBroker()
			b.NodeID, b.Host, b.Port = n.ID, n.Host, n.Port
			resp.Brokers = append(resp.Brokers, b)
		}
		return resp, nil
	}
}
