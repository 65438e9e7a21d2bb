package mesh

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/meshka/meshka/actors/lease"
	"github.com/meshka/meshka/cluster"
)

// ErrLeaseSuperseded is Acquire's error when a later Acquire of the same
// name and id, from anywhere in the cluster, took its place before it was
// granted: the latest acquirer wins (an MQTT client's latest CONNECT).
var ErrLeaseSuperseded = errors.New("superseded by a later acquirer")

// LeaseOptions name a lease and say how its holder takes part.
type LeaseOptions struct {
	// Name is the namespace, "mqtt-session" say; it holds no '/'.
	Name string
	// ID is what is leased within the namespace (a client id): any
	// string but the empty one.
	ID string
	// Holder describes the holder, for logs and for the holder it takes
	// the lease from (Taker); "node <id>" when empty.
	Holder string
	// RevokeTimeout is how long the current holder, once told to give
	// the lease up for this Acquire, has to Release it before the lease
	// actor grants it anyway (5 s when 0, at most a minute).
	RevokeTimeout time.Duration
	// RenewInterval is how often the holder renews the lease (2 s when 0,
	// at most 2 s, at least 10 ms); the lease actor drops a holder that
	// has not renewed within three intervals.
	RenewInterval time.Duration
	// OnRevoked, when set, is called once, on a goroutine of its own,
	// when the holder must give the lease up: another Acquire takes it,
	// or the lease was lost (the actor no longer knows this holder), or
	// the Mesh closed. Not after Release. It saves the holder a
	// goroutine waiting on Revoked.
	OnRevoked func()
}

func (o *LeaseOptions) withDefaults(m *Mesh) error {
	switch {
	case o.Name == "":
		return errors.New("mesh: lease: no name")
	case strings.IndexByte(o.Name, '/') >= 0:
		return fmt.Errorf("mesh: lease name %q: it holds a '/'", o.Name)
	case o.ID == "":
		return fmt.Errorf("mesh: lease %s: no id", o.Name)
	case o.RevokeTimeout < 0 || o.RevokeTimeout > lease.MaxWait:
		return fmt.Errorf("mesh: lease %s: revoke timeout %s, want 0 (the default, %s) up to %s",
			o.Name, o.RevokeTimeout, lease.DefaultRevokeTimeout, lease.MaxWait)
	case o.RenewInterval != 0 && (o.RenewInterval < minRenewInterval || o.RenewInterval > lease.MaxRenewInterval):
		return fmt.Errorf("mesh: lease %s: renew interval %s, want %s up to %s (0: %s)",
			o.Name, o.RenewInterval, minRenewInterval, lease.MaxRenewInterval, lease.MaxRenewInterval)
	}
	if o.RevokeTimeout == 0 {
		o.RevokeTimeout = lease.DefaultRevokeTimeout
	}
	if o.RenewInterval == 0 {
		o.RenewInterval = lease.MaxRenewInterval
	}
	if o.Holder == "" {
		o.Holder = fmt.Sprintf("node %d", m.cluster.Members().Self().NodeID)
	}
	return nil
}

const (
	minRenewInterval = 10 * time.Millisecond
	// leaseSilence is how much longer than an ask's wait the asker waits
	// for any answer: past it, the lease actor is taken for lost.
	leaseSilence = 5 * time.Second
	// renewRetry paces renews that found no lease actor (it is moving),
	// so that the holder reaches the new one within its grace period.
	renewRetry = 200 * time.Millisecond
)

// Lease is exclusive, cluster-wide ownership of a name and id, granted
// by the lease actor of that name (kind lease, placed on a node of the
// cluster like any actor) until Release, or until the holder is told to
// give it up for another Acquire. Its holder renews it on a goroutine of
// the Mesh. Safe for concurrent use.
type Lease struct {
	m        *Mesh
	o        LeaseOptions
	identity string
	holder   *lease.Holder
	pid      *actor.PID // the holder's process: takes Revoke from any node
	epoch    uint64     // set once granted, before Acquire returns

	cancel  context.CancelFunc // ends the renew loop
	stopped chan struct{}      // closed once the renew loop has ended

	mu        sync.Mutex
	taker     string
	revokedAt uint64 // the highest epoch a Revoke named
	revoked   chan struct{}
	isRevoked bool
	released  bool // Release was called: OnRevoked is not

	dropOnce    sync.Once
	releaseOnce sync.Once
	releaseErr  error
}

