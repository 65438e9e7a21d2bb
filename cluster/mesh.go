// Package cluster runs meshka's actor cluster: membership (memberlist),
// placement of actors by identity over the live members, their activation
// on the owning node, and the registry of nodes that Kafka metadata names.
package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// Config says how this node joins the mesh.
type Config struct {
	// Gossip is the membership; its Self names the cluster, the node id
	// and the advertised Kafka address (the remoting address is filled in).
	Gossip GossipConfig
	// Remote is the host:port actor remoting binds (port 0 picks one;
	// empty: no remoting, and no message crosses nodes); AdvertiseRemote
	// what peers dial instead, behind NAT.
	Remote          string
	AdvertiseRemote string
	// RemoteTLS, when set, puts remoting under mutual TLS.
	RemoteTLS *RemoteTLS
	Kinds     map[string]*actor.Props // actor kinds this node hosts
	// Spread names the kinds whose identities are spread evenly, as a
	// topic's partitions are (see Spreader); the rest are placed by
	// rendezvous hashing alone.
	Spread map[string]Spreader
	Logger *slog.Logger
}

// Remoting's bounds: messages waiting for one peer, messages sent to it
// in one gRPC message, and the largest gRPC message a node takes (a batch
// of answers to reads through the mesh, each about 1 MiB of records, or
// one record batch as large as a topic allows).
const (
	remoteQueue      = 16384
	remoteBatch      = 16
	remoteMaxMessage = 64 << 20
	remoteWindow     = 8 << 20
)

// Activate is the first message of every activation: the kind and
// identity it serves. Nothing is delivered to an activation before it.
type Activate struct {
	Kind, Identity string
	// for the activation's mailbox (Mailbox), which answers for it once
	// it has stopped
	system *actor.ActorSystem
	self   *actor.PID
}

// Relinquish tells an activation that its node no longer owns it. The
// activation must stop once it has answered what it had accepted (the
// partition actor, once its produce pipeline is empty); it gets nothing
// new meanwhile, since Send refuses what this node does not own.
type Relinquish struct{}

// ErrNotOwner is Send's error for an actor another node owns in this
// node's view: a Kafka client is told NOT_LEADER_OR_FOLLOWER or
// NOT_COORDINATOR and asks again where the metadata now points.
var ErrNotOwner = errors.New("cluster: another node owns the actor")

// Mesh is this node's part of the actor cluster: it activates on this
// node the actors this node owns, in its current view of the members, and
// stops those it no longer owns when the view changes. Safe for
// concurrent use; Send never blocks on the network.
type Mesh struct {
	system  *actor.ActorSystem
	remote  *remote.Remote
	members *Membership
	kinds   map[string]*actor.Props
	spread  map[string]Spreader
	log     *slog.Logger

	mu      sync.Mutex
	local   map[key]*actor.PID
	byPID   map[string]key
	seq     uint64
	stopped bool
	// The views taken, oldest first (history.go); founder: the first
	// held this node alone; trimmed: older ones were forgotten.
	history []datedView
	founder bool
	trimmed bool
}

type key struct{ kind, identity string }

