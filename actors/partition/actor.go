package partition

import (
	"context"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/meshka/meshka/internal/ratelog"
	"github.com/meshka/meshka/upstream"
)

// Config is what every partition actor on a node shares.
type Config struct {
	Upstream    *upstream.Client
	Budget      *Budget
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
	return actor.PropsFromProducer(func() actor.Actor { return &Actor{cfg: cfg} },
		actor.WithMailbox(actor.Bounded(4096)))
}

// Actor adapts actor messages to the Log state machine and owns the
// partition's upstream stream and produce pipeline.
type Actor struct {
	cfg       Config
	topic     string
	partition int32
	log       *slog.Logger

	self   *actor.PID
	root   *actor.RootContext
	ctx    context.Context
	cancel context.CancelFunc

	cache     *Log
	sub       *upstream.Subscription
	unacked   int         // chunks of sub appended and not yet Done: the stream waits for readers
	pace      *time.Timer // re-checks a waiting stream once its readers may have gone
	lastRead  time.Time
	bootstrap bool
	idle      *time.Timer

	produceState
}

// Receive handles one message; protoactor calls it from one goroutine at a
// time.
func (a *Actor) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *cluster.ClusterInit:
		a.init(c, m.Identity.Identity)
	case *Produce:
		a.produce(m)
	case *produceDone:
		a.produceDone(m)
	case *produceResume:
		a.produceResume(m)
	case *produceRetryBusy:
		a.busy = false
		a.sendNext()
	case *Fetch:
		a.fetch(m)
	case *chunkMsg:
		a.chunk(m)
	case *LogStart:
		if a.cache != nil {
			a.cache.SetLogStart(m.Offset)
		}
	case *Warm:
		a.warm()
	case *warmAt:
		if a.sub == nil {
			a.startStream(m.offset)
		}
	case *idleTick:
		a.checkIdle()
	case *paceTick:
		a.pace = nil
		a.release()
	case *actor.Stopping:
		a.stop()
	}
}

func (a *Actor) init(c actor.Context, identity string) {
	_, topic, partition, err := ParseIdentity(identity)
	if err != nil {
		a.cfg.Logger.Error("partition actor with a bad identity", "identity", identity, "err", err)
		c.Stop(c.Self())
		return
	}
	a.topic, a.partition = topic, partition
	a.log = a.cfg.Logger.With("topic", topic, "partition", partition)
	a.self, a.root = c.Self(), c.ActorSystem().Root
	a.ctx, a.cancel = context.WithCancel(context.Background())
	a.scheduleIdle()
}

func (a *Actor) fetch(m *Fetch) {
	now := time.Now()
	a.lastRead = now
	if a.cache == nil {
		a.startStream(m.Offset)
	}
	r := a.cache.Read(m.Offset, m.MaxBytes, m.Isolation)
	if r.Status == Failed {
		// The stream cannot go on (offset out of range, topic deleted):
		// report it once and start afresh at the next reader's offset.
		a.stopStream()
	} else {
		a.cache.Saw(m.Offset, now)
		a.release()
	}
	m.Reply <- r
}

// release lets the stream bring more when the cache is hungry for it,
// and otherwise makes sure it is asked again once its readers may have
// gone.
func (a *Actor) release() {
	if a.sub == nil || a.unacked == 0 {
		return
	}
	if !a.cache.Hungry(time.Now()) {
		if a.pace == nil {
			a.pace = time.AfterFunc(readerFresh, func() { a.root.Send(a.self, &paceTick{}) })
		}
		return
	}
	for ; a.unacked > 0; a.unacked-- {
		a.sub.Done()
	}
}

func (a *Actor) startStream(offset int64) {
	a.stopStream()
	a.cache = NewLog(offset, a.cfg.MaxBytes, a.cfg.Budget)
	a.sub = a.cfg.Upstream.Streams().Subscribe(a.topic, a.partition, offset, sink{a.root, a.self})
	a.log.Debug("partition stream started", "offset", offset)
}

func (a *Actor) stopStream() {
	if a.sub != nil {
		a.sub.Stop()
		a.sub = nil
	}
	a.unacked = 0
	if a.pace != nil {
		a.pace.Stop()
		a.pace = nil
	}
	if a.cache != nil {
		a.cache.Release()
		a.cache = nil
	}
}

func (a *Actor) chunk(m *chunkMsg) {
	if m.sub != a.sub || a.cache == nil {
		return // from a stream since replaced
	}
	a.cache.Append(m.c)
	if m.c.Err != 0 {
		err := kerr.ErrorForCode(m.c.Err)
		a.log.Debug("partition stream stopped by upstream", "err", err)
		a.cfg.Notices.Log(slog.LevelInfo, "stream-stopped/"+a.topic+"/"+err.Error(), "partition streams stopped by upstream", "topic", a.topic, "err", err)
		if a.bootstrap {
			a.stopStream()
			a.warm()
			return
		}
		a.sub.Stop()
		a.sub = nil // the cache keeps the error for the next reader
		return
	}
	a.unacked++
	a.release()
}

// warm starts streaming a bootstrap partition from its current end.
func (a *Actor) warm() {
	a.bootstrap = true
	if a.sub != nil {
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
	if !a.bootstrap && a.cache != nil && time.Since(a.lastRead) > a.cfg.IdleTimeout {
		a.log.Debug("partition idle: stream stopped")
		a.stopStream()
	}
	a.scheduleIdle()
}

func (a *Actor) stop() {
	if a.idle != nil {
		a.idle.Stop()
	}
	a.stopStream()
	// Cancelling ends the produce and warm-up goroutines promptly; they are
	// not waited for here, because one may be sending its result to this
	// very actor's mailbox.
	if a.cancel != nil {
		a.cancel()
	}
	a.failProduce(kerr.NotLeaderForPartition.Code) // the client re-routes
}

// sink hands stream chunks to the actor's mailbox.
type sink struct {
	root *actor.RootContext
	pid  *actor.PID
}

func (s sink) Deliver(sub *upstream.Subscription, c *upstream.Chunk) {
	s.root.Send(s.pid, &chunkMsg{sub: sub, c: c})
}
