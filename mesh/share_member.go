package mesh

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"google.golang.org/protobuf/proto"

	"github.com/meshka/meshka/actors/group"
	"github.com/meshka/meshka/cluster"
)

// The member's loop speaks the classic group protocol with the share's
// group actor, wherever it is, through the mesh: JoinGroup, SyncGroup
// (the leader assigns with one of kgo's balancers), Heartbeat, LeaveGroup,
// as a Kafka consumer does. Offsets go upstream as the Kafka edge's
// commits do: the group actor checks generation and member, then upstream
// stores a standalone commit under the group id.

// Group request versions the member speaks to the group actor, which
// takes any version kmsg knows.
const (
	joinVersion      = 9
	syncVersion      = 5
	heartbeatVersion = 4
	leaveVersion     = 5
)

// errRejoin says the member must join again: a rebalance began, or the
// group forgot it.
var errRejoin = errors.New("mesh: share: rejoin")

// leaveTimeout bounds the last commit and the leave at Close.
const leaveTimeout = 5 * time.Second

// member is the loop's own state.
type member struct {
	id         string
	generation int32
	assigned   map[string][]int32 // the last assignment, for sticky metadata
}

func (s *Share) run(ctx context.Context) {
	defer close(s.stopped)
	var mb member
	wait := retryWait
	for ctx.Err() == nil {
		g, err := s.joinAndSync(ctx, &mb)
		if err != nil {
			if fatal(err) {
				s.m.log.Warn("share member gives up", "group", s.o.Group, "err", err)
				s.end(fmt.Errorf("mesh: share %q: %w", s.o.Group, err))
				break
			}
			if !errors.Is(err, errRejoin) {
				s.m.log.Debug("share member rejoins", "group", s.o.Group, "err", err)
				pause(ctx, wait)
				wait = min(2*wait, time.Second)
			}
			continue
		}
		wait = retryWait
		if err := s.serve(ctx, &mb, g); err != nil {
			s.end(fmt.Errorf("mesh: share %q: %w", s.o.Group, err))
			break
		}
	}
	if mb.id != "" {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), leaveTimeout)
		s.leave(lctx, &mb)
		cancel()
	}
}

// joinAndSync joins the group and takes this member's assignment.
func (s *Share) joinAndSync(ctx context.Context, mb *member) (*shareGen, error) {
	var join *kmsg.JoinGroupResponse
	for {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Version = joinVersion
		req.Group, req.MemberID, req.ProtocolType = s.o.Group, mb.id, "consumer"
		req.SessionTimeoutMillis = int32(s.o.SessionTimeout.Milliseconds())
		req.RebalanceTimeoutMillis = int32(s.o.RebalanceTimeout.Milliseconds())
		for _, b := range balancers() {
			p := kmsg.NewJoinGroupRequestProtocol()
			p.Name, p.Metadata = b.ProtocolName(), b.JoinGroupMetadata(s.o.Topics, mb.assigned, mb.generation)
			req.Protocols = append(req.Protocols, p)
		}
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		wait := s.o.RebalanceTimeout + s.o.SessionTimeout
		if err := s.ask(ctx, group.NewJoin(req, s.o.ClientID, s.m.cluster.Members().Name()), resp, wait); err != nil {
			return nil, err
		}
		switch err := kerr.ErrorForCode(resp.ErrorCode); {
		case err == nil:
		case errors.Is(err, kerr.MemberIDRequired):
			mb.id = resp.MemberID
			continue
		case errors.Is(err, kerr.UnknownMemberID):
			mb.id = ""
			return nil, errRejoin
		default:
			return nil, err
		}
		join = resp
		break
	}
	mb.id, mb.generation = join.MemberID, join.Generation
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Version = syncVersion
	sync.Group, sync.Generation, sync.MemberID = s.o.Group, join.Generation, mb.id
	sync.ProtocolType, sync.Protocol = join.ProtocolType, join.Protocol
	bal := balancerNamed(join.Protocol)
	if bal == nil {
		return nil, fmt.Errorf("%w: the group chose %v", kerr.InconsistentGroupProtocol, join.Protocol)
	}
	if join.LeaderID == mb.id {
		plan, err := s.balance(ctx, bal, join)
		if err != nil {
			return nil, err
		}
		sync.GroupAssignment = plan
	}
	resp := sync.ResponseKind().(*kmsg.SyncGroupResponse)
	if err := s.ask(ctx, group.NewSync(sync), resp, s.o.RebalanceTimeout+s.o.SessionTimeout); err != nil {
		return nil, err
	}
	switch err := kerr.ErrorForCode(resp.ErrorCode); {
	case err == nil:
	case errors.Is(err, kerr.RebalanceInProgress), errors.Is(err, kerr.IllegalGeneration):
		return nil, errRejoin
	case errors.Is(err, kerr.UnknownMemberID):
		mb.id = ""
		return nil, errRejoin
	default:
		return nil, err
	}
	assigned := map[string][]int32{}
	if len(resp.MemberAssignment) > 0 {
		all, err := bal.ParseSyncAssignment(resp.MemberAssignment)
		if err != nil {
			return nil, fmt.Errorf("the assignment does not decode: %w", err)
		}
		for _, t := range s.o.Topics {
			if ps := all[t]; len(ps) > 0 {
				assigned[t] = slices.Sorted(slices.Values(ps))
			}
		}
	}
	mb.assigned = assigned
	return &shareGen{id: join.Generation, assigned: assigned, ch: make(chan Record, s.o.Queue),
		positions: map[topicPartition]int64{}, committed: map[topicPartition]int64{}}, nil
}

