// Package node assembles one meshka node from its configuration: the
// upstream clients, the actor mesh, the Kafka listener and the bindings.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshka/meshka/acl"
	"github.com/meshka/meshka/actors/group"
	"github.com/meshka/meshka/actors/hosted"
	"github.com/meshka/meshka/actors/lease"
	"github.com/meshka/meshka/actors/partition"
	"github.com/meshka/meshka/actors/table"
	"github.com/meshka/meshka/admin"
	"github.com/meshka/meshka/auth"
	"github.com/meshka/meshka/cluster"
	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/kafkawire"
	httpmap "github.com/meshka/meshka/mappers/http"
	"github.com/meshka/meshka/mappers/mqtt"
	apimesh "github.com/meshka/meshka/mesh"
	"github.com/meshka/meshka/netguard"
	"github.com/meshka/meshka/schema/remote"
	"github.com/meshka/meshka/schema/validate"
	"github.com/meshka/meshka/tlsfiles"
	"github.com/meshka/meshka/upstream"
)

// upstreamName names the single upstream cluster in partition identities;
// multi-upstream fan-in will name each.
const upstreamName = "default"

// Options carry what a configuration file cannot: the logger and, for
// tests and benchmarks, a custom upstream dialer.
type Options struct {
	Logger *slog.Logger
	Dialer func(ctx context.Context, network, host string) (net.Conn, error)
	// Version is the build's, for meshka_build_info and the status page.
	Version string
	// Reload, when set, serves POST /api/reload on the admin listener:
	// it reads the configuration again and applies it.
	Reload func() (admin.ReloadReport, error)
	// SchemaSource finds the schemas the topics rules check records
	// against; needed when a rule names avro, protobuf or json.
	SchemaSource validate.Source
}

// Node is a running meshka node.
type Node struct {
	cfg  config.Config
	log  *slog.Logger
	up   *upstream.Client
	mesh *cluster.Mesh
	api  *apimesh.Mesh // the records API bindings use
	reg  *cluster.Registry
	srv  *kafkawire.Server
	ln   net.Listener
	// oauth refreshes the OAUTHBEARER key set until the node stops; nil
	// without security.oauthbearer.
	oauth *auth.OAuthBearer
	// schemas reads the external schema registry (schema.registry.url);
	// nil without one, or when the program gave its own source.
	schemas *remote.Source
	acl     *acl.Authorizer // security.acls, replaced whole on a reload
	users   *auth.Users     // security.users, replaced whole on a reload
	cfgMu   sync.Mutex      // guards the live keys of cfg (Reload)

	budget *partition.Budget

	bindMu   sync.Mutex
	bindings []namedBinding // started, in start order

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	served chan error
	extra  map[string]net.Listener // kafka.listeners, bound, by name

	// The admin listener (nil without admin.listen), the metrics
	// registry every part of the node registers on, and what the status
	// page shows of the node.
	prom      *prometheus.Registry
	admin     *admin.Server
	adminLn   net.Listener
	adminAddr string
	version   string
	started   time.Time
	closing   atomic.Bool // Shutdown began: /readyz answers 503
	readyMu   sync.Mutex  // guards the last readiness check
	readyAt   time.Time
	reasons   []string
}

type namedBinding struct {
	name string
	b    apimesh.Binding
}

// bindingStartTimeout bounds one binding's Start.
const bindingStartTimeout = 30 * time.Second