// Start starts actor remoting and joins the cluster.
func Start(cfg Config) (*Mesh, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	// protoactor logs its own lifecycle at info; keep it to warnings.
	quiet := slog.New(levelFloor{logger.Handler(), slog.LevelWarn}).With("component", "actors")
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
	m := &Mesh{system: system, kinds: map[string]*actor.Props{}, spread: cfg.Spread, log: logger.With("component", "cluster"),
		local: map[key]*actor.PID{}, byPID: map[string]key{}}
	for name, props := range cfg.Kinds {
		m.kinds[name] = props.Configure(actor.WithReceiverMiddleware(m.track))
	}
	// The router takes messages from other nodes; it runs before remoting
	// starts so none finds it missing.
	if _, err := system.Root.SpawnNamed(actor.PropsFromFunc(m.router), routerName); err != nil {
		return nil, fmt.Errorf("cluster: starting the router: %w", err)
	}
	if cfg.Remote != "" {
		host, port, err := splitHostPort("cluster.remote", cfg.Remote)
		if err != nil {
			return nil, err
		}
		serverCreds := []grpc.ServerOption{}
		dialCreds := grpc.WithTransportCredentials(insecure.NewCredentials())
		if t := cfg.RemoteTLS; t != nil {
			serverCreds = append(serverCreds, grpc.Creds(credentials.NewTLS(withH2(t.Server))))
			dialCreds = grpc.WithTransportCredentials(credentials.NewTLS(t.Client))
		}
		opts := []remote.ConfigOption{
			// Bounds: protoactor queues up to a million messages per
			// peer by default, in batches of a thousand.
			remote.WithEndpointWriterQueueSize(remoteQueue),
			remote.WithEndpointWriterBatchSize(remoteBatch),
			remote.WithServerOptions(append(serverCreds, grpc.MaxRecvMsgSize(remoteMaxMessage),
				grpc.InitialWindowSize(remoteWindow), grpc.InitialConnWindowSize(remoteWindow))...),
			remote.WithDialOptions(dialCreds,
				grpc.WithInitialWindowSize(remoteWindow), grpc.WithInitialConnWindowSize(remoteWindow)),
		}
		if cfg.AdvertiseRemote != "" {
			opts = append(opts, remote.WithAdvertisedHost(cfg.AdvertiseRemote))
		}
		m.remote = remote.NewRemote(system, remote.Configure(host, port, opts...))
		if err := startRemote(m.remote); err != nil {
			return nil, fmt.Errorf("cluster.remote %s: %w", cfg.Remote, err)
		}
		cfg.Gossip.Self.Remote = system.Address()
	}
	if cfg.Gossip.Logger == nil {
		cfg.Gossip.Logger = logger
	}
	members, err := JoinMembership(cfg.Gossip)
	if err != nil {
		m.stopRemote()
		return nil, err
	}
	m.members = members
	members.Subscribe(m.placeAgain)
	return m, nil
}

// startRemote turns protoactor's panics on a failed bind into an error.
func startRemote(r *remote.Remote) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	r.Start()
	return nil
}

func (m *Mesh) stopRemote() {
	if m.remote != nil {
		m.remote.Shutdown(true)
	}
}

// Members is the membership this mesh places by.
func (m *Mesh) Members() *Membership { return m.members }

// System is the actor system, for sending to PIDs.
func (m *Mesh) System() *actor.ActorSystem { return m.system }

// Owner is the member that hosts the actor of kind and identity in the
// current view (false when the view is empty: this node has left).
func (m *Mesh) Owner(kind, identity string) (Member, bool) {
	return place(m.members.View(), kind, identity, m.spread[kind])
}

// AdvertisedOwner is the member Kafka clients are told hosts the actor:
// the owner in the advertised view (see Membership.Advertised).
func (m *Mesh) AdvertisedOwner(kind, identity string) (Member, bool) {
	return place(m.members.Advertised(), kind, identity, m.spread[kind])
}

// Owns says whether this node owns the actor of kind and identity in its
// current view.
func (m *Mesh) Owns(kind, identity string) bool {
	o, ok := m.Owner(kind, identity)
	return ok && o.Name == m.members.Name()
}

// PID resolves the actor with this identity, activating it here if this
// node owns it; ErrNotOwner when another node does.
func (m *Mesh) PID(kind, identity string) (*actor.PID, error) {
	owner, ok := m.Owner(kind, identity)
	if !ok || owner.Name != m.members.Name() {
		return nil, fmt.Errorf("%w: %s %q is node %d's", ErrNotOwner, kind, identity, owner.NodeID)
	}
	k := key{kind, identity}
	m.mu.Lock()
	defer m.mu.Unlock()
	if pid := m.local[k]; pid != nil {
		return pid, nil
	}
	if m.stopped {
		return nil, fmt.Errorf("cluster: node stopping, no %s actor for %q", kind, identity)
	}
	props := m.kinds[kind]
	if props == nil {
		return nil, fmt.Errorf("cluster: no actor kind %q on this node", kind)
	}
	// A name of its own per activation: an earlier one of the same
	// identity may still be stopping.
	m.seq++
	pid, err := m.system.Root.SpawnNamed(props, fmt.Sprintf("%s/%s#%d", kind, identity, m.seq))
	if err != nil {
		return nil, fmt.Errorf("cluster: activating %s %q: %w", kind, identity, err)
	}
	// Sent before the PID is published, so Activate comes first.
	m.system.Root.Send(pid, &Activate{Kind: kind, Identity: identity, system: m.system, self: pid})
	m.local[k] = pid
	m.byPID[pid.Id] = k
	return pid, nil
}