// Acquire asks for the lease of o.Name and o.ID and blocks until it is
// granted, or ctx ends. When another holder has it, that holder is told
// to give it up (its Revoked closes, its Taker names o.Holder), and the
// lease is granted once it releases it, once o.RevokeTimeout passes, or
// once it is known gone (its node left the cluster, or it stopped
// renewing). Of several Acquires waiting, the latest wins: the others
// return ErrLeaseSuperseded. After the lease actor moved (a node joined,
// left or died), its new activation grants nothing for a grace period
// (6 s) unless its node has owned the name for longer, so that a holder
// that survived renews there first and is taken over, not doubled.
func (m *Mesh) Acquire(ctx context.Context, o LeaseOptions) (*Lease, error) {
	if err := o.withDefaults(m); err != nil {
		return nil, err
	}
	l := &Lease{m: m, o: o, identity: lease.Identity(o.Name, o.ID), stopped: make(chan struct{}), revoked: make(chan struct{})}
	if !m.addLease(l) {
		return nil, ErrClosed
	}
	epoch, err := l.acquire(ctx)
	if err != nil {
		l.drop()
		return nil, err
	}
	l.mu.Lock()
	l.epoch = epoch
	if l.revokedAt >= epoch {
		l.closeRevoked() // told to give it up before the grant's answer came
	}
	l.mu.Unlock()
	rctx, cancel := context.WithCancel(m.ctx)
	l.cancel = cancel
	if !m.goroutine(func() { l.renew(rctx) }) {
		cancel()
		close(l.stopped)
		l.drop()
		return nil, ErrClosed
	}
	return l, nil
}

// Epoch is the grant's fencing token: it is higher than the epoch of
// every earlier grant of the name and id, also across moves of the lease
// actor (as long as the nodes' clocks agree within the grace period).
// Write it with what the holder stores, and refuse writes of a lower one.
func (l *Lease) Epoch() uint64 { return l.epoch }

// Revoked is closed when the holder must give the lease up: another
// Acquire asks for it (Taker says whose), the lease actor no longer
// counts this holder as holding it (it stopped renewing, or its revoke
// timeout passed), the holder released it, or the Mesh closed. Give up
// what the lease guards and Release it: the acquirer waiting is granted
// it at once.
func (l *Lease) Revoked() <-chan struct{} { return l.revoked }

// Taker is, once Revoked is closed, the Holder of the Acquire that takes
// the lease over, when the lease actor said ("" otherwise).
func (l *Lease) Taker() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.taker
}

// Release gives the lease up, waiting until ctx ends for the lease actor
// to take it, and stops renewing it; the acquirer waiting is granted it
// at once. It may be called any number of times, from any goroutine:
// calls after the first return the first one's answer. A Release whose
// ctx ends first leaves the lease abandoned: the lease actor drops it
// after three renew intervals.
func (l *Lease) Release(ctx context.Context) error {
	l.releaseOnce.Do(func() { l.releaseErr = l.release(ctx) })
	return l.releaseErr
}