// Start binds the Kafka listener, joins the mesh, begins serving and then
// starts the configured bindings, in the order of their names. The
// upstream is contacted lazily, so a node starts while upstream is down.
// A binding that is not registered, a section its binding refuses, or a
// binding that fails to start, fails Start, with whatever had started
// stopped.
func Start(cfg config.Config, opts Options) (*Node, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, errs
	}
	if len(cfg.Upstream.Brokers) == 0 {
		return nil, fmt.Errorf("upstream.brokers: at least one broker is required")
	}
	if errs := unknownBindings(cfg); len(errs) > 0 {
		return nil, errs
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	// Every line the node logs names it, so the lines of several nodes
	// (a cluster's, gathered; meshka dev --nodes N) tell which is which.
	log = log.With("node", cfg.Node.ID)
	version := opts.Version
	if version == "" {
		version = "dev"
	}
	n := &Node{cfg: cfg, log: log, served: make(chan error, 1), version: version, started: time.Now()}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.prom = newRegistry(opts.Version)

	gossipKeys, remoteTLS, err := meshSecurity(cfg.Cluster, log)
	if err != nil {
		return nil, err
	}
	upCfg := upstream.Config{
		Brokers:        cfg.Upstream.Brokers,
		ClientID:       cfg.Upstream.ClientID,
		RequestTimeout: cfg.Upstream.RequestTimeout.D(),
		MetadataTTL:    cfg.Upstream.MetadataTTL.D(),
		Logger:         log,
		Dialer:         opts.Dialer,
		Metrics:        n.prom,
	}
	if err := upstreamSecurity(cfg.Upstream, &upCfg, log); err != nil {
		return nil, err
	}
	up, err := upstream.New(upCfg)
	if err != nil {
		return nil, err
	}
	n.up = up

	ln, err := net.Listen("tcp", cfg.Node.Listen)
	if err != nil {
		up.Close()
		return nil, fmt.Errorf("kafka listener: %w", err)
	}
	n.ln = ln
	self, err := cluster.ParseNode(cfg.Node.ID, advertised(cfg, ln.Addr()))
	if err != nil {
		ln.Close()
		up.Close()
		return nil, err
	}
	us, oauth, err := users(cfg, log)
	if err != nil {
		ln.Close()
		up.Close()
		return nil, err
	}
	n.oauth, n.users = oauth, us
	policy, err := acl.FromConfig(cfg.Security)
	if err != nil {
		oauth.Close()
		ln.Close()
		up.Close()
		return nil, err
	}
	n.acl = acl.New(policy)
	extra, err := bindListeners(cfg, log)
	if err != nil {
		oauth.Close()
		ln.Close()
		up.Close()
		return nil, err
	}
	adminLn, adminCfg, err := n.bindAdmin()
	if err != nil {
		oauth.Close()
		ln.Close()
		for _, x := range extra {
			x.ln.Close()
		}
		up.Close()
		return nil, err
	}
	addrs := listenerAddrs(extra)
	if adminLn != nil {
		n.adminLn = adminLn
		n.adminAddr = adminAdvertise(cfg.Admin.Advertise, adminLn.Addr(), self.Host)
		if addrs == nil {
			addrs = map[string]string{}
		}
		addrs[adminAddrKey] = n.adminAddr
	}
	closeListeners := func() {
		oauth.Close()
		ln.Close()
		for _, x := range extra {
			x.ln.Close()
		}
		if adminLn != nil {
			adminLn.Close()
		}
	}
	n.budget = partition.NewBudget(int64(cfg.Cache.NodeMaxBytes))
	n.prom.MustRegister(newPartitionCollector(n.budget))
	feeds := partition.NewFeeds()
	writers := partition.NewWriters()
	// Table actors read partitions through the mesh they run in, and
	// lease actors read its views; it exists once cluster.Start returns.
	var meshRef atomic.Pointer[cluster.Mesh]
	hostedActors := hosted.NewRegistry() // the binding actors this node runs; the mesh API closes it
	mesh, err := cluster.Start(cluster.Config{
		Gossip: cluster.GossipConfig{
			Self: cluster.Member{
				Cluster: cfg.Cluster.Name,
				NodeID:  cfg.Node.ID,
				Kafka:   net.JoinHostPort(self.Host, strconv.Itoa(int(self.Port))),
				Addrs:   addrs,
			},
			Bind:             cfg.Cluster.Bind,
			Advertise:        cfg.Cluster.AdvertiseBind,
			Join:             cfg.Cluster.Join,
			ProbeInterval:    cfg.Cluster.ProbeInterval.D(),
			SuspicionTimeout: cfg.Cluster.SuspicionTimeout.D(),
			Keys:             gossipKeys,
		},
		Remote:          cfg.Cluster.Remote,
		AdvertiseRemote: cfg.Cluster.AdvertiseRemote,
		RemoteTLS:       remoteTLS,
		Kinds: map[string]*actor.Props{
			partition.Kind: partition.Props(partition.Config{
				Upstream:    up,
				Budget:      n.budget,
				Feeds:       feeds,
				Writers:     writers,
				MaxBytes:    int64(cfg.Cache.PartitionMaxBytes),
				IdleTimeout: cfg.Cache.IdleTimeout.D(),
				MaxInFlight: cfg.Upstream.ProduceInflight,
				Logger:      log,
			}),
			group.Kind: group.Props(group.Config{
				InitialRebalanceDelay: cfg.Groups.InitialRebalanceDelay.D(),
				MinSessionTimeout:     cfg.Groups.MinSessionTimeout.D(),
				MaxSessionTimeout:     cfg.Groups.MaxSessionTimeout.D(),
				MaxSize:               cfg.Groups.MaxSize,
				Logger:                log,
			}),
			table.Kind: table.Props(table.Config{
				Cluster:  meshRef.Load,
				Upstream: up,
				MaxBytes: int64(cfg.Tables.MaxBytes),
				Logger:   log,
			}),
			lease.Kind: lease.Props(lease.Config{
				Cluster: meshRef.Load,
				Clock:   &lease.Clock{},
				Logger:  log,
			}),
			hosted.Kind: hosted.Props(hosted.Config{Registry: hostedActors, Logger: log}),
		},
		Spread: map[string]cluster.Spreader{partition.Kind: spreadPartitions},
		Logger: log,
	})
	if err != nil {
		closeListeners()
		up.Close()
		return nil, err
	}
	n.mesh = mesh
	meshRef.Store(mesh)
	mesh.Register(n.prom)
	n.reg = cluster.NewRegistry(self, mesh)
	n.api = apimesh.New(apimesh.Config{Cluster: mesh, Upstream: up, UpstreamName: upstreamName, Writers: writers, Hosted: hostedActors, Logger: log})
	api := n.api
	n.prom.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "meshka_records_skipped_invalid_total",
		Help: "Records the MQTT and HTTP mappers' subscribers (every subscription of the records API) skipped because a topics rule with validate_fetch refused them; counted once per shared read of a partition, and once per subscriber reading on its own while it catches up.",
	}, func() float64 { return float64(api.SkippedInvalid()) }))
	// The schemas: the program's source, else the external registry,
	// else (below, once the HTTP mapper is built) the built-in one.
	// Given to the Mesh first, so bindings see it as they are built.
	src := opts.SchemaSource
	observe := registryRequests(n.prom)
	if src == nil && cfg.HasExternalSchemaRegistry() {
		if n.schemas, err = externalRegistry(cfg.Schema.Registry, observe, log); err == nil {
			src = n.schemas
			log.Info("schemas read from an external registry", "url", []string(cfg.Schema.Registry.URL),
				"auth", registryAuth(cfg.Schema.Registry), "tls", cfg.Schema.Registry.TLS != nil)
		}
	}
	if src != nil {
		n.api.SetSchemas(src)
	}
	var built []namedBinding
	if err == nil {
		built, err = buildBindings(cfg, n.api, n.prom, log)
	}
	if err == nil && cfg.HTTP.Listen != "" {
		var hb apimesh.Binding
		if hb, err = httpServer(cfg, n.api, us, oauth, n.acl, n.prom, log); err == nil {
			built = append(built, namedBinding{"http", hb})
		}
	}
	if err == nil && cfg.MQTT.Listen != "" {
		var mq apimesh.Binding
		if mq, err = mqttBroker(cfg, n.api, us, n.acl, n.prom, log); err == nil {
			// the MQTT mapper starts after the registered bindings
			built = append(built, namedBinding{"mqtt", mq})
		}
	}
	var checker *validate.Validator
	if err == nil {
		// The topics rules check records against the schemas of the
		// program's source, else of the external registry, else of the
		// built-in one.
		for _, nb := range built {
			if hs, ok := nb.b.(*httpmap.Server); ok && src == nil {
				if s := hs.SchemaSource(); s != nil {
					src = s
				}
			}
		}
		if src != nil {
			// Bindings converting values read the same schemas.
			n.api.SetSchemas(src)
		}
		checker, err = validator(cfg.Topics, src)
		if err == nil && checker != nil {
			// The mappers check what their clients produce through the
			// records API; the bindings start below, after this.
			n.api.SetChecker(checker)
		}
	}
	if err != nil {
		n.api.Close()
		n.closeSchemas()
		mesh.Leave(cfg.Cluster.LeaveTimeout.D())
		mesh.Stop()
		closeListeners()
		up.Close()
		return nil, err
	}

	maxConns := cfg.Kafka.MaxConnections
	if maxConns == 0 {
		maxConns = netguard.MaxConnsFromFileLimit()
	}
	n.srv = kafkawire.New(kafkawire.Config{
		MaxFrameBytes:      int32(min(int64(cfg.Kafka.MaxFrameBytes), 1<<31-1)),
		MaxInflight:        cfg.Kafka.MaxInflightPerConn,
		FetchMaxWaitCap:    cfg.Kafka.FetchMaxWaitCap.D(),
		Limits:             netguard.Limits{MaxConns: maxConns, MaxConnsPerIP: cfg.Kafka.MaxConnectionsPerIP},
		IdleTimeout:        cfg.Kafka.IdleTimeout.D(),
		RequestReadTimeout: cfg.Kafka.RequestReadTimeout.D(),
		WriteTimeout:       cfg.Kafka.WriteTimeout.D(),
		RequestBudget:      netguard.NewBudget(int64(cfg.Kafka.MaxRequestMemory)),
		ResponseBudget:     netguard.NewBudget(int64(cfg.Kafka.MaxResponseMemory)),
		Metrics:            n.prom,
		TopicLabels:        cfg.Admin.TopicLabels,
	}, kafkawire.Deps{Upstream: up, UpstreamName: upstreamName, Mesh: mesh, Feeds: feeds, Registry: n.reg, Logger: log,
		Users: us, SessionLifetime: cfg.Security.SASL.SessionLifetime.D(), ACL: n.acl, Validator: checker})
	go func() { n.served <- n.srv.Serve(ln) }()
	for _, x := range extra {
		reg, err := n.reg.For(x.lst.Name, x.advertise)
		if err != nil {
			x.ln.Close()
			log.Error("Kafka listener not served", "listener", x.lst.Name, "err", err)
			continue
		}
		x.lst.Registry = reg
		if n.extra == nil {
			n.extra = map[string]net.Listener{}
		}
		n.extra[x.lst.Name] = x.ln
		go func() {
			if err := n.srv.ServeListener(x.ln, x.lst); err != nil {
				select {
				case n.served <- err:
				default:
				}
			}
		}()
		log.Info("Kafka listener started", "listener", x.lst.Name, "listen", x.ln.Addr().String(), "advertise", x.advertise,
			"security_protocol", protocolOf(cfg, x.lst.Name))
	}

	// Learn upstream's versions early, so requests at versions upstream
	// lacks are refused even from clients that skip ApiVersions.
	n.wg.Add(1)
	go func() { defer n.wg.Done(); n.learnVersions() }()
	for _, topic := range cfg.Cache.Bootstrap {
		n.wg.Add(1)
		go func() { defer n.wg.Done(); n.warm(topic) }()
	}
	if adminLn != nil {
		n.admin = admin.New(adminCfg, admin.Deps{
			Gatherer: n.prom, Ready: n.ready, Local: n.localStatus, Peers: n.peers, Reload: opts.Reload,
			Users: us, SuperUser: n.acl.SuperUser, Logger: log.With("listener", "admin"),
		})
		go func() {
			// Bounded as every listener is: a flood of connections to the
			// admin port costs at most adminMaxConns of them.
			guarded := netguard.Listen(adminLn, "admin", netguard.Limits{MaxConns: adminMaxConns, MaxConnsPerIP: adminMaxConns / 4}, log)
			if err := n.admin.Serve(guarded.NetListener(nil, nil)); err != nil {
				log.Error("admin listener failed", "err", err)
			}
		}()
		log.Info("admin listener started", "listen", adminLn.Addr().String(), "advertise", n.adminAddr, "tls", adminCfg.TLS != nil)
	}
	log.Info("meshka node started", "listen", ln.Addr().String(),
		"advertise", net.JoinHostPort(self.Host, strconv.Itoa(int(self.Port))), "upstream", cfg.Upstream.Brokers,
		"gossip", n.GossipAddr(), "members", len(n.reg.Nodes()))

	for _, nb := range built {
		ctx, cancel := context.WithTimeout(n.ctx, bindingStartTimeout)
		err := nb.b.Start(ctx)
		cancel()
		if err != nil {
			err = fmt.Errorf("binding %q: start: %w", nb.name, err)
			ctx, cancel := context.WithTimeout(context.Background(), cfg.Kafka.ShutdownTimeout.D())
			defer cancel()
			n.Shutdown(ctx)
			return nil, err
		}
		n.bindMu.Lock()
		n.bindings = append(n.bindings, nb)
		n.bindMu.Unlock()
		log.Info("binding started", "binding", nb.name)
	}
	return n, nil
}

