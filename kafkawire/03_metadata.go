package kafkawire

// Metadata, key 3.
//
// v0-v12. Brokers are meshka nodes, with their advertised addresses and
// stable ids; each partition's leader is the node hosting its partition
// actor, which is also its only replica. Topics, partition counts, topic
// ids, leader epochs, errors and the cluster id are upstream's, served from
// the metadata cache. Topic auto-creation is upstream's decision: the
// client's AllowAutoTopicCreation (implied before v4) is passed on.
// v13 (top-level error code, KIP-1102 rebootstrap) is not handled yet.
//
// While upstream cannot be reached, the answer comes within a few seconds
// anyway: the named topics with LEADER_NOT_AVAILABLE, which clients retry
// and report as the cluster being unavailable, and a request for every
// topic names those meshka has seen.
//
// With ACLs, a request for every topic lists only those the principal may
// DESCRIBE; a named topic it may not DESCRIBE is answered
// TOPIC_AUTHORIZATION_FAILED; and a topic is created on first use only
// for a principal with CREATE on the cluster or the topic (else a topic
// upstream lacks is TOPIC_AUTHORIZATION_FAILED too). Authorized
// operations (v8+) are reported when asked.

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/acl"
	"github.com/meshka/meshka/actors/partition"
	"github.com/meshka/meshka/cluster"
	"github.com/meshka/meshka/upstream"
)

func init() { register(3, 0, 12, handleMetadata) }

func handleMetadata(c *conn, kreq kmsg.Request) func() (kmsg.Response, error) {
	req := kreq.(*kmsg.MetadataRequest)
	return func() (kmsg.Response, error) {
		return c.s.metadata(c, req), nil
	}
}

// metadata answers req for the asking connection c.
func (s *Server) metadata(c *conn, req *kmsg.MetadataRequest) *kmsg.MetadataResponse {
	client, reg := c.ctx, c.registry()
	ctx := client
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	for _, n := range reg.Nodes() {
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port = n.ID, n.Host, n.Port
		resp.Brokers = append(resp.Brokers, b)
	}
	resp.ControllerID = reg.Controller().ID
	// Bounded: while upstream is unreachable the client gets its answer
	// in time, with errors it retries on, rather than a timeout.
	ctx, done := s.upstreamWaitCtx(ctx)
	defer done()
	resp.ClusterID, _ = s.deps.Upstream.Meta().ClusterID(ctx)

	var names []string // nil asks for every topic
	var byID []kmsg.MetadataRequestTopic
	if req.Topics != nil {
		names = make([]string, 0, len(req.Topics))
		for _, t := range req.Topics {
			if t.Topic == nil {
				byID = append(byID, t)
				continue
			}
			names = append(names, *t.Topic)
		}
	}
	if req.Version == 0 && len(req.Topics) == 0 {
		names = nil // v0 asks for every topic with an empty list
	}
	autoCreate := req.Version < 4 || req.AllowAutoTopicCreation
	var refused, describeOnly []string // named, and not to describe; or not to create
	if c.aclOn() && names != nil {
		var ok []string
		ok, refused = split(names, func(n *string) bool { return c.allowedTopic(acl.Describe, *n) })
		if autoCreate && !c.allowedCluster(acl.Create) {
			ok, describeOnly = split(ok, func(n *string) bool { return c.allowedTopic(acl.Create, *n) })
		}
		names = ok
	}
	var topics []*upstream.TopicMeta
	var err error
	if names == nil || len(names) > 0 {
		topics, err = s.deps.Upstream.Meta().Topics(ctx, names, autoCreate)
	}
	if err == nil && len(describeOnly) > 0 {
		var more []*upstream.TopicMeta
		more, err = s.deps.Upstream.Meta().Topics(ctx, describeOnly, false)
		topics = append(topics, more...)
		names = append(names, describeOnly...)
	}
	if err != nil {
		if client.Err() == nil {
			s.upstreamTrouble("Metadata", err)
		}
		if names == nil {
			// Every topic was asked for: name the ones meshka has
			// seen, each unavailable, rather than an empty cluster.
			names = s.deps.Upstream.Meta().KnownTopics()
			names = slices.DeleteFunc(names, func(n string) bool { return !c.allowedTopic(acl.Describe, n) })
		}
		topics = nil
		for _, n := range names {
			rt := kmsg.NewMetadataResponseTopic()
			rt.Topic = kmsg.StringPtr(n)
			rt.ErrorCode = kerr.LeaderNotAvailable.Code
			resp.Topics = append(resp.Topics, rt)
		}
	}
	all := req.Topics == nil || req.Version == 0 && len(req.Topics) == 0
	for _, t := range topics {
		if all && !c.allowedTopic(acl.Describe, t.Name) {
			continue // listed only to those who may describe it
		}
		rt := s.metadataTopic(reg, t)
		if c.aclOn() && slices.Contains(describeOnly, t.Name) && t.Err == kerr.UnknownTopicOrPartition.Code {
			rt.ErrorCode = topicRefused // it would have been created, but not for this principal
		}
		if req.IncludeTopicAuthorizedOperations && c.aclOn() {
			rt.AuthorizedOperations = c.authorizedOps(acl.Topic, t.Name)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	for _, n := range refused {
		rt := kmsg.NewMetadataResponseTopic()
		rt.Topic = kmsg.StringPtr(n)
		rt.ErrorCode = topicRefused
		resp.Topics = append(resp.Topics, rt)
	}
	if req.IncludeClusterAuthorizedOperations && c.aclOn() {
		resp.AuthorizedOperations = c.authorizedOps(acl.Cluster, acl.ClusterName)
	}
	for _, t := range byID {
		rt := kmsg.NewMetadataResponseTopic()
		rt.TopicID = t.TopicID
		rt.ErrorCode = kerr.UnknownTopicID.Code
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

func (s *Server) metadataTopic(reg *cluster.Registry, t *upstream.TopicMeta) kmsg.MetadataResponseTopic {
	rt := kmsg.NewMetadataResponseTopic()
	rt.Topic = kmsg.StringPtr(t.Name)
	rt.TopicID = t.ID
	rt.IsInternal = t.Internal
	rt.ErrorCode = t.Err
	for _, p := range t.Partitions {
		rp := kmsg.NewMetadataResponseTopicPartition()
		rp.Partition = p.Partition
		rp.ErrorCode = p.Err
		rp.LeaderEpoch = p.LeaderEpoch
		rp.Leader = -1
		if p.Leader >= 0 {
			owner := reg.Owner(partition.Kind, s.partitionID(t.Name, p.Partition))
			if owner.ID >= 0 {
				rp.Leader = owner.ID
				rp.Replicas = []int32{owner.ID}
				rp.ISR = []int32{owner.ID}
			} else if rp.ErrorCode == 0 {
				rp.ErrorCode = kerr.LeaderNotAvailable.Code // no live node: this one has left
			}
		}
		rt.Partitions = append(rt.Partitions, rp)
	}
	return rt
}