func (l *Lease) release(ctx context.Context) error {
	l.mu.Lock()
	l.released = true
	l.mu.Unlock()
	l.cancel()
	<-l.stopped
	l.drop()
	if l.m.ctx.Err() != nil {
		return nil // abandoned with the Mesh
	}
	req := &lease.ReleaseRequest{Holder: l.holder, Epoch: l.epoch}
	for {
		rctx, cancel := context.WithTimeout(ctx, leaseSilence)
		v, err := l.m.cluster.Request(rctx, lease.Kind, l.identity, req)
		cancel()
		if err == nil {
			if resp, ok := v.(*lease.ReleaseResponse); !ok || resp.Code != lease.Code_OK {
				return fmt.Errorf("mesh: lease %q: release answered %v", l.identity, v)
			}
			return nil
		}
		if !leaseRetriable(ctx, err) {
			return fmt.Errorf("mesh: lease %q: release: %w", l.identity, err)
		}
		pause(ctx, retryWait)
		if ctx.Err() != nil {
			return fmt.Errorf("mesh: lease %q: release: %w (last: %v)", l.identity, ctx.Err(), err)
		}
	}
}

// acquire asks the lease actor, wherever it is, until it grants the
// lease or refuses for good: while it moves (refused, stopped before
// answering, unreachable, silent), or parks the ask past its wait, it is
// asked again.
func (l *Lease) acquire(ctx context.Context) (uint64, error) {
	var last error
	for {
		if l.m.ctx.Err() != nil {
			return 0, ErrClosed
		}
		wait := lease.DefaultWait
		if dl, ok := ctx.Deadline(); ok {
			wait = min(wait, max(time.Until(dl), time.Millisecond))
		}
		req := &lease.AcquireRequest{Holder: l.holder, TimeoutMillis: int32(wait / time.Millisecond),
			RevokeTimeoutMillis: int32(l.o.RevokeTimeout / time.Millisecond), RenewMillis: int32(l.o.RenewInterval / time.Millisecond)}
		actx, cancel := context.WithTimeout(ctx, wait+leaseSilence)
		stop := context.AfterFunc(l.m.ctx, cancel)
		v, err := l.m.cluster.Request(actx, lease.Kind, l.identity, req)
		stop()
		cancel()
		if err == nil {
			resp, ok := v.(*lease.AcquireResponse)
			if !ok {
				return 0, fmt.Errorf("mesh: lease %q: answered %T", l.identity, v)
			}
			switch resp.Code {
			case lease.Code_OK:
				return resp.Epoch, nil
			case lease.Code_SUPERSEDED:
				return 0, fmt.Errorf("mesh: lease %q: %w", l.identity, ErrLeaseSuperseded)
			case lease.Code_TIMEOUT, lease.Code_MOVED:
				last = errors.New(resp.Error)
				if ctx.Err() == nil {
					continue
				}
			default:
				return 0, fmt.Errorf("mesh: lease %q: %s", l.identity, resp.Error)
			}
		} else if l.m.ctx.Err() != nil {
			return 0, ErrClosed
		} else if !leaseRetriable(ctx, err) {
			l.withdraw()
			return 0, fmt.Errorf("mesh: lease %q: %w", l.identity, err)
		} else {
			last = err
			pause(ctx, retryWait)
		}
		if ctx.Err() != nil {
			l.withdraw()
			return 0, fmt.Errorf("mesh: lease %q: %w (last: %v)", l.identity, ctx.Err(), last)
		}
	}
}

// leaseRetriable says whether err passes once the lease actor settles:
// it moves, its node died, or one ask went unanswered.
func leaseRetriable(ctx context.Context, err error) bool {
	return errors.Is(err, cluster.ErrNotOwner) || errors.Is(err, cluster.ErrGone) || errors.Is(err, cluster.ErrUnreachable) ||
		(ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded))
}

// withdraw tells the lease actor, without waiting, that this acquirer
// gave up: it is not granted the lease later (or gives it back at once,
// had it been granted meanwhile).
func (l *Lease) withdraw() {
	_ = l.m.cluster.Tell(lease.Kind, l.identity, &lease.ReleaseRequest{Holder: l.holder})
}