// unknownBindings are the configured bindings no one registered, each an
// error at its name in the file.
func unknownBindings(cfg config.Config) config.Errors {
	var errs config.Errors
	for _, name := range slices.Sorted(maps.Keys(cfg.Bindings)) {
		if _, ok := apimesh.LookupBinding(name); ok {
			continue
		}
		registered := "none"
		if names := apimesh.Bindings(); len(names) > 0 {
			registered = strings.Join(names, ", ")
		}
		errs = append(errs, cfg.Binding(name).Errorf("", "no binding %q is registered; registered: %s", name, registered))
	}
	return errs
}

// buildBindings has each configured binding's factory build it from its
// section, and reports every problem of every section at once.
func buildBindings(cfg config.Config, m *apimesh.Mesh, reg prometheus.Registerer, log *slog.Logger) ([]namedBinding, error) {
	var (
		built   []namedBinding
		cfgErrs config.Errors
		others  []error
	)
	for _, name := range slices.Sorted(maps.Keys(cfg.Bindings)) {
		f, _ := apimesh.LookupBinding(name)
		env := apimesh.BindingEnv{Name: name, NodeID: cfg.Node.ID, Mesh: m, Logger: log.With("binding", name),
			Metrics: prometheus.WrapRegistererWith(prometheus.Labels{"binding": name}, reg)}
		b, err := f(env, cfg.Binding(name))
		var errs config.Errors
		var one config.Error
		switch {
		case errors.As(err, &errs):
			cfgErrs = append(cfgErrs, errs...)
		case errors.As(err, &one):
			cfgErrs = append(cfgErrs, one)
		case err != nil:
			others = append(others, fmt.Errorf("binding %q: %w", name, err))
		case b == nil:
			others = append(others, fmt.Errorf("binding %q: its factory returned no binding", name))
		default:
			built = append(built, namedBinding{name, b})
		}
	}
	if err := errors.Join(append([]error{cfgErrs.Sorted().Err()}, others...)...); err != nil {
		return nil, err
	}
	return built, nil
}

