// Package group is the consumer group coordinator: one actor per group id
// runs Kafka's classic membership protocol (JoinGroup, SyncGroup,
// Heartbeat, LeaveGroup, static membership). Committed offsets are not
// kept here; they live upstream under the same group id.
package group

import (
	"bytes"
	"cmp"
	"log/slog"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Config is shared by all group actors on a node. Zero fields take Kafka's
// broker defaults, except InitialRebalanceDelay, which meshka leaves at 0.
type Config struct {
	InitialRebalanceDelay time.Duration // group.initial.rebalance.delay.ms
	MinSessionTimeout     time.Duration // group.min.session.timeout.ms; default 6s
	MaxSessionTimeout     time.Duration // group.max.session.timeout.ms; default 30m
	MaxSize               int           // group.max.size; 0 is unlimited
	Logger                *slog.Logger
	// Now and AfterFunc are the actor's clock: nil is time.Now and
	// time.AfterFunc. AfterFunc runs f once d has passed and returns what
	// stops it (as a time.Timer's Stop); tests drive a fake clock.
	Now       func() time.Time
	AfterFunc func(d time.Duration, f func()) (stop func() bool)
}

func (c Config) withDefaults() Config {
	if c.MinSessionTimeout <= 0 {
		c.MinSessionTimeout = 6 * time.Second
	}
	if c.MaxSessionTimeout <= 0 {
		c.MaxSessionTimeout = 30 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.AfterFunc == nil {
		c.AfterFunc = func(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }
	}
	return c
}

// State is a group's state as DescribeGroups and ListGroups name it.
type State int8

const (
	// Dead is a group that does not exist: never joined, or deleted. It is
	// the zero state because an actor is activated by any request naming
	// the group, including a DescribeGroups of a group nobody uses.
	Dead State = iota
	Empty
	PreparingRebalance
	CompletingRebalance
	Stable
)

func (s State) String() string {
	switch s {
	case Empty:
		return "Empty"
	case PreparingRebalance:
		return "PreparingRebalance"
	case CompletingRebalance:
		return "CompletingRebalance"
	case Stable:
		return "Stable"
	default:
		return "Dead"
	}
}

// Waiter is whatever the caller uses to route a response back to a client;
// the group only hands it back in a Reply.
type Waiter any

// Reply is a response for the client behind To.
type Reply struct {
	To   Waiter
	Resp kmsg.Response
}

type member struct {
	id         string
	instanceID *string
	clientID   string
	clientHost string
	protocols  []kmsg.JoinGroupRequestProtocol
	session    time.Duration
	rebalance  time.Duration
	seq        uint64    // join order: member lists come out in it
	expires    time.Time // session end; not applied while a request is parked
	assignment []byte

	// A parked request waits for the rebalance or the leader's assignment.
	join   *kmsg.JoinGroupRequest
	joinTo Waiter
	sync   *kmsg.SyncGroupRequest
	syncTo Waiter
}

// parked members are exempt from session expiry, as in Kafka: a client
// inside a long JoinGroup or SyncGroup call cannot heartbeat.
func (m *member) parked() bool { return m.join != nil || m.sync != nil }

func (m *member) metadata(protocol string) ([]byte, bool) {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata, true
		}
	}
	return nil, false
}

func (m *member) sameProtocols(ps []kmsg.JoinGroupRequestProtocol) bool {
	return slices.EqualFunc(m.protocols, ps, func(a, b kmsg.JoinGroupRequestProtocol) bool {
		return a.Name == b.Name && bytes.Equal(a.Metadata, b.Metadata)
	})
}

// Group is one consumer group's coordinator state machine. It does no I/O
// and keeps no clock: callers pass the time in, deliver the Replies it
// returns, and call Tick at NextDeadline. Not safe for concurrent use.
type Group struct {
	id  string
	cfg Config

	state        State
	generation   int32
	protocolType string
	protocol     string
	leader       string

	members map[string]*member
	static  map[string]string    // instance id → member id
	pending map[string]time.Time // ids handed out with MEMBER_ID_REQUIRED → when they lapse
	seq     uint64

	joinDeadline time.Time // PreparingRebalance ends here whoever has rejoined
	initialDelay bool      // the join phase is the initial delay: only its deadline ends it
	delayLeft    time.Duration
	newcomer     bool // a member arrived during the current initial delay

	// Members of this generation that have not sent SyncGroup by
	// syncDeadline are dropped, so a leader that never assigns cannot hold
	// the group in CompletingRebalance.
	unsynced     map[string]bool
	syncDeadline time.Time
}

// NewGroup returns the state machine for group id, in state Dead.
func NewGroup(id string, cfg Config) *Group {
	g := &Group{id: id, cfg: cfg.withDefaults()}
	g.reset()
	return g
}

func (g *Group) reset() {
	*g = Group{id: g.id, cfg: g.cfg,
		members: make(map[string]*member), static: make(map[string]string), pending: make(map[string]time.Time)}
}

// ID is the group id.
func (g *Group) ID() string { return g.id }

