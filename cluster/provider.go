package cluster

import (
	"github.com/asynkron/protoactor-go/cluster"
)

// singleNode is a cluster provider whose only member is this node. It
// reports itself to the member list once; the gossip provider replaces it
// when nodes join.
type singleNode struct{}

var _ cluster.ClusterProvider = singleNode{}

func (singleNode) StartMember(c *cluster.Cluster) error {
	host, port, err := c.ActorSystem.GetHostPort()
	if err != nil {
		return err
	}
	c.MemberList.UpdateClusterTopology([]*cluster.Member{{
		Id:    c.ActorSystem.ID,
		Host:  host,
		Port:  int32(port),
		Kinds: c.GetClusterKinds(),
	}})
	return nil
}

func (singleNode) StartClient(*cluster.Cluster) error { return nil }
func (singleNode) Shutdown(bool) error                { return nil }
