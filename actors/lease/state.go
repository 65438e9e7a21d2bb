package lease

import (
	"fmt"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"
)

// PollAlive is how often the liveness of the holder and of the acquirer
// is checked while someone waits for the lease.
const PollAlive = 250 * time.Millisecond

// Clock hands out the epochs of a node's grants: each one greater than
// any it gave before and than the wall clock in microseconds. So the
// grants of a name strictly increase across the activations of its actor
// on one node (an actor that passivated forgets its last epoch), and
// across nodes whose clocks agree within the grace period (a move's new
// activation waits that long, adopting the holder that survived with its
// epoch, before it grants). Safe for concurrent use.
type Clock struct{ last atomic.Uint64 }

// Next is an epoch greater than the last one given and at least atLeast.
func (c *Clock) Next(atLeast uint64) uint64 {
	for {
		last := c.last.Load()
		next := max(last+1, atLeast)
		if c.last.CompareAndSwap(last, next) {
			return next
		}
	}
}

// Alive says whether a holder's or acquirer's process may still live:
// its node is a member of the cluster (on the actor's own node, whether
// the process is still registered). A State with a nil Alive takes every
// process for alive.
type Alive func(*Holder) bool

// Out is a message for the actor to send: to Reply, a parked acquirer's
// sender, when that is set; else to the Holder's process.
type Out struct {
	Reply  any
	Holder *Holder
	Msg    proto.Message
}

// State is one name's lease: its holder, the one acquirer waiting for it
// (the latest wins: an earlier one is answered SUPERSEDED at once), the
// highest epoch this activation has seen, and the grace period of a new
// activation. It does no I/O: the actor feeds it requests and the time,
// sends what it returns, and calls Tick at Next. Not safe for concurrent
// use.
type State struct {
	clock      *Clock
	graceUntil time.Time
	epoch      uint64 // the highest epoch granted, adopted or released here
	holder     *holding
	waiter     *waiting
	idleSince  time.Time // no holder and no waiter since (zero: not idle)
}

type holding struct {
	h        *Holder
	epoch    uint64
	renewed  time.Time
	interval time.Duration
	told     *Holder   // the acquirer it was told to give the lease up for
	revokeBy time.Time // when it is taken if not released (zero: not told)
}

type waiting struct {
	h             *Holder
	reply         any
	deadline      time.Time
	revokeTimeout time.Duration
	interval      time.Duration
}

// New is the state of a new activation at now that grants nothing
// before graceUntil (the zero time: no grace), and takes epochs from
// clock (one of its own when nil).
func New(now, graceUntil time.Time, clock *Clock) *State {
	if clock == nil {
		clock = &Clock{}
	}
	return &State{clock: clock, graceUntil: graceUntil, idleSince: now}
}

// InGrace says whether a new activation's grace period lasts at now.
func (s *State) InGrace(now time.Time) bool { return now.Before(s.graceUntil) }

// Holder is the holder and its epoch (nil when the lease is free).
func (s *State) Holder() (*Holder, uint64) {
	if s.holder == nil {
		return nil, 0
	}
	return s.holder.h, s.holder.epoch
}

// Waiting is the acquirer waiting for the lease, nil when none.
func (s *State) Waiting() *Holder {
	if s.waiter == nil {
		return nil
	}
	return s.waiter.h
}

