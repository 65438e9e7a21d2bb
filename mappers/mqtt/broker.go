// Package mqtt is meshka's MQTT mapper: an MQTT 3.1.1 and 5 broker on a
// meshka node whose storage is Kafka. A publish is a record of the
// messages topic (or a route's topic), keyed by its topic name; a
// subscription is a subscription of the mesh API with the topic filter as
// its key filter, run in the partitions' shared fan-out; retained
// messages and persistent sessions are tables over compacted topics; a
// session is held by one connection in the whole cluster at a time,
// through a lease of the mesh API, so a client that reconnects to any
// node takes its session over there and reads on from its offsets.
//
// The mapper uses the public mesh API only, as any binding would.
package mqtt

import (
	"github.com/prometheus/client_golang/prometheus"

	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshka/meshka/acl"
	"github.com/meshka/meshka/auth"
	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/mesh"
	"github.com/meshka/meshka/netguard"
	"github.com/meshka/meshka/records"
)

// Env is what the node gives the broker.
type Env struct {
	Mesh   *mesh.Mesh
	NodeID int32
	// Users check CONNECT usernames and passwords; nil: no users (a
	// CONNECT with a username is refused).
	Users *auth.Users
	// ACL authorizes publishes and subscriptions on the Kafka topics
	// they reach; nil or disabled: everything is allowed.
	ACL *acl.Authorizer
	// TLS is the server configuration for mqtt.tls; nil: plaintext.
	TLS *tls.Config
	// Metrics, when set, registers the mapper's figures.
	Metrics prometheus.Registerer
	Logger  *slog.Logger
}

// Broker is the MQTT listener of one node and the sessions its
// connections hold.
type Broker struct {
	cfg    config.MQTT
	env    Env
	log    *slog.Logger
	routes routes
	// persistent sessions are held through the cluster's leases; clean
	// ones, whose state ends with their connection, within the node
	persistent leaser
	clean      leaser

	m        *mesh.Mesh
	all      *mesh.Producer // acks=all: QoS 1 and 2, retained, wills
	qos0     *mesh.Producer // mqtt.qos0_acks
	retained *mesh.Table
	sessions *mesh.Table

	ln    *netguard.Listener
	wsSrv *wsServer

	ctx    context.Context // ends at Stop: connections close
	cancel context.CancelFunc
	wg     sync.WaitGroup // the accept loops and every connection

	mu     sync.Mutex
	conns  map[*conn]struct{}
	timers map[string]*time.Timer // wills and expiries of sessions disconnected here, by client id and purpose

	stats   stats
	metrics *metrics
	missing sync.Once // the sessions topic missing, logged once
}

type stats struct {
	connections atomic.Int64
	published   atomic.Int64
	delivered   atomic.Int64
	dropped     atomic.Int64 // QoS 0 messages dropped for a full outbox
}

// New builds a broker from a validated configuration; Start serves it.
func New(cfg config.MQTT, env Env) (*Broker, error) {
	if env.Mesh == nil {
		return nil, errors.New("mqtt: no mesh")
	}
	log := env.Logger
	if log == nil {
		log = slog.Default()
	}
	rs, err := newRoutes(cfg)
	if err != nil {
		return nil, err
	}
	b := &Broker{cfg: cfg, env: env, log: log.With("component", "mqtt"), routes: rs, m: env.Mesh, clean: &localLeases{},
		conns: map[*conn]struct{}{}, timers: map[string]*time.Timer{}}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.persistent = &meshLeases{m: env.Mesh}
	b.metrics = newMetrics(env.Metrics, b)
	return b, nil
}

// Start creates the mapper's topics where upstream allows, binds the
// listeners and serves them.
func (b *Broker) Start(ctx context.Context) error {
	for i, r := range b.cfg.Routes {
		if r.ValueFormat != "" && b.m.Schemas() == nil {
			return fmt.Errorf("mqtt.routes[%d] (%s): value_format %s needs a schema registry (http.schema_registry.enabled or schema.registry.url)",
				i, r.Filter, r.ValueFormat)
		}
	}
	b.createTopics(ctx)
	acks0 := mesh.AcksNone
	if b.cfg.QoS0Acks == "leader" {
		acks0 = mesh.AcksLeader
	}
	b.all = b.m.NewProducer(mesh.ProducerOptions{Acks: mesh.AcksAll, Compression: records.CodecNone})
	b.qos0 = b.m.NewProducer(mesh.ProducerOptions{Acks: acks0, Compression: records.CodecNone, Linger: time.Millisecond})
	b.retained = b.m.Table(b.cfg.Topics.Retained)
	b.sessions = b.m.Table(b.cfg.Topics.Sessions)

	raw, err := net.Listen("tcp", b.cfg.Listen)
	if err != nil {
		return fmt.Errorf("mqtt.listen: %w", err)
	}
	maxConns := b.cfg.MaxConnections
	if maxConns == 0 {
		maxConns = netguard.MaxConnsFromFileLimit()
	}
	b.ln = netguard.Listen(raw, "mqtt", netguard.Limits{MaxConns: maxConns}, b.log)
	b.ln.Register(b.env.Metrics, "mqtt", "mqtt")
	if b.cfg.WebSocket != "" {
		ws, err := b.listenWebSocket(maxConns)
		if err != nil {
			b.ln.Close()
			return err
		}
		b.wsSrv = ws
	}
	b.wg.Add(1)
	go func() { defer b.wg.Done(); b.accept() }()
	b.log.Info("MQTT listener started", "listen", b.ln.Addr().String(), "advertise", b.Advertised(), "tls", b.env.TLS != nil,
		"websocket", b.cfg.WebSocket)
	return nil
}

