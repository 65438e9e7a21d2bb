package lease

import (
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/meshka/meshka/cluster"
)

// Config is what every lease actor on a node shares.
type Config struct {
	// Cluster is the node's mesh: its views say whether a holder's node
	// is still a member, and since when this node owns a name. Nil (the
	// node still starting) is met by taking every holder for alive and
	// the activation's start for the start of its ownership.
	Cluster func() *cluster.Mesh
	// Clock hands out the node's epochs; one of the actor's own when nil.
	Clock *Clock
	// Grace is how long a new activation grants nothing after its node
	// began owning the name (Grace when 0; negative: no grace period, for
	// a node that is alone for good).
	Grace time.Duration
	// IdleAfter is how long an actor nobody holds or waits for lives
	// (IdleAfter when 0).
	IdleAfter time.Duration
	Logger    *slog.Logger
}

// Props builds the actor props for the lease kind.
func Props(cfg Config) *actor.Props {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = &Clock{}
	}
	if cfg.Cluster == nil {
		cfg.Cluster = func() *cluster.Mesh { return nil }
	}
	if cfg.Grace == 0 {
		cfg.Grace = Grace
	}
	if cfg.IdleAfter <= 0 {
		cfg.IdleAfter = IdleAfter
	}
	// A lease actor takes a few messages at a time (an acquire, renews,
	// a release), and there is one per name held: a small mailbox, whose
	// ring buffer is allocated whole when the actor starts (4096 slots
	// would be some 100 KiB per lease).
	return actor.PropsFromProducer(func() actor.Actor { return &Actor{cfg: cfg, log: cfg.Logger} },
		actor.WithMailbox(cluster.Mailbox(MailboxSize)))
}

// MailboxSize bounds a lease actor's mailbox; senders wait when it is
// full.
const MailboxSize = 64

// Actor arbitrates one name's lease: it adapts messages to its State,
// sends what the State returns, and keeps one timer for the State's next
// deadline. It stops when its node no longer owns the name (the holder
// renews at the new owner, which adopts it), and when nobody has held or
// waited for the lease for IdleAfter.
type Actor struct {
	cfg      Config
	log      *slog.Logger
	identity string
	self     *actor.PID
	system   *actor.ActorSystem
	state    *State

	timer   *time.Timer
	timerAt time.Time
}

// tick is the timer's message; it never leaves the node.
type tick struct{}

// Receive handles one message; protoactor calls it from one goroutine at a
// time.
func (a *Actor) Receive(c actor.Context) {
	now := time.Now()
	switch m := c.Message().(type) {
	case *cluster.Activate:
		a.init(c, m.Identity, now)
	case *AcquireRequest:
		if a.state == nil {
			return
		}
		var reply any
		if c.Sender() != nil {
			reply = c.Sender()
		}
		a.send(a.state.Acquire(now, m, reply, a.alive))
	case *RenewRequest:
		if a.state == nil {
			return
		}
		resp, out := a.state.Renew(now, m, a.alive)
		a.respond(c, resp)
		a.send(out)
	case *ReleaseRequest:
		if a.state == nil {
			return
		}
		resp, out := a.state.Release(now, m, a.alive)
		a.respond(c, resp)
		a.send(out)
	case *tick:
		a.timerAt = time.Time{}
		if a.state == nil {
			return
		}
		a.send(a.state.Tick(now, a.alive))
		if idle := a.state.IdleSince(); !idle.IsZero() && !now.Before(idle.Add(a.cfg.IdleAfter)) {
			c.Stop(c.Self())
			return
		}
	case *cluster.Relinquish:
		// Another node owns the name now; the holder renews there.
		c.Stop(c.Self())
		return
	case *actor.Stopping:
		if a.timer != nil {
			a.timer.Stop()
		}
		if a.state != nil {
			a.send(a.state.Stop())
			a.state = nil
		}
		return
	default:
		return
	}
	a.arm(now)
}

func (a *Actor) init(c actor.Context, identity string, now time.Time) {
	name, _, err := ParseIdentity(identity)
	if err != nil {
		a.log.Error("lease actor with a bad identity", "identity", identity, "err", err)
		c.Stop(c.Self())
		return
	}
	a.identity, a.self, a.system = identity, c.Self(), c.ActorSystem()
	a.log = a.cfg.Logger.With("lease", name, "identity", identity)
	since := now
	if m := a.cfg.Cluster(); m != nil {
		since = m.OwnedSince(Kind, identity)
	}
	var graceUntil time.Time
	if !since.IsZero() && a.cfg.Grace > 0 {
		graceUntil = since.Add(a.cfg.Grace)
	}
	a.state = New(now, graceUntil, a.cfg.Clock)
	if a.state.InGrace(now) {
		a.log.Debug("lease actor starts within its grace period: it grants nothing before the holder had time to renew here",
			"until", graceUntil)
	}
}

// alive says whether h's process may live: on this node, whether it is
// registered; elsewhere, whether its node is a member.
func (a *Actor) alive(h *Holder) bool {
	if h.GetAddress() == a.self.Address {
		_, ok := a.system.ProcessRegistry.GetLocal(h.GetId())
		return ok
	}
	m := a.cfg.Cluster()
	if m == nil {
		return true
	}
	for _, mem := range m.Members().View().Members {
		if mem.Remote == h.GetAddress() {
			return true
		}
	}
	return false
}

// send sends the State's messages: answers to parked acquirers and
// notices to holders, through the root context, which never waits for a
// reply; one that nobody takes is a dead letter.
func (a *Actor) send(out []Out) {
	for _, o := range out {
		switch {
		case o.Reply != nil:
			if pid, ok := o.Reply.(*actor.PID); ok && pid != nil {
				a.system.Root.Send(pid, o.Msg)
			}
		case o.Holder != nil:
			if r, ok := o.Msg.(*Revoke); ok {
				a.log.Debug("lease holder told to give it up", "holder", o.Holder.GetDescription(), "epoch", r.Epoch,
					"taker", r.Taker, "lost", r.Lost)
			}
			a.system.Root.Send(actor.NewPID(o.Holder.GetAddress(), o.Holder.GetId()), o.Msg)
		}
	}
}

func (a *Actor) respond(c actor.Context, msg any) {
	if c.Sender() != nil {
		c.Respond(msg)
	}
}

// arm sets the timer for the State's next deadline, or for the end of
// its idleness.
func (a *Actor) arm(now time.Time) {
	if a.state == nil {
		return
	}
	next := a.state.Next(now)
	if idle := a.state.IdleSince(); !idle.IsZero() && (next.IsZero() || idle.Add(a.cfg.IdleAfter).Before(next)) {
		next = idle.Add(a.cfg.IdleAfter)
	}
	if next.IsZero() || next.Equal(a.timerAt) {
		return
	}
	if !a.timerAt.IsZero() && a.timerAt.Before(next) {
		return // the earlier tick comes first and arms again
	}
	if a.timer != nil {
		a.timer.Stop()
	}
	a.timerAt = next
	root, self := a.system.Root, a.self
	a.timer = time.AfterFunc(max(next.Sub(now), 0), func() { root.Send(self, &tick{}) })
}
