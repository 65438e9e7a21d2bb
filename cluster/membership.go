package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// GossipConfig says how a node finds its peers and watches them.
type GossipConfig struct {
	// Self is what this node tells its peers: cluster name, node id,
	// advertised Kafka and remoting addresses.
	Self Member
	// Bind is the memberlist address (TCP and UDP); port 0 picks one.
	Bind string
	// Advertise is the address peers reach Bind at; empty means Bind,
	// with the port it was given.
	Advertise string
	// Join lists seeds; a name resolving to several addresses joins them
	// all. Empty forms a new cluster.
	Join []string
	// ProbeInterval is how often a random peer is probed; a peer that
	// misses probes is suspected, and declared dead after
	// SuspicionTimeout unless it refutes it.
	ProbeInterval    time.Duration
	SuspicionTimeout time.Duration
	// Keys are AES keys (16, 24 or 32 bytes) that encrypt and
	// authenticate all gossip: the first encrypts, every one decrypts.
	// A peer without a key this node can read is refused. Empty: gossip
	// in the clear.
	Keys   [][]byte
	Logger *slog.Logger
}

// ErrRefused is the error of a join that a peer, or this node, refused:
// another cluster's node, or a node id already in use. Retrying cannot
// help, so the node does not start.
var ErrRefused = errors.New("cluster: join refused")

// Membership is this node's view of who is in the cluster, kept by
// memberlist, the one failure detector: a peer is a member from the
// moment memberlist reports it alive until it reports it left or dead.
type Membership struct {
	joined    atomic.Bool // see Joined
	ml        *memberlist.Memberlist
	self      Member
	log       *slog.Logger
	encrypted bool // the gossip is encrypted (GossipConfig.Keys)

	mu      sync.Mutex
	members map[string]Member // live peers and this node, by member name
	version uint64
	subs    []func(*View)
	joining bool  // a Join of this node's is under way
	leaving bool  // Leave has begun: the view no longer changes but for departures
	refused error // why it was refused

	view atomic.Pointer[View]
	// advert is what this node tells Kafka clients: the view, less this
	// node once its leave has begun (see Advertised).
	advert  atomic.Pointer[View]
	goingAt bool // the leave has begun; m.mu guards it

	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	once     sync.Once
	stopping atomic.Bool // Leave or Crash has begun
}

// JoinMembership starts memberlist and joins the seeds. When none
// answers, the node serves as a cluster of its own while a goroutine keeps
// trying them with backoff; a refusal ends the start with ErrRefused.
func JoinMembership(cfg GossipConfig) (*Membership, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "cluster")
	suffix := make([]byte, 4)
	rand.Read(suffix)
	self := cfg.Self
	self.Name = fmt.Sprintf("meshka-%d-%s", self.NodeID, hex.EncodeToString(suffix))
	self.Started = time.Now().UnixNano()

	mc := memberlist.DefaultLANConfig()
	mc.Name = self.Name
	host, port, err := splitHostPort("cluster.bind", cfg.Bind)
	if err != nil {
		return nil, err
	}
	mc.BindAddr, mc.BindPort = host, port
	mc.AdvertisePort = 0 // memberlist then advertises the port it bound
	if cfg.Advertise != "" {
		if mc.AdvertiseAddr, mc.AdvertisePort, err = splitHostPort("cluster.advertise_bind", cfg.Advertise); err != nil {
			return nil, err
		}
	}
	if cfg.ProbeInterval > 0 {
		mc.ProbeInterval = cfg.ProbeInterval
		mc.ProbeTimeout = min(mc.ProbeTimeout, cfg.ProbeInterval/2)
		mc.GossipInterval = min(mc.GossipInterval, cfg.ProbeInterval/2)
	}
	if cfg.SuspicionTimeout > 0 {
		// memberlist's timeout is SuspicionMult × probe interval (× log10
		// of the size from 10 nodes up); a maximum multiplier of 1 keeps
		// it there instead of starting up to 6 times longer.
		mc.SuspicionMult = max(1, int(math.Ceil(float64(cfg.SuspicionTimeout)/float64(mc.ProbeInterval))))
		mc.SuspicionMaxTimeoutMult = 1
	}
	if len(cfg.Keys) > 0 {
		ring, err := memberlist.NewKeyring(cfg.Keys[1:], cfg.Keys[0])
		if err != nil {
			return nil, fmt.Errorf("cluster.gossip_keys: %w", err)
		}
		// Verified both ways: nothing in the clear is sent or taken.
		mc.Keyring, mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = ring, true, true
	}
	m := &Membership{self: self, log: log, members: map[string]Member{}, encrypted: len(cfg.Keys) > 0}
	mc.Logger = newStdLogger(log, &m.stopping)
	m.ctx, m.cancel = context.WithCancel(context.Background())
	d := &delegate{m: m}
	mc.Delegate, mc.Events, mc.Alive, mc.Merge = d, d, d, d
	if _, err := self.encode(); err != nil {
		return nil, err
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("cluster.bind %s: %w", cfg.Bind, err)
	}
	m.ml = ml
	if len(cfg.Join) == 0 {
		m.joined.Store(true)
		log.Info("cluster formed", "gossip", m.Self().Gossip)
		return m, nil
	}
	if err := m.join(cfg.Join); err != nil {
		if errors.Is(err, ErrRefused) {
			ml.Shutdown()
			return nil, err
		}
		log.Warn("cluster: no seed answered; serving alone and retrying", "join", cfg.Join, "err", err)
		m.wg.Add(1)
		go func() { defer m.wg.Done(); m.retryJoin(cfg.Join) }()
	}
	return m, nil
}