// httpServer builds the HTTP mapper of http.listen.
func httpServer(cfg config.Config, m *apimesh.Mesh, us *auth.Users, bearer *auth.OAuthBearer, az *acl.Authorizer, reg prometheus.Registerer, log *slog.Logger) (*httpmap.Server, error) {
	env := httpmap.Env{Mesh: m, Users: us, Bearer: bearer, ACL: az, Metrics: reg, Logger: log}
	if cfg.HTTP.TLS != nil {
		t, err := tlsfiles.Server(*cfg.HTTP.TLS, log.With("listener", "http"))
		if err != nil {
			return nil, fmt.Errorf("http.tls: %w", err)
		}
		env.TLS = t
	}
	return httpmap.New(cfg.HTTP, env)
}

// mqttBroker builds the MQTT mapper of mqtt.listen.
func mqttBroker(cfg config.Config, m *apimesh.Mesh, us *auth.Users, az *acl.Authorizer, reg prometheus.Registerer, log *slog.Logger) (*mqtt.Broker, error) {
	env := mqtt.Env{Mesh: m, NodeID: cfg.Node.ID, Users: us, ACL: az, Metrics: reg, Logger: log}
	if cfg.MQTT.TLS != nil {
		t, err := tlsfiles.Server(*cfg.MQTT.TLS, log.With("listener", "mqtt"))
		if err != nil {
			return nil, fmt.Errorf("mqtt.tls: %w", err)
		}
		env.TLS = t
	}
	return mqtt.New(cfg.MQTT, env)
}