// fatal says whether a member cannot go on after err: the group refuses
// it for good (its protocol or session timeout, the group full, not
// authorised). Anything else passes once the group or its node settles.
func fatal(err error) bool {
	for _, e := range []error{kerr.InconsistentGroupProtocol, kerr.InvalidSessionTimeout, kerr.GroupMaxSizeReached,
		kerr.InvalidGroupID, kerr.GroupAuthorizationFailed, kerr.UnsupportedVersion, kerr.InvalidRequest} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func balancerNamed(name *string) kgo.GroupBalancer {
	for _, b := range balancers() {
		if name != nil && b.ProtocolName() == *name {
			return b
		}
	}
	return nil
}

// balance is the leader's assignment of the topics the members read.
func (s *Share) balance(ctx context.Context, bal kgo.GroupBalancer, join *kmsg.JoinGroupResponse) ([]kmsg.SyncGroupRequestGroupAssignment, error) {
	members := slices.Clone(join.Members)
	slices.SortFunc(members, func(a, b kmsg.JoinGroupResponseMember) int {
		ai, bi := a.InstanceID != nil, b.InstanceID != nil
		switch {
		case ai && bi:
			if c := strings.Compare(*a.InstanceID, *b.InstanceID); c != 0 {
				return c
			}
		case ai:
			return -1
		case bi:
			return 1
		}
		return strings.Compare(a.MemberID, b.MemberID)
	})
	mbal, topics, err := bal.MemberBalancer(members)
	if err != nil {
		return nil, fmt.Errorf("the members' metadata: %w", err)
	}
	counts := make(map[string]int32, len(topics))
	for t := range topics {
		n, err := s.m.Partitions(ctx, t)
		if err != nil {
			if errors.Is(err, kerr.UnknownTopicOrPartition) {
				continue // a topic that does not exist is assigned to no one
			}
			return nil, err
		}
		counts[t] = n
	}
	if withInfo, ok := mbal.(kgo.GroupMemberBalancerInfo); ok {
		withInfo.SetBalanceInfo(kgo.BalanceInfo{Group: s.o.Group, Generation: join.Generation, LeaderID: join.LeaderID,
			Topics:  func() map[string]kgo.TopicMetadata { return map[string]kgo.TopicMetadata{} },
			Brokers: func() map[int32]kgo.BrokerMetadata { return map[int32]kgo.BrokerMetadata{} }})
	}
	if orErr, ok := mbal.(kgo.GroupMemberBalancerOrError); ok {
		plan, err := orErr.BalanceOrError(counts)
		if err != nil {
			return nil, fmt.Errorf("assigning: %w", err)
		}
		return plan.IntoSyncAssignment(), nil
	}
	return mbal.Balance(counts).IntoSyncAssignment(), nil
}

// serve runs one generation: it starts the member's subscriptions,
// heartbeats, and commits, until a rebalance, the group forgetting the
// member, or Close; then it stops delivering and commits (when the
// generation is still the group's). An error ends the share.
func (s *Share) serve(ctx context.Context, mb *member, g *shareGen) error {
	s.setGen(g)
	beat := time.NewTicker(s.o.HeartbeatInterval)
	defer beat.Stop()
	var commitC <-chan time.Time
	if s.o.CommitInterval > 0 {
		t := time.NewTicker(s.o.CommitInterval)
		defer t.Stop()
		commitC = t.C
	}
	lastBeat := time.Now()
	for {
		if !g.started {
			if err := s.start(ctx, g, mb); err != nil && ctx.Err() == nil {
				s.m.log.Warn("share member cannot start its partitions yet", "group", s.o.Group, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			s.revoke(ctx, mb, g, true)
			return nil
		case <-beat.C:
			if err := failed(g); err != nil {
				s.revoke(ctx, mb, g, true)
				return err
			}
			code, err := s.heartbeat(ctx, mb)
			if err != nil || code == kerr.NotCoordinator.Code || code == kerr.CoordinatorNotAvailable.Code {
				if time.Since(lastBeat) < s.o.SessionTimeout {
					continue
				}
				// The group has surely evicted the member by now.
				s.revoke(ctx, mb, g, false)
				return nil
			}
			lastBeat = time.Now()
			switch code {
			case 0:
			case kerr.RebalanceInProgress.Code:
				s.revoke(ctx, mb, g, true)
				return nil
			case kerr.UnknownMemberID.Code:
				mb.id = ""
				s.revoke(ctx, mb, g, false)
				return nil
			default: // ILLEGAL_GENERATION, FENCED_INSTANCE_ID
				s.revoke(ctx, mb, g, false)
				return nil
			}
		case <-commitC:
			if err := s.commit(ctx, mb, g, s.positions(g)); err != nil && ctx.Err() == nil {
				s.m.log.Warn("share commit failed", "group", s.o.Group, "err", err)
			}
		case ask := <-s.commits:
			ask <- s.commit(ctx, mb, g, s.positions(g))
		}
	}
}

// failed is the error a subscription of g ended with, other than being
// closed: the share cannot go on without the partition.
func failed(g *shareGen) error {
	for _, sub := range g.subs {
		if sub.ended() && !errors.Is(sub.err, ErrClosed) {
			return sub.err
		}
	}
	return nil
}

func (s *Share) positions(g *shareGen) map[topicPartition]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(g.positions)
}

// start reads the committed offsets of g's partitions and subscribes to
// them. A partition that has none starts where it ended when Share was
// called (with Start Latest), else (or when the log no longer holds that
// offset) at the share's Start; that offset is committed at once, so a
// rebalance before the first record does not move its start.
func (s *Share) start(ctx context.Context, g *shareGen, mb *member) error {
	committed, err := s.fetchOffsets(ctx, g.assigned)
	if err != nil {
		return err
	}
	starts := map[topicPartition]int64{}
	for t, ps := range g.assigned {
		for _, p := range ps {
			k := topicPartition{t, p}
			off, ok := committed[k]
			isCommitted := ok && off >= 0
			if !isCommitted {
				off, ok = s.ends[k]
			}
			if ok && off >= 0 {
				first, err := s.m.up.OffsetAt(ctx, t, p, Earliest().at)
				if err != nil {
					return fmt.Errorf("%s/%d: %w", t, p, err)
				}
				if off >= first {
					starts[k] = off
					if isCommitted {
						g.committed[k] = off
					}
					continue
				}
			}
			if off, err = s.m.offsetAt(ctx, t, p, s.o.Start.at); err != nil {
				return err
			}
			starts[k] = off
		}
	}
	var subs []*Subscription
	for _, t := range slices.Sorted(maps.Keys(g.assigned)) {
		offsets := map[int32]int64{}
		for _, p := range g.assigned[t] {
			offsets[p] = starts[topicPartition{t, p}]
		}
		sub, err := s.m.subscribe(ctx, SubscribeOptions{Topic: t, Partitions: g.assigned[t], Start: AtOffsets(offsets),
			Filter: s.o.Filter, Queue: s.o.Queue}, g.ch)
		if err != nil {
			for _, sub := range subs {
				sub.Close()
			}
			return err
		}
		subs = append(subs, sub)
	}
	s.mu.Lock()
	for k, off := range starts {
		g.positions[k] = off
	}
	s.mu.Unlock()
	g.subs, g.started = subs, true
	return s.commit(ctx, mb, g, starts)
}

// revoke stops g delivering, and commits what it did when commit is set.
func (s *Share) revoke(ctx context.Context, mb *member, g *shareGen, commit bool) {
	_, positions := s.setGen(nil)
	for _, sub := range g.subs {
		sub.Close()
	}
	if !commit || !g.started {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), leaveTimeout)
	defer cancel()
	if err := s.commit(cctx, mb, g, positions); err != nil {
		s.m.log.Warn("share commit at rebalance failed", "group", s.o.Group, "err", err)
	}
}

// commit stores the positions that moved since the last commit, once
// the group actor has checked that the member is in the generation.
func (s *Share) commit(ctx context.Context, mb *member, g *shareGen, positions map[topicPartition]int64) error {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = s.m.upstreamVersion(req.Key(), 8)
	req.Group, req.Generation, req.MemberID = s.o.Group, -1, ""
	byTopic := map[string]*kmsg.OffsetCommitRequestTopic{}
	for k, off := range positions {
		if c, ok := g.committed[k]; ok && c == off {
			continue
		}
		t := byTopic[k.topic]
		if t == nil {
			nt := kmsg.NewOffsetCommitRequestTopic()
			nt.Topic = k.topic
			t = &nt
			byTopic[k.topic] = t
		}
		p := kmsg.NewOffsetCommitRequestTopicPartition()
		p.Partition, p.Offset, p.LeaderEpoch = k.partition, off, -1
		t.Partitions = append(t.Partitions, p)
	}
	if len(byTopic) == 0 {
		return nil
	}
	for _, t := range byTopic {
		req.Topics = append(req.Topics, *t)
	}
	check := &group.CheckCommitRequest{Generation: g.id, MemberId: mb.id}
	answer, err := s.request(ctx, check, 30*time.Second)
	if err != nil {
		return err
	}
	checked, ok := answer.(*group.CheckCommitResponse)
	if !ok {
		return fmt.Errorf("the group answered a commit check with a %T", answer)
	}
	if err := kerr.ErrorForCode(int16(checked.ErrorCode)); err != nil {
		return err
	}
	kresp, err := s.m.up.Forward(ctx, req)
	if err != nil {
		return err
	}
	resp := kresp.(*kmsg.OffsetCommitResponse)
	var errs []error
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				errs = append(errs, fmt.Errorf("%s/%d: %w", t.Topic, p.Partition, err))
				continue
			}
			k := topicPartition{t.Topic, p.Partition}
			g.committed[k] = positions[k]
		}
	}
	return errors.Join(errs...)
}

