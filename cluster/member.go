package cluster

import (
	"encoding/json"
	"fmt"
	"sort"
	"sync"
)

// Member is a live meshka node as the membership knows it.
type Member struct {
	// Name is memberlist's name for the node: its node id and a random
	// suffix, new at every start, so a restarted node is a new member.
	Name string `json:"-"`
	// Gossip is the node's memberlist address, as its peers reach it.
	Gossip string `json:"-"`

	Cluster string `json:"c"`
	NodeID  int32  `json:"id"`
	// Kafka is the advertised host:port Kafka clients are told.
	Kafka string `json:"k"`
	// Remote is the actor remoting host:port, for messages between nodes.
	Remote string `json:"r,omitempty"`
	// Started is when this start of the node began (Unix nanoseconds):
	// of two entries with one node id at one address, the later wins.
	Started int64 `json:"t"`
	// Addrs holds the advertised addresses of the node's other listeners
	// (MQTT, HTTP, …) by protocol.
	Addrs map[string]string `json:"a,omitempty"`

	broker Node // Kafka, parsed
}

// metaMax is memberlist's bound on node metadata (memberlist.MetaMaxSize).
const metaMax = 512

func (m Member) encode() ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if len(b) > metaMax {
		return nil, fmt.Errorf("cluster: node metadata is %d bytes, more than memberlist's %d (addresses too long?)", len(b), metaMax)
	}
	return b, nil
}

// node is the member as Kafka clients see it.
func (m Member) node() (Node, error) {
	if m.broker.Host == "" && m.broker.Port == 0 {
		return ParseNode(m.NodeID, m.Kafka)
	}
	return m.broker, nil
}

func decodeMember(name, gossip string, meta []byte) (Member, error) {
	var m Member
	if err := json.Unmarshal(meta, &m); err != nil {
		return Member{}, fmt.Errorf("node %s at %s sent metadata meshka cannot read (not a meshka node?): %v", name, gossip, err)
	}
	m.Name, m.Gossip = name, gossip
	var err error
	if m.broker, err = ParseNode(m.NodeID, m.Kafka); err != nil {
		return Member{}, fmt.Errorf("node %s at %s: %v", name, gossip, err)
	}
	return m, nil
}

// View is one moment's live membership, sorted by node id, shared
// read-only by everything that places or names nodes.
type View struct {
	Members []Member
	// Version grows with every change the membership saw.
	Version uint64

	ranks sync.Map // a spread set's key → its members ranked (placement.go)
}

func newView(members []Member, version uint64) *View {
	ms := append([]Member(nil), members...)
	sort.Slice(ms, func(i, j int) bool { return ms[i].NodeID < ms[j].NodeID })
	return &View{Members: ms, Version: version}
}

// ByID finds the member with node id id.
func (v *View) ByID(id int32) (Member, bool) {
	i := sort.Search(len(v.Members), func(i int) bool { return v.Members[i].NodeID >= id })
	if i < len(v.Members) && v.Members[i].NodeID == id {
		return v.Members[i], true
	}
	return Member{}, false
}
