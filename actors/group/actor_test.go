package group

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// fakeClock is the actor's clock in tests: time moves only when the test
// advances it, and a timer fires then, once its time has come. A timer is
// set from the actor's goroutine, so a test waits for the actor to have
// handled a message (a Describe round trip) before it advances the clock
// past the timer that message set.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc is time.AfterFunc on the fake clock; a timer already due
// fires at once.
func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	t := &fakeTimer{at: c.now.Add(d), f: f}
	due := d <= 0
	if !due {
		c.timers = append(c.timers, t)
	}
	c.mu.Unlock()
	if due {
		f()
	}
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !t.stopped && slices.Contains(c.timers, t)
		t.stopped = true
		return was
	}
}

// Advance moves the clock by d and fires, in time order, every timer that
// has come due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*fakeTimer
	c.timers = slices.DeleteFunc(c.timers, func(t *fakeTimer) bool {
		if t.stopped || !t.at.After(c.now) {
			if !t.stopped {
				due = append(due, t)
			}
			return true
		}
		return false
	})
	c.mu.Unlock()
	slices.SortFunc(due, func(a, b *fakeTimer) int { return a.at.Compare(b.at) })
	for _, t := range due {
		t.f()
	}
}

// TestActorTimerExpiresMember runs the group actor on a one-node mesh on a
// fake clock: the actor's own timer does the expiring, when the test moves
// the clock past a member's session.
func TestActorTimerExpiresMember(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	clock := newFakeClock()
	cfg := Config{MinSessionTimeout: 10 * time.Millisecond, Logger: quiet(), Now: clock.Now, AfterFunc: clock.AfterFunc}
	a := startActor(t, ctx, cfg, false)

	join := func(client string, session time.Duration) *pending {
		req := joinReq(3, "", nil, rangeProto("t1"))
		req.SessionTimeoutMillis = int32(session / time.Millisecond)
		req.RebalanceTimeoutMillis = 60_000
		return a.askKafka(req, NewJoin(req, client, "/127.0.0.1"))
	}
	wait := func(p *pending) *kmsg.JoinGroupResponse {
		t.Helper()
		return kafkaAnswer[*JoinResponse, *kmsg.JoinGroupResponse](a, p)
	}
	state := func() string { return a.describe(5).State }
	// waitState asks until the actor is in state want: a tick the clock
	// fired may still be on its way through the mailbox.
	waitState := func(want string) {
		t.Helper()
		for s := state(); s != want; s = state() {
			if ctx.Err() != nil {
				t.Fatalf("state %s, want %s", s, want)
			}
			time.Sleep(time.Millisecond)
		}
	}

	ra := wait(join("a", 100*time.Millisecond))
	if ra.ErrorCode != 0 || ra.Generation != 1 || ra.LeaderID != ra.MemberID {
		t.Fatalf("a's join: %+v", ra)
	}
	// b's join waits for a to rejoin; a never does, so only a's session
	// ending (the actor's timer) lets the rebalance finish.
	bJoin := join("b", 200*time.Millisecond)
	if s := state(); s != "PreparingRebalance" {
		t.Fatalf("state %s after b's join, want PreparingRebalance (waiting for a)", s)
	}
	clock.Advance(99 * time.Millisecond)
	if s := state(); s != "PreparingRebalance" {
		t.Fatalf("state %s before a's session ended, want PreparingRebalance", s)
	}
	select {
	case v := <-bJoin.reply.C():
		t.Fatalf("b's join answered before a's session ended: %v", v)
	default:
	}
	clock.Advance(2 * time.Millisecond)
	rb := wait(bJoin)
	if rb.ErrorCode != 0 || rb.Generation != 2 || rb.LeaderID != rb.MemberID || len(rb.Members) != 1 {
		t.Fatalf("b's join after a expired: %+v", rb)
	}
	// The reply left during the tick; once the actor answers this, it has
	// also set its timer for b's session.
	if s := state(); s != "CompletingRebalance" {
		t.Fatalf("state %s after b's join, want CompletingRebalance (waiting for b's sync)", s)
	}
	clock.Advance(201 * time.Millisecond) // b never syncs or heartbeats either
	waitState("Empty")

	// A request parked when the actor stops is still answered.
	if r := wait(join("c", 30*time.Second)); r.ErrorCode != 0 {
		t.Fatalf("c's join: %+v", r)
	}
	parked := join("d", 30*time.Second)
	if s := state(); s != "PreparingRebalance" {
		t.Fatalf("state %s after d's join, want PreparingRebalance (waiting for c)", s)
	}
	a.stop()
	if r := wait(parked); r.ErrorCode != codeNotCoordinator {
		t.Fatalf("parked join at stop: %+v", r)
	}
}
