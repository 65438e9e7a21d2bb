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
// DescribeCluster name, and which node hosts which actor: both read from
// the membership's advertised view, which is the view the mesh activates
// actors by except while this node leaves (Membership.Advertised).
// Safe for concurrent use; never blocks.
type Registry struct {
	self     Node
	mesh     *Mesh  // nil: a registry of this node alone
	listener string // a Kafka listener's name; empty: node.listen's
}

// NewRegistry is the registry of the mesh's members and placement (nil:
// of self alone).
func NewRegistry(self Node, mesh *Mesh) *Registry {
	return &Registry{self: self, mesh: mesh}
}

// ListenerAddr is the key, in Member.Addrs, of the advertised address of
// the Kafka listener named name.
func ListenerAddr(name string) string { return "kafka/" + name }

// For is the registry as the clients of the named Kafka listener see it:
// every node by its address on the listener of that name, self at
// selfAddr. A node without such a listener is left out, and what it owns
// has no owner there (clients retry), as Kafka leaves out brokers that
// lack the listener a client came in on.
func (r *Registry) For(name, selfAddr string) (*Registry, error) {
	self, err := ParseNode(r.self.ID, selfAddr)
	if err != nil {
		return nil, err
	}
	return &Registry{self: self, mesh: r.mesh, listener: name}, nil
}

// node is m as this registry's clients see it.
func (r *Registry) node(m Member) (Node, error) {
	if r.listener == "" {
		return m.node()
	}
	addr, ok := m.Addrs[ListenerAddr(r.listener)]
	if !ok {
		return Node{}, fmt.Errorf("node %d has no listener %q", m.NodeID, r.listener)
	}
	return ParseNode(m.NodeID, addr)
}

// Self is this node.
func (r *Registry) Self() Node { return r.self }

// Nodes lists the live nodes by id.
func (r *Registry) Nodes() []Node {
	if r.mesh == nil {
		return []Node{r.self}
	}
	ms := r.mesh.Members().Advertised().Members
	out := make([]Node, 0, len(ms))
	for _, m := range ms {
		if n, err := r.node(m); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// Controller is the node Metadata names as the controller: the live node
// with the lowest id, so every node names the same one.
func (r *Registry) Controller() Node {
	if ns := r.Nodes(); len(ns) > 0 {
		return ns[0]
	}
	return r.self
}

// Owner is the node hosting the actor of this kind and identity in the
// current view. In an empty view (a node that has left the cluster and
// knows no other) nobody owns it: node id -1, which matches no node.
func (r *Registry) Owner(kind, identity string) Node {
	if r.mesh == nil {
		return r.self
	}
	if m, ok := r.mesh.AdvertisedOwner(kind, identity); ok {
		if n, err := r.node(m); err == nil {
			return n
		}
	}
	return Node{ID: -1, Host: r.self.Host, Port: r.self.Port}
}
