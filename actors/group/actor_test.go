package group

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestActorTimerExpiresMember runs the group in a real actor system with
// real time: short sessions make the actor's own timer do the expiring.
func TestActorTimerExpiresMember(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
	defer system.Shutdown()
	pid, err := system.Root.SpawnNamed(Props(Config{MinSessionTimeout: 10 * time.Millisecond, Logger: quiet}), "group-test")
	if err != nil {
		t.Fatal(err)
	}
	// The cluster sends this on activation; here the test stands in for it.
	system.Root.Send(pid, &cluster.ClusterInit{Identity: cluster.NewClusterIdentity(Identity("up", "g"), Kind)})

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
		case <-time.After(10 * time.Second):
			t.Fatal("no JoinGroup reply")
			return nil
		}
	}
	waitState := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			ch := make(chan kmsg.DescribeGroupsResponseGroup, 1)
			system.Root.Send(pid, &Describe{Reply: ch})
			d := <-ch
			if d.State == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("state %s, want %s", d.State, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	a := wait(join("a", 100*time.Millisecond))
	if a.ErrorCode != 0 || a.Generation != 1 || a.LeaderID != a.MemberID {
		t.Fatalf("a's join: %+v", a)
	}
	// b's join waits for a to rejoin; a never does, so only a's session
	// ending (the actor's timer) lets the rebalance finish.
	b := wait(join("b", 200*time.Millisecond))
	if b.ErrorCode != 0 || b.Generation != 2 || b.LeaderID != b.MemberID || len(b.Members) != 1 {
		t.Fatalf("b's join after a expired: %+v", b)
	}
	waitState("Empty") // b never syncs or heartbeats either

	// A request parked when the actor stops is still answered.
	if r := wait(join("c", 30*time.Second)); r.ErrorCode != 0 {
		t.Fatalf("c's join: %+v", r)
	}
	parked := join("d", 30*time.Second)
	waitState("PreparingRebalance")
	if err := system.Root.StopFuture(pid).Wait(); err != nil {
		t.Fatal(err)
	}
	if r := wait(parked); r.ErrorCode != codeNotCoordinator {
		t.Fatalf("parked join at stop: %+v", r)
	}
}