// fetchOffsets is what the group has committed upstream for assigned;
// -1 where nothing is.
func (s *Share) fetchOffsets(ctx context.Context, assigned map[string][]int32) (map[topicPartition]int64, error) {
	return s.m.groupOffsets(ctx, s.o.Group, assigned)
}

// GroupOffsets is what consumer group has committed upstream for the
// given partitions of each topic: the offset the group reads on from, -1
// where it has committed nothing.
func (m *Mesh) GroupOffsets(ctx context.Context, group string, partitions map[string][]int32) (map[string]map[int32]int64, error) {
	got, err := m.groupOffsets(ctx, group, partitions)
	if err != nil {
		return nil, fmt.Errorf("mesh: offsets of group %q: %w", group, err)
	}
	out := map[string]map[int32]int64{}
	for t, ps := range partitions {
		out[t] = map[int32]int64{}
		for _, p := range ps {
			off, ok := got[topicPartition{t, p}]
			if !ok {
				off = -1
			}
			out[t][p] = off
		}
	}
	return out, nil
}

func (m *Mesh) groupOffsets(ctx context.Context, group string, assigned map[string][]int32) (map[topicPartition]int64, error) {
	out := map[topicPartition]int64{}
	if len(assigned) == 0 {
		return out, nil
	}
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = m.upstreamVersion(req.Key(), 7)
	req.Group = group
	for t, ps := range assigned {
		rt := kmsg.NewOffsetFetchRequestTopic()
		rt.Topic, rt.Partitions = t, slices.Clone(ps)
		req.Topics = append(req.Topics, rt)
	}
	kresp, err := m.up.Forward(ctx, req)
	if err != nil {
		return nil, err
	}
	resp := kresp.(*kmsg.OffsetFetchResponse)
	switch err := kerr.ErrorForCode(resp.ErrorCode); {
	case errors.Is(err, kerr.GroupIDNotFound):
		return out, nil // nothing committed yet
	case err != nil:
		return nil, err
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, fmt.Errorf("%s/%d: %w", t.Topic, p.Partition, err)
			}
			out[topicPartition{t.Topic, p.Partition}] = p.Offset
		}
	}
	return out, nil
}

