package hosted

import (
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/meshka/meshka/cluster"
)

// Config is what every hosted actor on a node shares.
type Config struct {
	Registry *Registry
	Logger   *slog.Logger
}

// MailboxSize bounds a hosted actor's mailbox; the calls themselves wait
// in its worker's queue.
const MailboxSize = 64

// Props builds the actor props for the hosted kind.
func Props(cfg Config) *actor.Props {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Registry == nil {
		cfg.Registry = NewRegistry()
	}
	return actor.PropsFromProducer(func() actor.Actor { return &Actor{cfg: cfg} },
		actor.WithMailbox(cluster.Mailbox(MailboxSize)))
}

// Actor is one activation of the hosted kind: it hands each Call to its
// worker, which runs the binding's handler, and stops the worker when its
// node relinquishes it or stops. It stops itself once its worker has
// stopped idle.
type Actor struct {
	cfg      Config
	kind, id string
	self     *actor.PID
	system   *actor.ActorSystem
	w        *worker
}

// workerDone is a worker's word that it has stopped; it never leaves the
// node.
type workerDone struct{ w *worker }

// Receive handles one message; protoactor calls it from one goroutine at a
// time.
func (a *Actor) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *cluster.Activate:
		kind, id, ok := splitIdentity(m.Identity)
		if !ok {
			a.cfg.Logger.Warn("hosted actor with an identity of no kind", "identity", m.Identity)
		}
		a.kind, a.id, a.self, a.system = kind, id, c.Self(), c.ActorSystem()
	case *Call:
		a.call(c, m)
	case workerDone:
		if a.w == m.w {
			a.w = nil
			if m.w.stopReason() == Idle {
				c.Stop(c.Self())
			}
		}
	case *cluster.Relinquish:
		if a.w != nil {
			a.w.stop(Moved)
		}
		c.Stop(c.Self())
	case *actor.Stopping:
		if a.w != nil {
			a.w.stop(Closing)
		}
	}
}

func (a *Actor) call(c actor.Context, m *Call) {
	var reply func(*Answer)
	if sender := c.Sender(); sender != nil {
		system := c.ActorSystem()
		reply = func(ans *Answer) { system.Root.Send(sender, ans) }
	}
	answer := func(code Code, msg string) {
		if reply != nil {
			reply(&Answer{Code: code, Error: msg})
		}
	}
	if a.kind == "" {
		answer(Code_NO_KIND, "no kind in the actor's identity")
		return
	}
	if a.w == nil || a.w.isStopping() {
		self, system := a.self, a.system
		w, err := a.cfg.Registry.start(a.kind, a.id, a.w, func(w *worker) { system.Root.Send(self, workerDone{w}) })
		switch {
		case err == errNoKind:
			answer(Code_NO_KIND, "this node serves no actors of kind "+a.kind)
			return
		case err == errFull:
			answer(Code_FULL, "this node runs as many actors of kind "+a.kind+" as it may")
			c.Stop(c.Self())
			return
		case err != nil:
			answer(Code_FAILED, err.Error())
			return
		}
		a.w = w
	}
	p := pending{body: m.Body, reply: reply}
	if m.TimeoutMillis > 0 {
		p.deadline = time.Now().Add(time.Duration(m.TimeoutMillis) * time.Millisecond)
	}
	switch code := a.w.offer(p); code {
	case Code_OK:
	case Code_BUSY:
		answer(code, "the actor's queue of calls is full")
	default:
		answer(code, "the actor is stopping")
	}
}