// Addr is the bound MQTT listener's address.
func (b *Broker) Addr() net.Addr { return b.ln.Addr() }

// Advertised is the address MQTT clients are told about.
func (b *Broker) Advertised() string {
	if b.cfg.Advertise != "" {
		return b.cfg.Advertise
	}
	if b.ln != nil {
		return b.ln.Addr().String()
	}
	return b.cfg.Listen
}

func (b *Broker) accept() {
	for {
		c, release, err := b.ln.Accept()
		if err != nil {
			return // closed
		}
		r := netguard.Release(c, release)
		r.Count(b.metrics.bytesIn, b.metrics.bytesOut)
		var nc net.Conn = r
		if b.env.TLS != nil {
			nc = tls.Server(nc, b.env.TLS) // closing it releases the place too
		}
		b.serve(nc)
	}
}

// serve runs a connection on a goroutine of the broker's.
func (b *Broker) serve(nc net.Conn) {
	if !b.track(1) {
		nc.Close()
		return
	}
	go func() {
		defer b.wg.Done()
		newConn(b, nc).run()
	}()
}

// track counts a goroutine in wg unless the broker is stopping.
func (b *Broker) track(n int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ctx.Err() != nil {
		return false
	}
	b.wg.Add(n)
	return true
}

// Stop closes the listeners, ends every connection (their sessions
// persisted, wills due now published), and waits for them.
func (b *Broker) Stop(ctx context.Context) error {
	b.mu.Lock()
	b.cancel()
	b.mu.Unlock()
	if b.ln != nil {
		b.ln.Close()
	}
	if b.wsSrv != nil {
		b.wsSrv.close()
	}
	b.mu.Lock()
	for c := range b.conns {
		c.shutdown()
	}
	b.mu.Unlock()
	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		b.mu.Lock()
		for c := range b.conns {
			c.nc.Close()
		}
		b.mu.Unlock()
		<-done
		err = ctx.Err()
	}
	b.mu.Lock()
	for k, t := range b.timers {
		t.Stop()
		delete(b.timers, k)
	}
	b.mu.Unlock()
	if b.all != nil {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		b.all.Close(cctx)
		b.qos0.Close(cctx)
		cancel()
	}
	return err
}

// Health reports the listener and what it carries.
func (b *Broker) Health() mesh.Health {
	b.mu.Lock()
	n := len(b.conns)
	b.mu.Unlock()
	return mesh.Health{OK: b.ctx.Err() == nil, Detail: fmt.Sprintf("%d connections, %d published, %d delivered, %d QoS 0 dropped",
		n, b.stats.published.Load(), b.stats.delivered.Load(), b.stats.dropped.Load())}
}

var _ mesh.Binding = (*Broker)(nil)

// register adds c to the broker's live connections.
func (b *Broker) register(c *conn) {
	b.mu.Lock()
	b.conns[c] = struct{}{}
	b.mu.Unlock()
	b.stats.connections.Add(1)
}

func (b *Broker) unregister(c *conn) {
	b.mu.Lock()
	delete(b.conns, c)
	b.mu.Unlock()
}

// createTopics creates the three topics where upstream lacks them.
func (b *Broker) createTopics(ctx context.Context) {
	if !b.cfg.Topics.Create {
		return
	}
	compact := map[string]string{"cleanup.policy": "compact"}
	t := b.cfg.Topics
	parts, repl := t.Partitions, t.Replication
	if parts == 0 {
		parts = -1
	}
	if repl == 0 {
		repl = -1
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	errs, err := b.m.CreateTopics(cctx,
		mesh.TopicSpec{Name: t.Messages, Partitions: parts, Replication: repl},
		mesh.TopicSpec{Name: t.Retained, Partitions: parts, Replication: repl, Configs: compact},
		mesh.TopicSpec{Name: t.Sessions, Partitions: parts, Replication: repl, Configs: compact})
	if err != nil {
		b.log.Warn("MQTT topics not created", "err", err)
		return
	}
	for name, err := range errs {
		if err != nil {
			b.log.Warn("MQTT topic not created", "topic", name, "err", err)
		}
	}
}
