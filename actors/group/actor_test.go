package group

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/meshka/meshka/cluster"
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

// TestActorTimerExpiresMember runs the group in a real actor system on a
// fake clock: the actor's own timer does the expiring, when the test moves
// the clock past a member's session.
func TestActorTimerExpiresMember(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	clock := newFakeClock()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
	defer system.Shutdown()
	cfg := Config{MinSessionTimeout: 10 * time.Millisecond, Logger: quiet, Now: clock.Now, AfterFunc: clock.AfterFunc}
	pid, err := system.Root.SpawnNamed(Props(cfg), "group-test")
	if err != nil {
		t.Fatal(err)
	}
	// The cluster sends this on activation; here the test stands in for it.
	system.Root.Send(pid, &cluster.Activate{Kind: Kind, Identity: Identity("up", "g")})

	join := func(client string, session time.Duration) <-chan *kmsg.JoinGroupResponse {
		req := joinReq(3, "", nil, rangeProto("t1"))
		req.SessionTimeoutMillis = int32(session / time.Millisecond)
		req.RebalanceTimeoutMillis = 60_000
		ch := make(chan *kmsg.JoinGroupResponse, 1)
		system.Root.Send(pid, &Join{Req: req, ClientID: client, ClientHost: "/127.0.0.1", Reply: ch})
		return ch
	}
	wait := func(ch <-chan *kmsg.JoinGroupResponse) *kmsg.JoinGroupResponse {
		t.Helper()
		select {
		case r := <-ch:
			return r
		case <-ctx.Done():
			t.Fatal("no JoinGroup reply")
			return nil
		}
	}
	state := func() string {
		ch := make(chan kmsg.DescribeGroupsResponseGroup, 1)
		system.Root.Send(pid, &Describe{Reply: ch})
		select {
		case d := <-ch:
			return d.State
		case <-ctx.Done():
			t.Fatal("no DescribeGroups reply")
			return ""
		}
	}
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

	a := wait(join("a", 100*time.Millisecond))
	if a.ErrorCode != 0 || a.Generation != 1 || a.LeaderID != a.MemberID {
		t.Fatalf("a's join: %+v", a)
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
	case r := <-bJoin:
		t.Fatalf("b's join answered before a's session ended: %+v", r)
	default:
	}
	clock.Advance(2 * time.Millisecond)
	b := wait(bJoin)
	if b.ErrorCode != 0 || b.Generation != 2 || b.LeaderID != b.MemberID || len(b.Members) != 1 {
		t.Fatalf("b's join after a expired: %+v", b)
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
	if err := system.Root.StopFuture(pid).Wait(); err != nil {
		t.Fatal(err)
	}
	if r := wait(parked); r.ErrorCode != codeNotCoordinator {
		t.Fatalf("parked join at stop: %+v", r)
	}
}