// renew renews the lease every RenewInterval (sooner again when the
// lease actor could not be reached: it may be moving, and its new
// activation adopts this holder if it renews within the grace period)
// until the lease actor says this holder no longer holds it, or ctx ends.
func (l *Lease) renew(ctx context.Context) {
	defer close(l.stopped)
	every := l.o.RenewInterval
	t := time.NewTimer(every)
	defer t.Stop()
	req := &lease.RenewRequest{Holder: l.holder, Epoch: l.epoch, RenewMillis: int32(every / time.Millisecond)}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, every)
		v, err := l.m.cluster.Request(rctx, lease.Kind, l.identity, req)
		cancel()
		resp, _ := v.(*lease.RenewResponse)
		next := every
		switch {
		case ctx.Err() != nil:
			return
		case err != nil || resp == nil:
			l.m.log.Debug("lease renew failed; renewing again", "lease", l.identity, "err", err)
			next = renewRetry
		case resp.Code == lease.Code_NOT_HOLDER:
			l.m.log.Debug("lease lost", "lease", l.identity, "epoch", l.epoch, "reason", resp.Error)
			l.mu.Lock()
			l.closeRevoked()
			l.mu.Unlock()
			return
		case resp.Code != lease.Code_OK:
			next = renewRetry
		}
		t.Reset(next)
	}
}

// revoked takes a Revoke from the lease actor: a Revoke of this grant or
// a later one closes Revoked; one that comes before the grant's answer
// is kept until it comes.
func (l *Lease) revoke(r *lease.Revoke) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.epoch != 0 && r.Epoch < l.epoch {
		return // an earlier grant's
	}
	if r.Taker != "" {
		l.taker = r.Taker
	}
	l.revokedAt = max(l.revokedAt, r.Epoch)
	if l.epoch != 0 {
		l.closeRevoked()
	}
}

// closeRevoked closes Revoked once; l.mu is held.
func (l *Lease) closeRevoked() {
	if !l.isRevoked {
		l.isRevoked = true
		close(l.revoked)
		if f := l.o.OnRevoked; f != nil && !l.released && l.epoch != 0 {
			go f()
		}
	}
}

// drop forgets the lease on this node, once: its process stops taking
// messages, Revoked closes, and the Mesh no longer tracks it.
func (l *Lease) drop() {
	l.dropOnce.Do(func() {
		l.m.cluster.System().ProcessRegistry.Remove(l.pid)
		l.mu.Lock()
		l.closeRevoked()
		l.mu.Unlock()
		l.m.mu.Lock()
		delete(l.m.leases, l)
		l.m.mu.Unlock()
	})
}

// addLease registers l's process and tracks l; false once the Mesh is
// closed.
func (m *Mesh) addLease(l *Lease) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false
	}
	reg := m.cluster.System().ProcessRegistry
	l.pid, _ = reg.Add(leaseProcess{l}, "lease$"+reg.NextId())
	l.holder = &lease.Holder{Address: l.pid.Address, Id: l.pid.Id, Description: l.o.Holder}
	m.leases[l] = struct{}{}
	return true
}

// dropLeases abandons every lease of the Mesh at its Close: their
// processes go and their Revoked close. No Release is sent (Close does
// not wait for the network): the lease actors drop the holders once
// their node leaves the cluster, or once they miss their renews.
func (m *Mesh) dropLeases() {
	m.mu.Lock()
	ls := make([]*Lease, 0, len(m.leases))
	for l := range m.leases {
		ls = append(ls, l)
	}
	m.mu.Unlock()
	for _, l := range ls {
		l.drop()
	}
}

// leaseProcess is a Lease's process in the node's actor system: the
// lease actor, on any node, sends Revoke to its PID. It is a process
// rather than an actor with a mailbox: what it takes it hands to the
// Lease at once, under the Lease's lock, never blocking the sender.
type leaseProcess struct{ l *Lease }

func (p leaseProcess) SendUserMessage(_ *actor.PID, message any) {
	if r, ok := actor.UnwrapEnvelopeMessage(message).(*lease.Revoke); ok {
		p.l.revoke(r)
	}
}

func (leaseProcess) SendSystemMessage(*actor.PID, any) {}
func (leaseProcess) Stop(*actor.PID)                   {}