func (m *Membership) join(seeds []string) error {
	m.mu.Lock()
	m.joining, m.refused = true, nil
	m.mu.Unlock()
	n, err := m.ml.Join(seeds)
	m.mu.Lock()
	refused := m.refused
	m.joining, m.refused = false, nil
	m.mu.Unlock()
	if refused != nil {
		return refused
	}
	if n == 0 {
		if err != nil && keyMismatch(err) {
			return m.keyRefusal(err)
		}
		return err
	}
	m.joined.Store(true)
	m.log.Info("cluster joined", "gossip", m.Self().Gossip, "seeds answering", n, "members", len(m.View().Members))
	return nil
}

// Joined says whether the node is in its cluster: it was given no seeds,
// a seed answered its join, or another node found it. A node whose seeds
// have not answered yet serves alone and is not joined.
func (m *Membership) Joined() bool {
	return m.joined.Load() || len(m.View().Members) > 1
}

// retryJoin tries the seeds from 250 ms apart up to 30 s apart until one
// answers, the node is refused, or it shuts down.
func (m *Membership) retryJoin(seeds []string) {
	wait := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		t := time.NewTimer(wait)
		select {
		case <-m.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if len(m.View().Members) > 1 {
			return // a seed found us meanwhile
		}
		err := m.join(seeds)
		if err == nil {
			return
		}
		if errors.Is(err, ErrRefused) {
			m.log.Error("cluster: join refused; this node stays alone", "err", err)
			return
		}
		if attempt == 1 || attempt%10 == 0 {
			m.log.Warn("cluster: still no seed answering", "join", seeds, "attempts", attempt, "err", err)
		}
		wait = min(wait*2, 30*time.Second)
	}
}

// Self is this node's member entry.
func (m *Membership) Self() Member {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.self
}

// Name is this node's member name, fixed for its start.
func (m *Membership) Name() string { return m.self.Name }

// View is the current membership; never nil after JoinMembership.
func (m *Membership) View() *View { return m.view.Load() }

// Advertised is the view Kafka clients are told of: the view itself, but
// without this node from the moment its leave begins. The actors stay
// where the view puts them until the peers have the news, so this node
// goes on serving what it owns while clients that ask it for metadata
// are sent to the peers, which take over as they hear.
func (m *Membership) Advertised() *View {
	if v := m.advert.Load(); v != nil {
		return v
	}
	return m.View()
}

// Subscribe calls f with every new view, on memberlist's event goroutine,
// in order; f must not block, nor call the Membership but for View and
// Name. It is called once at once with the current
// view.
func (m *Membership) Subscribe(f func(*View)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.subs = append(m.subs, f)
	if v := m.view.Load(); v != nil {
		f(v)
	}
}

