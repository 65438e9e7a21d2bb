package cluster

import (
	"fmt"
	"net"
	"strconv"
)

// Node is a meshka node as Kafka clients see it: a broker.
type Node struct {
	ID   int32
	Host string
	Port int32
}

// ParseNode builds a Node from its id and advertised host:port.
func ParseNode(id int32, advertise string) (Node, error) {
	host, portStr, err := net.SplitHostPort(advertise)
	if err != nil {
		return Node{}, fmt.Errorf("advertised address %q: %w", advertise, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return Node{}, fmt.Errorf("advertised address %q: bad port", advertise)
	}
	return Node{ID: id, Host: host, Port: int32(port)}, nil
}

// Registry is the set of meshka nodes that Metadata, FindCoordinator and
// DescribeCluster name, and which node hosts which actor. Safe for
// concurrent use; never blocks.
type Registry struct {
	self Node
}

// NewRegistry starts a registry that knows only this node.
func NewRegistry(self Node) *Registry { return &Registry{self: self} }

// Self is this node.
func (r *Registry) Self() Node { return r.self }

// Nodes lists every live node.
func (r *Registry) Nodes() []Node { return []Node{r.self} }

// Owner is the node hosting the actor of this kind and identity. With one
// member that is this node; the gossip membership places by the same
// identities, so callers need not change when nodes join.
func (r *Registry) Owner(kind, identity string) Node { return r.self }