// Acquire takes req, whose answer goes to reply: granted at once when
// the lease is free (and no grace lasts), else parked, the holder told to
// give it up. The acquirer already waiting is answered SUPERSEDED. The
// holder asking again is answered its grant.
func (s *State) Acquire(now time.Time, req *AcquireRequest, reply any, alive Alive) []Out {
	h := req.GetHolder()
	if h.GetId() == "" {
		return []Out{{Reply: reply, Msg: &AcquireResponse{Code: Code_INVALID, Error: "lease: an acquire without a holder"}}}
	}
	if s.holder != nil && same(s.holder.h, h) {
		s.holder.renewed = now
		return []Out{{Reply: reply, Msg: &AcquireResponse{Epoch: s.holder.epoch}}}
	}
	var out []Out
	if w := s.waiter; w != nil {
		resp := &AcquireResponse{Code: Code_SUPERSEDED, Error: "lease: superseded by a later acquirer, " + h.GetDescription()}
		if same(w.h, h) {
			resp = &AcquireResponse{Code: Code_TIMEOUT, Error: "lease: asked again"}
		}
		out = append(out, Out{Reply: w.reply, Msg: resp})
	}
	s.waiter = &waiting{h: h, reply: reply,
		deadline:      now.Add(millis(req.GetTimeoutMillis(), DefaultWait, MaxWait)),
		revokeTimeout: millis(req.GetRevokeTimeoutMillis(), DefaultRevokeTimeout, MaxWait),
		interval:      millis(req.GetRenewMillis(), MaxRenewInterval, MaxRenewInterval)}
	return s.settle(now, alive, out)
}

// Renew keeps the holder's lease. A holder this activation does not know
// is adopted, with its epoch, when the lease is free here and its epoch
// is above every one seen here, or when, during the grace period, its
// epoch is above the adopted holder's (the later grant wins). Anyone
// else is answered NOT_HOLDER.
func (s *State) Renew(now time.Time, req *RenewRequest, alive Alive) (*RenewResponse, []Out) {
	h, e := req.GetHolder(), req.GetEpoch()
	if h.GetId() == "" || e == 0 {
		return &RenewResponse{Code: Code_INVALID, Error: "lease: a renew without a holder or an epoch"}, nil
	}
	interval := millis(req.GetRenewMillis(), MaxRenewInterval, MaxRenewInterval)
	var out []Out
	switch {
	case s.holder != nil && same(s.holder.h, h) && s.holder.epoch == e:
		s.holder.renewed, s.holder.interval = now, interval
		return &RenewResponse{}, s.settle(now, alive, nil)
	case s.holder == nil && e > s.epoch, s.holder != nil && s.InGrace(now) && e > s.holder.epoch:
		if old := s.holder; old != nil {
			out = append(out, Out{Holder: old.h, Msg: &Revoke{Epoch: old.epoch, Taker: h.GetDescription(), Lost: true}})
		}
		s.holder = &holding{h: h, epoch: e, renewed: now, interval: interval}
		s.epoch = max(s.epoch, e)
		return &RenewResponse{}, s.settle(now, alive, out)
	}
	text := "lease: not held"
	if s.holder != nil {
		text = fmt.Sprintf("lease: held by %s (epoch %d), not epoch %d", s.holder.h.GetDescription(), s.holder.epoch, e)
	}
	return &RenewResponse{Code: Code_NOT_HOLDER, Error: text}, nil
}

// Release gives up the holder's lease (epoch 0: whatever it holds or
// waits for); the acquirer waiting is granted it at once (after the
// grace period). Releasing what is not held is no error.
func (s *State) Release(now time.Time, req *ReleaseRequest, alive Alive) (*ReleaseResponse, []Out) {
	h, e := req.GetHolder(), req.GetEpoch()
	var out []Out
	if s.holder != nil && same(s.holder.h, h) && (e == 0 || e == s.holder.epoch) {
		s.holder = nil
	}
	if s.waiter != nil && same(s.waiter.h, h) && e == 0 {
		out = append(out, Out{Reply: s.waiter.reply, Msg: &AcquireResponse{Code: Code_TIMEOUT, Error: "lease: withdrawn"}})
		s.waiter = nil
	}
	// A grant released here, even one this activation never saw, is
	// never adopted again.
	s.epoch = max(s.epoch, e)
	return &ReleaseResponse{}, s.settle(now, alive, out)
}

// Tick checks the deadlines and the liveness of holder and acquirer.
func (s *State) Tick(now time.Time, alive Alive) []Out { return s.settle(now, alive, nil) }