// Leave tells the peers this node is going, waiting at most timeout for
// the news to spread, and stops gossiping. The peers drop it at once, and
// then so does its own view: from then on it places every actor on the
// others, so its Metadata names the new owners and its clients are told
// NOT_LEADER_OR_FOLLOWER / NOT_COORDINATOR and move, rather than being
// told it still leads (which sent franz-go back to it until its next
// metadata refresh, up to 5 s later). Only the first Leave or Crash acts.
func (m *Membership) Leave(timeout time.Duration) {
	m.stop(func() {
		if err := m.ml.Leave(timeout); err != nil {
			m.log.Warn("cluster: leave not confirmed", "err", err)
		}
	})
}

// Crash stops gossiping without a word to the peers, as a killed process
// would: they find out by failure detection. For tests.
func (m *Membership) Crash() { m.stop(nil) }

func (m *Membership) stop(leave func()) {
	m.once.Do(func() {
		m.stopping.Store(true)
		m.cancel()
		m.wg.Wait()
		if leave != nil {
			// Clients asking for metadata are sent to the peers at once;
			// the actors here stay until the news has gone out (Leave
			// returns then), so a client the peers send back here while
			// they have not heard is served, not refused. A client told
			// this node leads after all and refused later would wait for
			// its next metadata refresh (up to 5 s for franz-go): the peers
			// moving partitions of their own on the news makes clients
			// refresh while this node still serves.
			m.mu.Lock()
			m.goingAt = true
			m.advertise()
			m.mu.Unlock()
			leave()
			m.mu.Lock()
			m.leaving = true
			delete(m.members, m.self.Name)
			m.publish()
			m.mu.Unlock()
		}
		m.ml.Shutdown()
	})
}

func (m *Membership) update(n *memberlist.Node, live bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n.Name == m.self.Name {
		m.self.Gossip = n.Address()
	}
	if live && m.leaving {
		return // a leaving node places nothing on itself, nor on newcomers
	}
	if live {
		mem, err := decodeMember(n.Name, n.Address(), n.Meta)
		if err != nil {
			m.log.Warn("cluster: ignoring a peer", "err", err)
			return
		}
		for name, o := range m.members {
			if o.NodeID == mem.NodeID && o.Name != mem.Name {
				if o.Started > mem.Started {
					return // an earlier start of a restarted node, not yet declared dead
				}
				delete(m.members, name) // the node restarted: its new start replaces it
			}
		}
		m.members[n.Name] = mem
	} else if n.Name == m.self.Name {
		return // its own leave, already out of its view (stop)
	} else if _, ok := m.members[n.Name]; ok {
		delete(m.members, n.Name)
	} else {
		return
	}
	m.publish()
}

// publish makes the members the current view and tells the subscribers;
// m.mu is held.
func (m *Membership) publish() {
	m.version++
	ms := make([]Member, 0, len(m.members))
	for _, mem := range m.members {
		ms = append(ms, mem)
	}
	v := newView(ms, m.version)
	m.view.Store(v)
	m.advertise()
	for _, f := range m.subs {
		f(v)
	}
}

// advertise sets what Advertised returns; m.mu is held.
func (m *Membership) advertise() {
	if !m.goingAt {
		m.advert.Store(nil)
		return
	}
	v := m.View()
	ms := make([]Member, 0, len(v.Members))
	for _, mem := range v.Members {
		if mem.Name != m.self.Name {
			ms = append(ms, mem)
		}
	}
	m.advert.Store(newView(ms, v.Version))
}

