package partition

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/meshka/meshka/cluster"
	"github.com/meshka/meshka/internal/ratelog"
	"github.com/meshka/meshka/upstream"
)

// Config is what every partition actor on a node shares.
type Config struct {
	Upstream    *upstream.Client
	Budget      *Budget
	Feeds       *Feeds        // where the node's connections find each partition's cache
	Writers     *Writers      // where the node's producers find each partition's produce pipeline
	MaxBytes    int64         // per-partition cache bound
	IdleTimeout time.Duration // stop streaming after this long without a reader
	MaxQueue    int           // produce batches waiting or in flight per partition
	MaxInFlight int           // produce batches in flight upstream per partition
	Logger      *slog.Logger
	// Notices, when set, keeps a line that every partition of a topic
	// would log alike (a deleted topic's streams ending) to one per topic.
	Notices *ratelog.Limiter
}

// Props builds the actor props for the partition kind.
func Props(cfg Config) *actor.Props {
	if cfg.MaxQueue <= 0 {
		cfg.MaxQueue = 1024
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 5
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Notices == nil {
		cfg.Notices = ratelog.New(cfg.Logger, 10*time.Second)
	}
	if cfg.Budget == nil {
		cfg.Budget = NewBudget(1 << 62)
	}
	newActor := func() actor.Actor {
		return &Actor{cfg: cfg, pipe: NewPipeline[*pendingBatch](cfg.MaxQueue, cfg.MaxInFlight)}
	}
	return actor.PropsFromProducer(newActor, actor.WithMailbox(cluster.Mailbox(4096)))
}

// Actor adapts actor messages to the Log and Pipeline state machines and
// owns the partition's upstream stream.
type Actor struct {
	cfg       Config
	topic     string
	partition int32
	log       *slog.Logger

	self   *actor.PID
	root   *actor.RootContext
	ctx    context.Context
	cancel context.CancelFunc

	id   string
	feed *feed
	idle *time.Timer
	// pipe is the produce pipeline. Once relinquished (another node owns
	// the partition now), the actor stops when it says it is empty.
	// pipeMu guards it and closed: the actor's messages, the node's own
	// producers (Writers) and the upstream connection answering a batch
	// each drive it from their own goroutine (see step).
	pipeMu sync.Mutex
	pipe   *Pipeline[*pendingBatch]
	closed bool // the actor stopped: later answers change nothing

	readState
}

// Receive handles one message; protoactor calls it from one goroutine at a
// time.
func (a *Actor) Receive(c actor.Context) {
	if a.feed == nil {
		// Not initialised: a bad identity stops the actor at once, but
		// messages may have been queued before.
		switch m := c.Message().(type) {
		case *cluster.Activate:
			a.init(c, m.Identity)
		case *FetchRequest:
			respond(c, newFetchResponse(ReadResult{Status: Failed, Err: kerr.UnknownTopicOrPartition.Code, HighWatermark: -1, LastStableOffset: -1, LogStartOffset: -1}))
		case *ProduceRequest:
			(&pendingBatch{m: &produceArgs{to: c.Sender(), root: c.ActorSystem().Root}}).fail(kerr.UnknownTopicOrPartition.Code)
		case *actor.Stopping:
			a.stop(c)
		}
		return
	}
	switch m := c.Message().(type) {
	case *cluster.Activate:
		a.init(c, m.Identity)
	case *ProduceRequest:
		args := &produceArgs{Args: m.ProduceArgs(a.topic, a.partition), to: c.Sender(), root: a.root}
		if !m.valid() {
			// Only another node's mistake gets here: the Kafka edge
			// checks what it sends.
			(&pendingBatch{m: args}).fail(kerr.InvalidRequest.Code)
			break
		}
		a.produce(args)
	case *produceResume:
		a.step(func(p *Pipeline[*pendingBatch]) []pipeAction { return p.Resumed(m.err) })
	case *produceRetryBusy:
		a.step((*Pipeline[*pendingBatch]).BusyOver)
	case *FetchRequest:
		a.fetch(c, m)
	case *readable:
		a.serveParked(false)
	case *parkTick:
		a.serveParked(true)
	case *LogStart:
		a.feed.setLogStart(m.Offset)
	case *Warm:
		a.warm()
	case *warmAt:
		a.feed.warmAt(m.offset)
	case *idleTick:
		a.checkIdle()
	case *cluster.Relinquish:
		a.step((*Pipeline[*pendingBatch]).Relinquish)
	case *actor.Stopping:
		a.stop(c)
	}
}

func (a *Actor) init(c actor.Context, identity string) {
	_, topic, partition, err := ParseIdentity(identity)
	if err != nil {
		a.cfg.Logger.Error("partition actor with a bad identity", "identity", identity, "err", err)
		c.Stop(c.Self())
		return
	}
	a.topic, a.partition, a.id = topic, partition, identity
	a.log = a.cfg.Logger.With("topic", topic, "partition", partition)
	a.self, a.root = c.Self(), c.ActorSystem().Root
	a.ctx, a.cancel = context.WithCancel(context.Background())
	root, self := a.root, a.self
	a.feed = &feed{topic: topic, partition: partition, up: a.cfg.Upstream, budget: a.cfg.Budget, maxBytes: a.cfg.MaxBytes,
		log: a.log, notices: a.cfg.Notices, restart: func() { root.Send(self, &Warm{}) }}
	a.cfg.Feeds.add(identity, a.feed)
	a.cfg.Writers.add(identity, a)
	a.scheduleIdle()
}

// respond answers the request being handled, if it has a sender.
func respond(c actor.Context, msg any) {
	if c.Sender() != nil {
		c.Respond(msg)
	}
}

// warm starts streaming a bootstrap partition from its current end.
func (a *Actor) warm() {
	if !a.feed.warm() {
		return
	}
	go func() {
		for attempt := 0; a.ctx.Err() == nil; attempt++ {
			off, err := a.cfg.Upstream.LatestOffset(a.ctx, a.topic, a.partition)
			if err == nil {
				a.root.Send(a.self, &warmAt{offset: off})
				return
			}
			a.log.Debug("bootstrap partition: no end offset yet", "err", err)
			t := time.NewTimer(time.Second << min(attempt, 5))
			select {
			case <-t.C:
			case <-a.ctx.Done():
				t.Stop()
			}
		}
	}()
}

func (a *Actor) scheduleIdle() {
	d := a.cfg.IdleTimeout / 2
	if d <= 0 {
		return
	}
	a.idle = time.AfterFunc(d, func() { a.root.Send(a.self, &idleTick{}) })
}

func (a *Actor) checkIdle() {
	if a.feed.checkIdle(a.cfg.IdleTimeout) {
		a.log.Debug("partition idle: stream stopped")
	}
	a.scheduleIdle()
}

func (a *Actor) stop(c actor.Context) {
	if a.idle != nil {
		a.idle.Stop()
	}
	if a.feed != nil {
		a.cfg.Feeds.remove(a.id, a.feed)
		a.cfg.Writers.remove(a.id, a)
		a.feed.close()
	}
	// Cancelling ends the produce and warm-up goroutines promptly; they are
	// not waited for here, because one may be sending its result to this
	// very actor's mailbox.
	if a.cancel != nil {
		a.cancel()
	}
	a.pipeMu.Lock()
	a.closed = true
	a.carryOut(a.pipe.Stop()) // the clients re-route
	a.pipeMu.Unlock()
	a.failParked(kerr.NotLeaderForPartition.Code)
}
