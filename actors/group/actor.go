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
	return actor.PropsFromProducer(func() actor.Actor { return &Actor{cfg: cfg} },
		actor.WithMailbox(actor.Bounded(4096)))
}

// Actor adapts actor messages to the Group state machine and keeps the one
// timer that wakes it at the group's next deadline.
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
	switch m := c.Message().(type) {
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
	if a.group == nil {
		a.refuse(c.Message())
		return
	}
	before, gen := a.group.State(), a.group.Generation()
	now := a.cfg.Now()
	switch m := c.Message().(type) {
	case *Join:
		a.deliver(a.group.Join(now, m.Req, m.ClientID, m.ClientHost, m.Reply))
	case *Sync:
		a.deliver(a.group.Sync(now, m.Req, m.Reply))
	case *Heartbeat:
		a.deliver(a.group.Heartbeat(now, m.Req, m.Reply))
	case *Leave:
		a.deliver(a.group.Leave(now, m.Req, m.Reply))
	case *CheckCommit:
		trySend(m.Reply, a.group.CheckCommit(now, m.Generation, m.MemberID, m.InstanceID, m.Transactional))
	case *CheckOffsetDelete:
		trySend(m.Reply, a.group.CheckOffsetDelete(m.Topics))
	case *Describe:
		trySend(m.Reply, a.group.Describe())
	case *Delete:
		trySend(m.Reply, a.group.Delete())
	case *Summary:
		trySend(m.Reply, a.group.Summary())
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

// deliver hands each reply to its channel. Each channel has room for its
// one reply; a full one means a reply already went there, which must not
// block the group.
func (a *Actor) deliver(replies []Reply) {
	for _, r := range replies {
		sent := false
		switch to := r.To.(type) {
		case chan<- *kmsg.JoinGroupResponse:
			sent = trySend(to, r.Resp.(*kmsg.JoinGroupResponse))
		case chan<- *kmsg.SyncGroupResponse:
			sent = trySend(to, r.Resp.(*kmsg.SyncGroupResponse))
		case chan<- *kmsg.HeartbeatResponse:
			sent = trySend(to, r.Resp.(*kmsg.HeartbeatResponse))
		case chan<- *kmsg.LeaveGroupResponse:
			sent = trySend(to, r.Resp.(*kmsg.LeaveGroupResponse))
		}
		if !sent {
			a.log.Error("group reply not delivered", "to", r.To, "response", r.Resp.Key())
		}
	}
}

func trySend[T any](ch chan<- T, v T) bool {
	if ch == nil {
		return false
	}
	select {
	case ch <- v:
		return true
	default:
		return false
	}
}

// refuse answers a request that came before the actor knew its group.
func (a *Actor) refuse(msg any) {
	code := kerr.CoordinatorNotAvailable.Code
	switch m := msg.(type) {
	case *Join:
		trySend(m.Reply, joinError(m.Req, code, m.Req.MemberID))
	case *Sync:
		trySend(m.Reply, syncError(m.Req, code))
	case *Heartbeat:
		r := m.Req.ResponseKind().(*kmsg.HeartbeatResponse)
		r.ErrorCode = code
		trySend(m.Reply, r)
	case *Leave:
		r := m.Req.ResponseKind().(*kmsg.LeaveGroupResponse)
		r.ErrorCode = code
		trySend(m.Reply, r)
	case *CheckCommit:
		trySend(m.Reply, code)
	case *CheckOffsetDelete:
		res := make(map[string]int16, len(m.Topics))
		for _, t := range m.Topics {
			res[t] = code
		}
		trySend(m.Reply, res)
	case *Describe:
		d := kmsg.NewDescribeGroupsResponseGroup()
		d.ErrorCode = code
		trySend(m.Reply, d)
	case *Delete:
		trySend(m.Reply, code)
	case *Summary:
		trySend(m.Reply, GroupSummary{State: Dead.String()})
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
