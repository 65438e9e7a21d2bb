// Package kafkawire is meshka's Kafka protocol edge: the listener, request
// framing, and one handler file per Kafka API key.
package kafkawire

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshka/meshka/acl"
	"github.com/meshka/meshka/actors/partition"
	"github.com/meshka/meshka/auth"
	"github.com/meshka/meshka/cluster"
	"github.com/meshka/meshka/internal/ratelog"
	"github.com/meshka/meshka/netguard"
	"github.com/meshka/meshka/schema/validate"
	"github.com/meshka/meshka/upstream"
)

// Config bounds what one connection, and all of them together, may ask of
// the node.
type Config struct {
	MaxFrameBytes   int32         // largest request accepted
	MaxInflight     int           // requests read ahead of their responses
	FetchMaxWaitCap time.Duration // upper bound on a fetch's long poll

	Limits             netguard.Limits  // connections at once, in all and per address
	IdleTimeout        time.Duration    // close a connection idle this long; 0: never
	RequestReadTimeout time.Duration    // a begun request must arrive whole within this
	WriteTimeout       time.Duration    // answers must be taken by the client within this
	RequestBudget      *netguard.Budget // bytes of requests read or waiting, node-wide
	ResponseBudget     *netguard.Budget // bytes read through from upstream and not yet written, node-wide

	// Metrics, when set, registers the edge's figures (requests by API
	// and outcome, their latency, bytes, connections per listener);
	// TopicLabels adds bytes by topic.
	Metrics     prometheus.Registerer
	TopicLabels bool
}

// Deps are the parts of the node the handlers use.
type Deps struct {
	Upstream     *upstream.Client
	UpstreamName string // names partition actors: <upstream>/<topic>/<partition>
	Mesh         *cluster.Mesh
	Feeds        *partition.Feeds // partition caches read without a message to their actors
	Registry     *cluster.Registry
	Logger       *slog.Logger
	// Users are who SASL listeners authenticate; SessionLifetime is
	// security.sasl.session_lifetime (KIP-368; 0: forever).
	Users           *auth.Users
	SessionLifetime time.Duration
	// ACL decides what each principal may do (security.acls); nil
	// allows everything.
	ACL *acl.Authorizer
	// Validator checks produced records against the topics rules before
	// they go to their partition actors; nil checks nothing.
	Validator *validate.Validator
}

// Server accepts Kafka clients. Serve and Shutdown may be called from
// different goroutines.
type Server struct {
	cfg  Config
	deps Deps
	log  *slog.Logger

	mu       sync.Mutex
	lns      []*netguard.Listener
	conns    map[*conn]struct{}
	closing  bool
	connWG   sync.WaitGroup
	stopping chan struct{}

	groups groupIDs
	fails  failures // failed authentications by address

	trouble *ratelog.Limiter // upstream trouble: one line per interval

	idleClosed, slowClosed atomic.Int64 // connections closed idle, and as slow consumers
	budgetFull             atomic.Int64 // read-throughs answered empty: response budget spent

	m *metrics
}

// troubleInterval is how often the same upstream trouble is logged.
const troubleInterval = 10 * time.Second

// upstreamTrouble logs, at most once per interval, that a client's request
// could not get what it needed from upstream, with the cause meshka last
// saw when it tried to reach upstream.
func (s *Server) upstreamTrouble(what string, err error) {
	if cause := s.deps.Upstream.Unreachable(); cause != nil {
		s.trouble.Warn("upstream", "upstream unreachable; clients are told the cluster is unavailable", "request", what, "err", cause)
		return
	}
	s.trouble.Warn("upstream:"+what, "upstream request failed", "request", what, "err", err)
}

// debugOn says whether debug logging is on, for the per-connection and
// per-request lines; a reload of log.level turns it on and off.
func (s *Server) debugOn() bool { return s.log.Enabled(context.Background(), slog.LevelDebug) }

// New returns a server; Serve starts it.
func New(cfg Config, deps Deps) *Server {
	if cfg.MaxFrameBytes <= 0 {
		cfg.MaxFrameBytes = 100 << 20
	}
	if cfg.MaxInflight <= 0 {
		cfg.MaxInflight = 32
	}
	if cfg.FetchMaxWaitCap < 0 {
		cfg.FetchMaxWaitCap = 30 * time.Second
	}
	if cfg.RequestReadTimeout <= 0 {
		cfg.RequestReadTimeout = 30 * time.Second
	}
	if cfg.RequestBudget == nil {
		cfg.RequestBudget = netguard.NewBudget(0)
	}
	if cfg.ResponseBudget == nil {
		cfg.ResponseBudget = netguard.NewBudget(0)
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	return &Server{cfg: cfg, deps: deps, log: deps.Logger, conns: make(map[*conn]struct{}), stopping: make(chan struct{}),
		trouble: ratelog.New(deps.Logger, troubleInterval),
		m:       newMetrics(cfg.Metrics, cfg.TopicLabels)}
}

// Serve accepts connections on ln until Shutdown, within the configured
// limits; errors accepting are retried (netguard.Listener), so only
// Shutdown ends it, and then it returns nil.
func (s *Server) Serve(ln net.Listener) error { return s.ServeListener(ln, DefaultListener) }

// ServeListener is Serve for a listener of its own: its connections get
// its TLS and SASL, and Metadata answers them with its addresses. Each
// listener has its own connection limits.
func (s *Server) ServeListener(ln net.Listener, lst Listener) error {
	gl := netguard.Listen(ln, "kafka", s.cfg.Limits, s.log)
	gl.Register(s.cfg.Metrics, "kafka", lst.Name)
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		gl.Close()
		return nil
	}
	s.lns = append(s.lns, gl)
	s.mu.Unlock()
	for {
		nc, release, err := gl.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return nil
			}
			return err
		}
		c := newConn(s, nc, release, &lst)
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			nc.Close()
			release()
			continue
		}
		s.conns[c] = struct{}{}
		s.connWG.Add(1)
		s.mu.Unlock()
		go c.serve()
	}
}

// Listener is the guarded listener Serve accepts on, once it started.
func (s *Server) Listener() *netguard.Listener {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.lns) == 0 {
		return nil
	}
	return s.lns[0]
}

// RequestBudget and ResponseBudget are the node-wide budgets for request
// bytes and for read-through response bytes.
func (s *Server) RequestBudget() *netguard.Budget  { return s.cfg.RequestBudget }
func (s *Server) ResponseBudget() *netguard.Budget { return s.cfg.ResponseBudget }

// BudgetFull counts read-throughs answered empty because the response
// budget was spent.
func (s *Server) BudgetFull() int64 { return s.budgetFull.Load() }

// IdleClosed and SlowClosed count the connections closed for being idle
// past kafka.idle_timeout and for not reading their answers within
// kafka.write_timeout.
func (s *Server) IdleClosed() int64 { return s.idleClosed.Load() }
func (s *Server) SlowClosed() int64 { return s.slowClosed.Load() }

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.connWG.Done()
}

// Shutdown stops accepting, stops reading new requests, lets requests
// already read finish, and closes every connection. When ctx ends first,
// the remaining connections are closed at once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closing {
		s.closing = true
		close(s.stopping)
		for _, ln := range s.lns {
			ln.Close()
		}
		for c := range s.conns {
			c.stopReading()
		}
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.connWG.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.kill()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

// Conns is the number of open client connections.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func (s *Server) partitionID(topic string, p int32) string {
	return partition.Identity(s.deps.UpstreamName, topic, p)
}