// spreadPartitions places a topic's partitions evenly over the nodes, as
// a Kafka cluster spreads leadership.
func spreadPartitions(identity string) (string, int, bool) {
	up, topic, p, err := partition.ParseIdentity(identity)
	if err != nil {
		return "", 0, false
	}
	return up + "/" + topic, int(p), true
}

// advertised is the configured advertised address, with the bound port
// filled in when the listener asked for any port.
func advertised(cfg config.Config, bound net.Addr) string {
	adv := cfg.AdvertiseAddr()
	host, port, err := net.SplitHostPort(adv)
	if err == nil && port == "0" {
		if _, p, err := net.SplitHostPort(bound.String()); err == nil {
			return net.JoinHostPort(host, p)
		}
	}
	return adv
}

// Addr is the Kafka listener's bound address.
func (n *Node) Addr() net.Addr { return n.ln.Addr() }

// Kafka is the node's Kafka listener, for its counters.
func (n *Node) Kafka() *kafkawire.Server { return n.srv }

// ACL is the authorizer of the node's Kafka edge; its Replace puts
// reloaded rules in force for every connection.
func (n *Node) ACL() *acl.Authorizer { return n.acl }

// CacheBytes is the bytes all partition caches on the node hold.
func (n *Node) CacheBytes() int64 { return n.budget.Used() }