func (s *Share) heartbeat(ctx context.Context, mb *member) (int16, error) {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version = heartbeatVersion
	req.Group, req.Generation, req.MemberID = s.o.Group, mb.generation, mb.id
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	if err := s.ask(ctx, group.NewHeartbeat(req), resp, s.o.SessionTimeout); err != nil {
		return 0, err
	}
	return resp.ErrorCode, nil
}

func (s *Share) leave(ctx context.Context, mb *member) {
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Version = leaveVersion
	req.Group = s.o.Group
	lm := kmsg.NewLeaveGroupRequestMember()
	lm.MemberID = mb.id
	reason := "the share member closed"
	lm.Reason = &reason
	req.Members = append(req.Members, lm)
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	if err := s.ask(ctx, group.NewLeave(req), resp, leaveTimeout); err != nil {
		s.m.log.Debug("share member could not leave; its session will expire", "group", s.o.Group, "err", err)
	}
}

// ask sends msg to the group's actor and reads the Kafka response it
// answers with into resp, waiting up to d.
func (s *Share) ask(ctx context.Context, msg proto.Message, resp kmsg.Response, d time.Duration) error {
	answer, err := s.request(ctx, msg, d)
	if err != nil {
		return err
	}
	kr, ok := answer.(group.KafkaResponse)
	if !ok {
		return fmt.Errorf("the group answered with a %T", answer)
	}
	return group.DecodeResponse(resp, kr)
}

// request asks the group's actor, wherever it is. When it cannot be
// reached (moving, its node gone), the error is a retriable Kafka one.
func (s *Share) request(ctx context.Context, msg proto.Message, d time.Duration) (any, error) {
	rctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	answer, err := s.m.cluster.Request(rctx, group.Kind, s.identity, msg)
	if err != nil {
		if errors.Is(err, cluster.ErrNotOwner) {
			return nil, fmt.Errorf("%w: %w", kerr.NotCoordinator, err)
		}
		return nil, fmt.Errorf("%w: %w", kerr.CoordinatorNotAvailable, err)
	}
	return answer, nil
}
