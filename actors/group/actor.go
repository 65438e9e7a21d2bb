package group

import (
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/cluster"
)

// Props builds the actor props for the group kind.
func Props(cfg Config) *actor.Props {
	cfg = cfg.withDefaults()
	return actor.PropsFromProducer(func() actor.Actor { return &Actor{cfg: cfg, log: cfg.Logger} },
		actor.WithMailbox(cluster.Mailbox(4096)))
}

// undecodableCode answers a request whose bytes do not decode. They came
// from a meshka node, which had decoded the client's request itself, so
// the fault is between nodes (a corrupted message, or nodes of meshka
// versions that encode a Kafka version differently), not the client's:
// INVALID_REQUEST would make it give up, and COORDINATOR_NOT_AVAILABLE
// makes it look the coordinator up and ask again, which works once the
// nodes agree.
var undecodableCode = kerr.CoordinatorNotAvailable.Code

// Actor adapts actor messages to the Group state machine and keeps the one
// timer that wakes it at the group's next deadline. It decodes each
// request once, on arrival; the group keeps a parked request's sender (a
// PID, on this node or another) and the reply goes there when it comes.
type Actor struct {
	cfg   Config
	group *Group
	log   *slog.Logger

	self     *actor.PID
	root     *actor.RootContext
	timer    func() bool // stops the timer; nil when none is set
	timerAt  time.Time
	timerSeq uint64 // tells the current timer's tick from one a stopped timer sent
}

// Receive handles one message; protoactor calls it from one goroutine at a
// time.
func (a *Actor) Receive(c actor.Context) {
	msg := c.Message()
	switch m := msg.(type) {
	case *cluster.Activate:
		a.init(c, m.Identity)
		return
	case *actor.Stopping:
		a.stop()
		return
	case *cluster.Relinquish:
		// Another node coordinates the group now; its members rejoin
		// there (stop answers what waits here NOT_COORDINATOR).
		c.Stop(c.Self())
		return
	}
	kreq, err := kafkaRequest(msg)
	if err != nil {
		a.log.Warn("undecodable group request", "err", err)
		c.Respond(answerOf(errorResponse(kreq, undecodableCode)))
		return
	}
	if a.group == nil {
		a.refuse(c, msg, kreq)
		return
	}
	before, gen := a.group.State(), a.group.Generation()
	now := a.cfg.Now()
	switch m := msg.(type) {
	case *JoinRequest:
		a.deliver(a.group.Join(now, kreq.(*kmsg.JoinGroupRequest), m.ClientId, m.ClientHost, c.Sender()))
	case *SyncRequest:
		a.deliver(a.group.Sync(now, kreq.(*kmsg.SyncGroupRequest), c.Sender()))
	case *HeartbeatRequest:
		a.deliver(a.group.Heartbeat(now, kreq.(*kmsg.HeartbeatRequest), c.Sender()))
	case *LeaveRequest:
		a.deliver(a.group.Leave(now, kreq.(*kmsg.LeaveGroupRequest), c.Sender()))
	case *CheckCommitRequest:
		code := a.group.CheckCommit(now, m.Generation, m.MemberId, m.InstanceId, m.Transactional)
		c.Respond(&CheckCommitResponse{ErrorCode: int32(code)})
	case *CheckOffsetDeleteRequest:
		codes := a.group.CheckOffsetDelete(m.Topics)
		resp := &CheckOffsetDeleteResponse{ErrorCodes: make(map[string]int32, len(codes))}
		for t, code := range codes {
			resp.ErrorCodes[t] = int32(code)
		}
		c.Respond(resp)
	case *DescribeRequest:
		c.Respond(answerOf(describeResponse(kreq.(*kmsg.DescribeGroupsRequest), a.group.Describe())))
	case *DeleteRequest:
		c.Respond(&DeleteResponse{ErrorCode: int32(a.group.Delete())})
	case *SummaryRequest:
		s := a.group.Summary()
		c.Respond(&SummaryResponse{Group: s.Group, State: s.State, ProtocolType: s.ProtocolType})
	case *tick:
		if m.seq == a.timerSeq {
			a.timer, a.timerAt = nil, time.Time{}
		}
		a.deliver(a.group.Tick(now))
	default:
		return
	}
	if s := a.group.State(); s != before || a.group.Generation() != gen {
		a.log.Debug("group state", "state", s.String(), "generation", a.group.Generation())
	}
	a.schedule(now)
}

func (a *Actor) init(c actor.Context, identity string) {
	_, groupID, err := ParseIdentity(identity)
	if err != nil {
		a.cfg.Logger.Error("group actor with a bad identity", "identity", identity, "err", err)
		c.Stop(c.Self())
		return
	}
	a.group = NewGroup(groupID, a.cfg)
	a.log = a.cfg.Logger.With("group", groupID)
	a.self, a.root = c.Self(), c.ActorSystem().Root
}

// schedule points the timer at the group's next deadline, replacing it
// only when the deadline moved. A tick from a timer stopped too late finds
// nothing due, so it is harmless.
func (a *Actor) schedule(now time.Time) {
	at, ok := a.group.NextDeadline()
	if a.timer != nil && ok && at.Equal(a.timerAt) {
		return
	}
	if a.timer != nil {
		a.timer()
		a.timer, a.timerAt = nil, time.Time{}
	}
	if !ok {
		return
	}
	a.timerSeq++
	root, self, t := a.root, a.self, &tick{seq: a.timerSeq}
	a.timer = a.cfg.AfterFunc(max(at.Sub(now), 0), func() { root.Send(self, t) })
	a.timerAt = at
}

// deliver sends each reply to the sender of the request it answers,
// through the root context, which any goroutine may use (stop runs while
// the actor stops). A send never waits: to a PID on this node it is a
// mailbox push, or a dead letter when the asker has given up; to another
// node it is queued for remoting, which drops what it cannot send. So a
// reply that cannot be delivered never blocks the group.
func (a *Actor) deliver(replies []Reply) {
	for _, r := range replies {
		to, _ := r.To.(*actor.PID)
		msg := answerOf(r.Resp)
		if to == nil || msg == nil {
			a.log.Error("group reply not delivered", "to", r.To, "response", kmsg.NameForKey(r.Resp.Key()))
			continue
		}
		a.root.Send(to, msg)
	}
}

// refuse answers a request that came before the actor knew its group
// (kreq is what it carries, decoded).
func (a *Actor) refuse(c actor.Context, msg any, kreq kmsg.Request) {
	code := kerr.CoordinatorNotAvailable.Code
	switch m := msg.(type) {
	case *JoinRequest, *SyncRequest, *HeartbeatRequest, *LeaveRequest, *DescribeRequest:
		c.Respond(answerOf(errorResponse(kreq, code)))
	case *CheckCommitRequest:
		c.Respond(&CheckCommitResponse{ErrorCode: int32(code)})
	case *CheckOffsetDeleteRequest:
		resp := &CheckOffsetDeleteResponse{ErrorCodes: make(map[string]int32, len(m.Topics))}
		for _, t := range m.Topics {
			resp.ErrorCodes[t] = int32(code)
		}
		c.Respond(resp)
	case *DeleteRequest:
		c.Respond(&DeleteResponse{ErrorCode: int32(code)})
	case *SummaryRequest:
		c.Respond(&SummaryResponse{State: Dead.String()})
	}
}

func (a *Actor) stop() {
	if a.timer != nil {
		a.timer()
		a.timer = nil
	}
	if a.group != nil {
		a.deliver(a.group.Shutdown())
	}
}