// Send delivers msg to the actor with this identity. Messages from one
// goroutine to one actor arrive in the order sent.
func (m *Mesh) Send(kind, identity string, msg any) error {
	pid, err := m.PID(kind, identity)
	if err != nil {
		return err
	}
	m.system.Root.Send(pid, msg)
	return nil
}

// track forgets an activation once it has stopped, whatever stopped it,
// so the next message activates a new one.
func (m *Mesh) track(next actor.ReceiverFunc) actor.ReceiverFunc {
	return func(c actor.ReceiverContext, env *actor.MessageEnvelope) {
		next(c, env)
		if _, ok := env.Message.(*actor.Stopped); ok {
			m.mu.Lock()
			if k, ok := m.byPID[c.Self().Id]; ok {
				delete(m.byPID, c.Self().Id)
				if pid := m.local[k]; pid != nil && pid.Id == c.Self().Id {
					delete(m.local, k)
				}
			}
			m.mu.Unlock()
		}
	}
}

// placeAgain relinquishes the activations this node no longer owns in the
// new view: each finishes what it had accepted (batches already on their
// way upstream get upstream's answer, not an error that would make a
// client send them again) and stops. Requests that reach this node after
// the change are refused (ErrNotOwner) and the clients go to the new
// owner, which activates the actor there; what the old activation still
// does goes to upstream, which stays the truth.
func (m *Mesh) placeAgain(v *View) {
	self := m.members.Name()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.remember(v, time.Now())
	moved := 0
	for k, pid := range m.local {
		if o, ok := place(v, k.kind, k.identity, m.spread[k.kind]); ok && o.Name == self {
			continue
		}
		delete(m.local, k)
		m.system.Root.Send(pid, &Relinquish{})
		moved++
	}
	switch {
	case moved == 0:
	case len(v.Members) == 0:
		m.log.Info("leaving: actors stop here", "actors", moved)
	default:
		m.log.Info("actors moved to other nodes", "stopped here", moved, "members", len(v.Members))
	}
}

// Leave tells the peers this node is going, waiting at most timeout for
// the news to spread; they take its actors at once. This node's own view
// drops it first, so its clients are sent to the others, and its actors
// stop once their mailboxes are done (see Membership.Leave).
func (m *Mesh) Leave(timeout time.Duration) { m.members.Leave(timeout) }

// Crash stops gossiping without a word, as a killed node would; the peers
// find out by failure detection. For tests.
func (m *Mesh) Crash() { m.members.Crash() }

// Stop stops every actor on this node and actor remoting, leaving the
// cluster first (within 5 s) unless Leave or Crash did.
func (m *Mesh) Stop() {
	m.members.Leave(5 * time.Second)
	m.mu.Lock()
	m.stopped = true
	pids := make([]*actor.PID, 0, len(m.local))
	for k, pid := range m.local {
		pids = append(pids, pid)
		delete(m.local, k)
	}
	m.mu.Unlock()
	for _, pid := range pids {
		m.system.Root.StopFuture(pid).Wait()
	}
	m.stopRemote()
}

// Active reports whether an activation of kind and identity runs on this
// node now.
func (m *Mesh) Active(kind, identity string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.local[key{kind, identity}] != nil
}

// Activations are the identities of kind active on this node now, sorted.
func (m *Mesh) Activations(kind string) []string {
	m.mu.Lock()
	var out []string
	for k := range m.local {
		if k.kind == kind {
			out = append(out, k.identity)
		}
	}
	m.mu.Unlock()
	slices.Sort(out)
	return out
}