// Stop answers the acquirer waiting MOVED, for the actor stopping: it
// asks again, which reaches the name's new owner. The holder is told
// nothing: it renews there and is adopted.
func (s *State) Stop() []Out {
	if s.waiter == nil {
		return nil
	}
	out := []Out{{Reply: s.waiter.reply, Msg: &AcquireResponse{Code: Code_MOVED, Error: "lease: its actor stopped; ask again"}}}
	s.waiter = nil
	return out
}

// Next is when Tick must be called next (the zero time: never).
func (s *State) Next(now time.Time) time.Time {
	var next time.Time
	earlier := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	if hd := s.holder; hd != nil {
		earlier(hd.renewed.Add(DropAfter * hd.interval))
	}
	if w := s.waiter; w != nil {
		earlier(w.deadline)
		earlier(now.Add(PollAlive))
		if s.InGrace(now) {
			earlier(s.graceUntil)
		}
		if hd := s.holder; hd != nil && !hd.revokeBy.IsZero() {
			earlier(hd.revokeBy)
		}
	}
	return next
}

// IdleSince is since when nobody has held or waited for the lease (the
// zero time while someone does): an actor idle for long may stop, since
// a new activation of a free lease starts where it left off.
func (s *State) IdleSince() time.Time { return s.idleSince }

// settle applies what the time and liveness decide: a holder that
// stopped renewing or whose node is gone is dropped, an acquirer past its
// deadline is answered TIMEOUT, the holder is told to give the lease up
// for the acquirer (and loses it once its revoke timeout passes), and a
// free lease goes to the acquirer, unless a grace period lasts.
func (s *State) settle(now time.Time, alive Alive, out []Out) []Out {
	if alive == nil {
		alive = func(*Holder) bool { return true }
	}
	if hd := s.holder; hd != nil && (!now.Before(hd.renewed.Add(DropAfter*hd.interval)) || !alive(hd.h)) {
		out = append(out, Out{Holder: hd.h, Msg: &Revoke{Epoch: hd.epoch, Lost: true}})
		s.holder = nil
	}
	if w := s.waiter; w != nil {
		switch {
		case !now.Before(w.deadline):
			out = append(out, Out{Reply: w.reply, Msg: &AcquireResponse{Code: Code_TIMEOUT, Error: "lease: not granted within the request's timeout"}})
			s.waiter = nil
		case !alive(w.h):
			s.waiter = nil // nobody is left to answer
		}
	}
	if w := s.waiter; w != nil {
		if hd := s.holder; hd != nil {
			if !same(hd.told, w.h) {
				hd.told = w.h
				out = append(out, Out{Holder: hd.h, Msg: &Revoke{Epoch: hd.epoch, Taker: w.h.GetDescription()}})
				if by := now.Add(w.revokeTimeout); hd.revokeBy.IsZero() || by.Before(hd.revokeBy) {
					hd.revokeBy = by
				}
			}
			if !s.InGrace(now) && !now.Before(hd.revokeBy) {
				out = append(out, Out{Holder: hd.h, Msg: &Revoke{Epoch: hd.epoch, Taker: w.h.GetDescription(), Lost: true}})
				s.holder = nil
			}
		}
		if s.holder == nil && !s.InGrace(now) {
			out = s.grant(now, out)
		}
	}
	switch {
	case s.holder != nil || s.waiter != nil:
		s.idleSince = time.Time{}
	case s.idleSince.IsZero():
		s.idleSince = now
	}
	return out
}

// grant gives the lease to the waiting acquirer with a new epoch.
func (s *State) grant(now time.Time, out []Out) []Out {
	w := s.waiter
	s.waiter = nil
	e := s.clock.Next(max(s.epoch+1, uint64(now.UnixMicro())))
	s.epoch = e
	s.holder = &holding{h: w.h, epoch: e, renewed: now, interval: w.interval}
	return append(out, Out{Reply: w.reply, Msg: &AcquireResponse{Epoch: e}})
}