// Upstream is the node's upstream client.
func (n *Node) Upstream() *upstream.Client { return n.up }

// Done reports a listener that failed on its own.
func (n *Node) Done() <-chan error { return n.served }

func (n *Node) learnVersions() {
	for attempt := 0; n.ctx.Err() == nil; attempt++ {
		if _, err := n.up.ApiVersions(n.ctx); err == nil {
			return
		} else if attempt == 0 {
			n.log.Warn("upstream not reachable yet; retrying", "err", err)
		}
		t := time.NewTimer(time.Second << min(attempt, 5))
		select {
		case <-t.C:
		case <-n.ctx.Done():
			t.Stop()
		}
	}
}

// warm keeps a bootstrap topic's partitions streamed with no reader.
func (n *Node) warm(topic string) {
	for attempt := 0; n.ctx.Err() == nil; attempt++ {
		ts, err := n.up.Meta().Topics(n.ctx, []string{topic}, false)
		if err == nil && len(ts) == 1 && ts[0].Err == 0 {
			for _, p := range ts[0].Partitions {
				id := partition.Identity(upstreamName, topic, p.Partition)
				if err := n.mesh.Tell(partition.Kind, id, &partition.Warm{}); err != nil {
					n.log.Warn("bootstrap: partition actor unavailable", "topic", topic, "partition", p.Partition, "err", err)
				}
			}
			n.log.Info("bootstrap topic kept warm", "topic", topic, "partitions", len(ts[0].Partitions))
			return
		}
		if attempt == 0 {
			n.log.Warn("bootstrap topic not available upstream yet; retrying", "topic", topic, "err", err)
		}
		t := time.NewTimer(time.Second << min(attempt, 5))
		select {
		case <-t.C:
		case <-n.ctx.Done():
			t.Stop()
		}
	}
}

// Shutdown stops the bindings first, each within ctx, while the mesh
// still carries what they finish; then it leaves the cluster (the other
// nodes take this node's partitions and groups, and this node sends its
// clients to them), stops accepting, answers the requests already read
// within ctx, stops the actors and closes upstream connections.
func (n *Node) Shutdown(ctx context.Context) error {
	n.closing.Store(true)
	berr := n.stopBindings(ctx)
	n.mesh.Leave(n.cfg.Cluster.LeaveTimeout.D())
	err := n.srv.Shutdown(ctx)
	n.cancel()
	n.wg.Wait()
	n.api.Close()
	n.closeSchemas()
	n.mesh.Stop()
	n.up.Close()
	n.oauth.Close()
	n.stopAdmin(ctx)
	n.log.Info("meshka node stopped")
	return errors.Join(berr, err)
}

