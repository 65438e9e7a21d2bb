package lease

import (
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/meshka/meshka/cluster"
)

// holderProcess is a holder's process that hands what it takes to a
// channel.
func holderProcess(t *testing.T, system *actor.ActorSystem, name string) (*Holder, *actor.PID, <-chan *Revoke) {
	t.Helper()
	ch := make(chan *Revoke, 8)
	pid := system.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if r, ok := c.Message().(*Revoke); ok {
			ch <- r
		}
	}))
	return &Holder{Address: pid.Address, Id: pid.Id, Description: name}, pid, ch
}

func ask(t *testing.T, system *actor.ActorSystem, pid *actor.PID, msg any, d time.Duration) any {
	t.Helper()
	v, err := system.Root.RequestFuture(pid, msg, d).Result()
	if err != nil {
		t.Fatalf("%T: %v", msg, err)
	}
	return v
}

// The actor on its own node, without a cluster nor a grace period: it
// grants, revokes, and
// grants to the acquirer once the holder's revoke timeout passes (its
// timer); an acquirer is granted at once when the holder's process is
// gone; and the actor stops once nobody holds the lease or waits for it.
func TestActor(t *testing.T) {
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	t.Cleanup(system.Shutdown)
	pid := system.Root.Spawn(Props(Config{Grace: -1, IdleAfter: 300 * time.Millisecond}))
	system.Root.Send(pid, &cluster.Activate{Kind: Kind, Identity: Identity("test", "x")})
	stopped := make(chan struct{})
	system.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		switch c.Message().(type) {
		case *actor.Started:
			c.Watch(pid)
		case *actor.Terminated:
			close(stopped)
		}
	}))

	a, _, revokedA := holderProcess(t, system, "a")
	resp := ask(t, system, pid, &AcquireRequest{Holder: a}, 5*time.Second).(*AcquireResponse)
	if resp.Code != Code_OK || resp.Epoch == 0 {
		t.Fatalf("acquire: %v", resp)
	}
	b, bPID, _ := holderProcess(t, system, "b")
	resp = ask(t, system, pid, &AcquireRequest{Holder: b, RevokeTimeoutMillis: 200}, 5*time.Second).(*AcquireResponse)
	if resp.Code != Code_OK {
		t.Fatalf("acquire past the revoke timeout: %v", resp)
	}
	select {
	case r := <-revokedA:
		if r.Taker != "b" {
			t.Fatalf("the holder was told %v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the holder was never told")
	}

	system.Root.Stop(bPID) // the holder's process goes
	c, _, _ := holderProcess(t, system, "c")
	resp = ask(t, system, pid, &AcquireRequest{Holder: c, RevokeTimeoutMillis: 60_000}, 5*time.Second).(*AcquireResponse)
	if resp.Code != Code_OK {
		t.Fatalf("acquire from a gone holder: %v", resp)
	}
	rel := ask(t, system, pid, &ReleaseRequest{Holder: c, Epoch: resp.Epoch}, 5*time.Second).(*ReleaseResponse)
	if rel.Code != Code_OK {
		t.Fatal(rel)
	}
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("an idle lease actor did not stop")
	}
}