// State is the group's current state.
func (g *Group) State() State { return g.state }

// Generation is the current generation id.
func (g *Group) Generation() int32 { return g.generation }

// NextDeadline is when Tick should next run; false when nothing is timed.
func (g *Group) NextDeadline() (time.Time, bool) {
	var at time.Time
	ok := false
	consider := func(t time.Time) {
		if !ok || t.Before(at) {
			at, ok = t, true
		}
	}
	for _, t := range g.pending {
		consider(t)
	}
	for _, m := range g.members {
		if !m.parked() {
			consider(m.expires)
		}
	}
	if g.state == PreparingRebalance {
		consider(g.joinDeadline)
	}
	if (g.state == CompletingRebalance || g.state == Stable) && len(g.unsynced) > 0 {
		consider(g.syncDeadline)
	}
	return at, ok
}

// Tick applies every deadline that has passed by now: lapsed pending member
// ids, expired sessions, members that never synced, the end of the join
// phase.
func (g *Group) Tick(now time.Time) []Reply {
	var out []Reply
	lapsed := false
	for id, t := range g.pending {
		if !now.Before(t) {
			delete(g.pending, id)
			lapsed = true
		}
	}
	removed := false
	for _, m := range g.sortedMembers() {
		if !m.parked() && !now.Before(m.expires) {
			out = append(out, g.removeMember(m, kerr.UnknownMemberID.Code)...)
			removed = true
		}
	}
	if (g.state == CompletingRebalance || g.state == Stable) && len(g.unsynced) > 0 && !now.Before(g.syncDeadline) {
		for _, m := range g.sortedMembers() {
			if g.unsynced[m.id] {
				out = append(out, g.removeMember(m, kerr.UnknownMemberID.Code)...)
				removed = true
			}
		}
	}
	if removed {
		out = append(out, g.membersChanged(now)...)
	}
	if g.state == PreparingRebalance {
		if !now.Before(g.joinDeadline) {
			out = append(out, g.joinPhaseOver(now)...)
		} else if lapsed {
			out = append(out, g.maybeCompleteJoin(now)...)
		}
	}
	return out
}

// Shutdown answers every parked request with NOT_COORDINATOR, so clients
// look the coordinator up again and find the group's next home.
func (g *Group) Shutdown() []Reply {
	var out []Reply
	for _, m := range g.sortedMembers() {
		out = append(out, g.unpark(m, kerr.NotCoordinator.Code)...)
	}
	return out
}

func (g *Group) sortedMembers() []*member {
	ms := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b *member) int { return cmp.Compare(a.seq, b.seq) })
	return ms
}

// validateMember applies Kafka's order: a request naming an instance id
// now held by another member id is from a replaced process and is fenced,
// whatever else is wrong with it.
func (g *Group) validateMember(memberID string, instanceID *string) int16 {
	if instanceID != nil {
		owner, ok := g.static[*instanceID]
		if !ok {
			return kerr.UnknownMemberID.Code
		}
		if owner != memberID {
			return kerr.FencedInstanceID.Code
		}
	}
	if _, ok := g.members[memberID]; !ok {
		return kerr.UnknownMemberID.Code
	}
	return 0
}

func (g *Group) addMember(m *member, protocolType string) {
	if len(g.members) == 0 {
		g.protocolType = protocolType
	}
	g.seq++
	m.seq = g.seq
	g.members[m.id] = m
	if m.instanceID != nil {
		g.static[*m.instanceID] = m.id
	}
	delete(g.pending, m.id)
	if g.state == PreparingRebalance && g.initialDelay {
		g.newcomer = true
	}
}

// removeMember drops m, answering what it has parked with code. The caller
// decides when the group reacts (membersChanged), so a batch of removals
// starts one rebalance.
func (g *Group) removeMember(m *member, code int16) []Reply {
	out := g.unpark(m, code)
	delete(g.members, m.id)
	if m.instanceID != nil && g.static[*m.instanceID] == m.id {
		delete(g.static, *m.instanceID)
	}
	delete(g.unsynced, m.id)
	if g.leader == m.id {
		g.leader = ""
	}
	return out
}

// membersChanged starts a rebalance after members left, as Kafka does even
// for the last one: the join phase then completes at once into Empty with a
// new generation, so stale generations cannot commit.
func (g *Group) membersChanged(now time.Time) []Reply {
	switch g.state {
	case Stable, CompletingRebalance:
		return g.prepareRebalance(now)
	case PreparingRebalance:
		return g.maybeCompleteJoin(now)
	}
	return nil
}

// unpark answers m's parked requests with an error.
func (g *Group) unpark(m *member, code int16) []Reply {
	var out []Reply
	if m.join != nil {
		out = append(out, Reply{m.joinTo, joinError(m.join, code, m.id)})
		m.join, m.joinTo = nil, nil
	}
	if m.sync != nil {
		out = append(out, Reply{m.syncTo, syncError(m.sync, code)})
		m.sync, m.syncTo = nil, nil
	}
	return out
}

func (g *Group) rebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalance)
	}
	return d
}
