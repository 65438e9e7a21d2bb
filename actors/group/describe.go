package group

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Describe is the group as DescribeGroups shows it. As in Kafka, the
// protocol, member metadata and assignments are shown only when Stable:
// in other states they belong to a generation being replaced.
func (g *Group) Describe() kmsg.DescribeGroupsResponseGroup {
	d := kmsg.NewDescribeGroupsResponseGroup()
	d.Group = g.id
	d.State = g.state.String()
	if g.state == Dead {
		return d
	}
	d.ProtocolType = g.protocolType
	stable := g.state == Stable
	if stable {
		d.Protocol = g.protocol
	}
	for _, m := range g.sortedMembers() {
		dm := kmsg.NewDescribeGroupsResponseGroupMember()
		dm.MemberID, dm.InstanceID = m.id, m.instanceID
		dm.ClientID, dm.ClientHost = m.clientID, m.clientHost
		if stable {
			dm.ProtocolMetadata, _ = m.metadata(g.protocol)
			dm.MemberAssignment = m.assignment
		}
		d.Members = append(d.Members, dm)
	}
	return d
}

// Summary is the group as ListGroups shows it.
func (g *Group) Summary() GroupSummary {
	s := GroupSummary{Group: g.id, State: g.state.String()}
	if g.state != Dead {
		s.ProtocolType = g.protocolType
	}
	return s
}

// CheckOffsetDelete answers OffsetDelete per topic. An Empty group's
// offsets may all go. While the group has members, a consumer group keeps
// the offsets of topics its members subscribe to, and any other protocol
// keeps them all: the group cannot tell what its members consume.
func (g *Group) CheckOffsetDelete(topics []string) map[string]int16 {
	res := make(map[string]int16, len(topics))
	for _, t := range topics {
		res[t] = 0
	}
	if g.state == Empty || g.state == Dead {
		return res
	}
	if g.protocolType != "consumer" {
		for _, t := range topics {
			res[t] = kerr.NonEmptyGroup.Code
		}
		return res
	}
	subscribed, known := g.subscriptions()
	for _, t := range topics {
		if !known || subscribed[t] {
			res[t] = kerr.GroupSubscribedToTopic.Code
		}
	}
	return res
}

// subscriptions is the union of the members' consumer-protocol topics,
// read from the metadata of the chosen protocol (or of every protocol a
// member offers, before one is chosen for it). known is false when some
// metadata does not parse.
func (g *Group) subscriptions() (topics map[string]bool, known bool) {
	topics = make(map[string]bool)
	for _, m := range g.members {
		metas := make([][]byte, 0, len(m.protocols))
		if meta, ok := m.metadata(g.protocol); ok && g.protocol != "" {
			metas = append(metas, meta)
		} else {
			for _, p := range m.protocols {
				metas = append(metas, p.Metadata)
			}
		}
		for _, meta := range metas {
			var cm kmsg.ConsumerMemberMetadata
			if err := cm.ReadFrom(meta); err != nil {
				return nil, false
			}
			for _, t := range cm.Topics {
				topics[t] = true
			}
		}
	}
	return topics, true
}