// stopBindings stops the started bindings, last started first, each
// within ctx, while the Mesh they use still serves them.
func (n *Node) stopBindings(ctx context.Context) error {
	n.bindMu.Lock()
	started := n.bindings
	n.bindings = nil
	n.bindMu.Unlock()
	var errs []error
	for _, nb := range slices.Backward(started) {
		if err := nb.b.Stop(ctx); err != nil {
			n.log.Warn("binding did not stop cleanly", "binding", nb.name, "err", err)
			errs = append(errs, fmt.Errorf("binding %q: stop: %w", nb.name, err))
		}
	}
	return errors.Join(errs...)
}

// Crash stops the node as a killed process would, for tests: no word to
// the other nodes, which find out by failure detection; every client
// connection cut at once, answered or not; bindings stopped with a context
// already ended, so they drop what they hold.
func (n *Node) Crash() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n.stopBindings(ctx)
	n.mesh.Crash()
	n.srv.Shutdown(ctx)
	n.cancel()
	n.wg.Wait()
	n.api.Close()
	n.closeSchemas()
	n.mesh.Stop()
	n.up.Close()
	n.oauth.Close()
	n.stopAdmin(ctx)
}

// PartitionActive reports whether the actor of topic's partition p is
// active on this node.
func (n *Node) PartitionActive(topic string, p int32) bool {
	return n.mesh.Active(partition.Kind, partition.Identity(upstreamName, topic, p))
}

// GroupActive reports whether the actor of group id is active on this node.
func (n *Node) GroupActive(id string) bool {
	return n.mesh.Active(group.Kind, group.Identity(upstreamName, id))
}

// TableActive reports whether the table actor of topic is active on this
// node.
func (n *Node) TableActive(topic string) bool {
	return n.mesh.Active(table.Kind, table.Identity(upstreamName, topic))
}

// LeaseActive reports whether the lease actor of name and id is active
// on this node.
func (n *Node) LeaseActive(name, id string) bool {
	return n.mesh.Active(lease.Kind, lease.Identity(name, id))
}

// GossipAddr is the node's memberlist address, which other nodes join at.
func (n *Node) GossipAddr() string { return n.mesh.Members().Self().Gossip }

// Registry is the node's view of the cluster as Kafka clients see it.
func (n *Node) Registry() *cluster.Registry { return n.reg }

// PartitionReader reads a partition through the mesh from offset on, from
// its owner's cache wherever the owner is (see partition.Reader).
func (n *Node) PartitionReader(topic string, p int32, offset int64, isolation int8) *partition.Reader {
	return partition.NewReader(n.mesh, n.up, upstreamName, topic, p, offset, isolation)
}

// Produce sends one record batch through the mesh to the partition's
// owner, wherever it is, which forwards it upstream in its ordered
// pipeline, and returns upstream's answer.
func (n *Node) Produce(ctx context.Context, args upstream.ProduceArgs) (upstream.ProduceResult, error) {
	return partition.Produce(ctx, n.mesh, upstreamName, args)
}

// Mesh is the node's records API (package mesh), what bindings use.
func (n *Node) Mesh() *apimesh.Mesh { return n.api }

// Binding is the started binding configured under name.
func (n *Node) Binding(name string) (apimesh.Binding, bool) {
	n.bindMu.Lock()
	defer n.bindMu.Unlock()
	for _, nb := range n.bindings {
		if nb.name == name {
			return nb.b, true
		}
	}
	return nil, false
}

// BindingHealth is every started binding's report, by name.
func (n *Node) BindingHealth() map[string]apimesh.Health {
	n.bindMu.Lock()
	started := slices.Clone(n.bindings)
	n.bindMu.Unlock()
	out := make(map[string]apimesh.Health, len(started))
	for _, nb := range started {
		out[nb.name] = nb.b.Health()
	}
	return out
}