// admit checks a peer before it becomes a member: the same cluster name,
// and a node id that no node at another address has. A node id seen at
// the same address under another member name is that node restarted,
// which replaces its earlier start. err says why not.
func (m *Membership) admit(name, addr string, meta []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if name == m.self.Name {
		return nil
	}
	p, err := decodeMember(name, addr, meta)
	if err != nil {
		return err
	}
	if p.Cluster != m.self.Cluster {
		return fmt.Errorf("%w: the node at %s belongs to cluster %q, this node to %q (cluster.name)", ErrRefused, addr, p.Cluster, m.self.Cluster)
	}
	if p.NodeID == m.self.NodeID && addr != m.self.Gossip {
		return fmt.Errorf("%w: node.id %d is used by both this node (gossip %s) and the node at %s; every node needs its own", ErrRefused, p.NodeID, m.self.Gossip, addr)
	}
	for _, o := range m.members {
		if o.NodeID == p.NodeID && o.Name != p.Name && o.Gossip != addr {
			return fmt.Errorf("%w: node.id %d is used by both the node at %s and the node at %s; every node needs its own", ErrRefused, p.NodeID, o.Gossip, addr)
		}
	}
	return nil
}

// delegate is memberlist's view of the membership.
type delegate struct{ m *Membership }

func (d *delegate) NodeMeta(limit int) []byte {
	b, err := d.m.self.encode()
	if err != nil || len(b) > limit {
		return nil // checked at start
	}
	return b
}

func (d *delegate) NotifyMsg([]byte)                           {}
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *delegate) LocalState(join bool) []byte                { return nil }
func (d *delegate) MergeRemoteState(buf []byte, join bool)     {}

func (d *delegate) NotifyJoin(n *memberlist.Node)   { d.m.update(n, true) }
func (d *delegate) NotifyUpdate(n *memberlist.Node) { d.m.update(n, true) }
func (d *delegate) NotifyLeave(n *memberlist.Node) {
	// memberlist v0.7.0 does not set n.State here, so a leave cannot be
	// told from a failure (hashicorp/memberlist#293).
	if n.Name != d.m.self.Name {
		d.m.log.Info("cluster member left or failed", "member", n.Name, "gossip", n.Address())
	}
	d.m.update(n, false)
}

// NotifyAlive refuses a peer gossip announces that could not be a member.
func (d *delegate) NotifyAlive(n *memberlist.Node) error {
	if err := d.m.admit(n.Name, n.Address(), n.Meta); err != nil {
		d.m.log.Warn("cluster: refused a peer", "err", err)
		return err
	}
	return nil
}

// NotifyMerge checks a join's state exchange on both sides: the seed
// checks the newcomer, the newcomer checks everyone the seed knows; a
// refusal cancels the join on both.
func (d *delegate) NotifyMerge(peers []*memberlist.Node) error {
	for _, n := range peers {
		if n.State != memberlist.StateAlive {
			continue
		}
		if err := d.m.admit(n.Name, n.Address(), n.Meta); err != nil {
			d.m.log.Warn("cluster: refused a join", "err", err)
			d.m.mu.Lock()
			if d.m.joining && d.m.refused == nil {
				d.m.refused = err
			}
			d.m.mu.Unlock()
			return err
		}
	}
	return nil
}

func splitHostPort(key, addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%s %q: %w", key, addr, err)
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("%s %q: bad port", key, addr)
	}
	return host, int(port), nil
}

// keyMismatch says whether a failed join failed because this node and a
// seed answering it do not share a gossip key. memberlist reports it only
// in its errors' text: a seed's answer that no key of this node's
// decrypts, an encrypted answer to a node without keys, or one in the
// clear to a node that requires encryption. TestMembershipRefusesAWrongKey
// holds these to memberlist's wording.
func keyMismatch(err error) bool {
	s := err.Error()
	return strings.Contains(s, "no installed keys could decrypt") ||
		strings.Contains(s, "encryption is not configured") ||
		strings.Contains(s, "remote state is not encrypted")
}

// keyRefusal is the ErrRefused of a join whose seeds gossip with other
// keys than this node's: configuration, which retrying cannot mend.
func (m *Membership) keyRefusal(err error) error {
	if !m.encrypted {
		return fmt.Errorf("%w: the seeds encrypt their gossip and this node has no gossip key; set cluster.gossip_keys (or cluster.gossip_key_file) to the cluster's keys: %v", ErrRefused, err)
	}
	return fmt.Errorf("%w: this node and the seeds share no gossip key (or they gossip in the clear); cluster.gossip_keys (or cluster.gossip_key_file) must hold the key the others encrypt with: %v", ErrRefused, err)
}
