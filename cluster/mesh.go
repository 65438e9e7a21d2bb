// Package cluster runs meshka's actor cluster: membership, placement of
// actors by identity, and the registry of nodes that Kafka metadata names.
package cluster

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"
)

// Config says how this node joins the mesh.
type Config struct {
	Name   string                  // cluster name; nodes with the same name form one mesh
	Bind   string                  // host:port for actor remoting
	Kinds  map[string]*actor.Props // actor kinds this node hosts
	Logger *slog.Logger
}

// Mesh is this node's membership in the actor cluster. Safe for concurrent
// use; Send never blocks on the network for node-local actors.
type Mesh struct {
	system *actor.ActorSystem
	cl     *cluster.Cluster

	mu   sync.RWMutex
	pids map[key]*actor.PID
}

type key struct{ kind, identity string }

// Start joins (today: forms) the cluster and activates actors on demand.
func Start(cfg Config) (*Mesh, error) {
	host, portStr, err := net.SplitHostPort(cfg.Bind)
	if err != nil {
		return nil, fmt.Errorf("cluster bind %q: %w", cfg.Bind, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("cluster bind %q: bad port", cfg.Bind)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	// protoactor logs its own lifecycle at info; keep it to warnings.
	quiet := slog.New(levelFloor{logger.Handler(), slog.LevelWarn}).With("component", "actors")
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
	kinds := make([]*cluster.Kind, 0, len(cfg.Kinds))
	for name, props := range cfg.Kinds {
		kinds = append(kinds, cluster.NewKind(name, props))
	}
	rc := remote.Configure(host, port)
	cc := cluster.Configure(cfg.Name, singleNode{}, disthash.New(), rc, cluster.WithKinds(kinds...))
	cl := cluster.New(system, cc)
	if err := startMember(cl); err != nil {
		return nil, err
	}
	m := &Mesh{system: system, cl: cl, pids: make(map[key]*actor.PID)}
	system.EventStream.Subscribe(func(evt any) {
		if t, ok := evt.(*cluster.ActivationTerminating); ok && t.ClusterIdentity != nil {
			m.mu.Lock()
			delete(m.pids, key{t.ClusterIdentity.Kind, t.ClusterIdentity.Identity})
			m.mu.Unlock()
		}
	})
	return m, nil
}

// startMember turns protoactor's panics on a failed start into an error.
func startMember(cl *cluster.Cluster) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("cluster start: %v", r)
		}
	}()
	cl.StartMember()
	return nil
}

// System is the actor system, for sending to PIDs.
func (m *Mesh) System() *actor.ActorSystem { return m.system }

// PID resolves the actor with this identity, activating it if needed.
func (m *Mesh) PID(kind, identity string) (*actor.PID, error) {
	k := key{kind, identity}
	m.mu.RLock()
	pid := m.pids[k]
	m.mu.RUnlock()
	if pid != nil {
		return pid, nil
	}
	pid = m.cl.Get(identity, kind)
	if pid == nil {
		return nil, fmt.Errorf("cluster: no %s actor for %q", kind, identity)
	}
	m.mu.Lock()
	m.pids[k] = pid
	m.mu.Unlock()
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

// Stop stops every actor on this node and leaves the cluster.
func (m *Mesh) Stop() {
	m.cl.Shutdown(false)
}
