package mesh_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/meshka/meshka/actors/lease"
	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/internal/race"
	"github.com/meshka/meshka/internal/testenv"
	"github.com/meshka/meshka/mesh"
)

// acquired is what an Acquire on another goroutine returned.
type acquired struct {
	l   *mesh.Lease
	err error
}

// acquireAsync runs Acquire on a goroutine of its own; its answer comes
// on the channel.
func acquireAsync(ctx context.Context, m *mesh.Mesh, o mesh.LeaseOptions) <-chan acquired {
	ch := make(chan acquired, 1)
	go func() {
		l, err := m.Acquire(ctx, o)
		ch <- acquired{l, err}
	}()
	return ch
}

func mustAcquire(t *testing.T, ctx context.Context, m *mesh.Mesh, o mesh.LeaseOptions) *mesh.Lease {
	t.Helper()
	l, err := m.Acquire(ctx, o)
	if err != nil {
		t.Fatalf("acquire as %s: %v", o.Holder, err)
	}
	t.Cleanup(func() { l.Release(context.Background()) })
	return l
}

func waitRevoked(t *testing.T, ctx context.Context, l *mesh.Lease, who string) {
	t.Helper()
	select {
	case <-l.Revoked():
	case <-ctx.Done():
		t.Fatalf("%s's lease was never revoked", who)
	}
}

// granted waits for an Acquire on another goroutine to be granted.
func grantedIn(t *testing.T, ctx context.Context, ch <-chan acquired, who string) *mesh.Lease {
	t.Helper()
	select {
	case a := <-ch:
		if a.err != nil {
			t.Fatalf("acquire as %s: %v", who, a.err)
		}
		t.Cleanup(func() { a.l.Release(context.Background()) })
		return a.l
	case <-ctx.Done():
		t.Fatalf("%s was never granted the lease", who)
		return nil
	}
}

// notYet fails the test if the Acquire on ch has returned.
func notYet(t *testing.T, ch <-chan acquired, why string) {
	t.Helper()
	select {
	case a := <-ch:
		t.Fatalf("%s: Acquire returned %v, %v", why, a.l, a.err)
	default:
	}
}

// A free lease is granted at once. Another Acquire makes the holder's
// Revoked close, naming the taker; the taker is granted the lease, with
// a higher epoch, only once the holder releases it.
func TestLeaseGrantRevokeRelease(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, time.Minute)
	m := env.Node.Mesh()
	o := mesh.LeaseOptions{Name: "mqtt-session", ID: "client-1", Holder: "a", RevokeTimeout: time.Minute}
	told := make(chan struct{}, 2)
	o.OnRevoked = func() { told <- struct{}{} }
	a := mustAcquire(t, ctx, m, o)
	o.OnRevoked = nil
	if a.Epoch() == 0 {
		t.Fatal("epoch 0")
	}
	select {
	case <-a.Revoked():
		t.Fatal("revoked with nobody asking")
	default:
	}
	o.Holder = "b"
	b := acquireAsync(ctx, m, o)
	waitRevoked(t, ctx, a, "a")
	select {
	case <-told:
	case <-ctx.Done():
		t.Fatal("OnRevoked was not called")
	}
	if a.Taker() != "b" {
		t.Fatalf("taker %q, want b", a.Taker())
	}
	notYet(t, b, "before the holder released")
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatalf("a second release: %v", err)
	}
	select {
	case <-told:
		t.Fatal("OnRevoked called twice")
	default:
	}
	lb := grantedIn(t, ctx, b, "b")
	if lb.Epoch() <= a.Epoch() {
		t.Fatalf("epoch %d after %d", lb.Epoch(), a.Epoch())
	}
	if !env.Node.LeaseActive("mqtt-session", "client-1") {
		t.Fatal("no lease actor on the only node")
	}
	// Once released, the next Acquire is granted at once.
	if err := lb.Release(ctx); err != nil {
		t.Fatal(err)
	}
	o.Holder = "c"
	if lc := mustAcquire(t, ctx, m, o); lc.Epoch() <= lb.Epoch() {
		t.Fatalf("epoch %d after %d", lc.Epoch(), lb.Epoch())
	}
}

// A holder that never releases loses the lease once the acquirer's
// revoke timeout passes, and learns it lost it.
func TestLeaseRevokeTimeout(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, time.Minute)
	m := env.Node.Mesh()
	o := mesh.LeaseOptions{Name: "mqtt-session", ID: "stubborn", Holder: "a", RenewInterval: 100 * time.Millisecond}
	a := mustAcquire(t, ctx, m, o)
	o.Holder, o.RevokeTimeout = "b", 300*time.Millisecond
	b := mustAcquire(t, ctx, m, o)
	waitRevoked(t, ctx, a, "a")
	if b.Epoch() <= a.Epoch() {
		t.Fatalf("epoch %d after %d", b.Epoch(), a.Epoch())
	}
	select {
	case <-b.Revoked():
		t.Fatal("the new holder's lease is revoked: the old holder's renews still count")
	case <-time.After(500 * time.Millisecond): // several of a's renews
	}
}

// Of several Acquires waiting, the latest wins: the earlier one returns
// ErrLeaseSuperseded at once. An Acquire whose ctx ends withdraws.
func TestLeaseLatestAcquirerWins(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, time.Minute)
	m := env.Node.Mesh()
	o := mesh.LeaseOptions{Name: "mqtt-session", ID: "contested", Holder: "a", RevokeTimeout: time.Minute}
	a := mustAcquire(t, ctx, m, o)

	o.Holder = "gives up"
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err := m.Acquire(short, o)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("an Acquire whose ctx ended: %v", err)
	}

	o.Holder = "b"
	b := acquireAsync(ctx, m, o)
	waitRevoked(t, ctx, a, "a")
	// b waits at the lease actor once the holder was told of it.
	waitUntil(t, ctx, func() bool { return a.Taker() == "b" }, func() string { return fmt.Sprintf("taker %q, want b", a.Taker()) })
	o.Holder = "c"
	c := acquireAsync(ctx, m, o)
	select {
	case got := <-b:
		if !errors.Is(got.err, mesh.ErrLeaseSuperseded) {
			t.Fatalf("the earlier acquirer: %v, %v", got.l, got.err)
		}
	case <-ctx.Done():
		t.Fatal("the earlier acquirer was never answered")
	}
	notYet(t, c, "before the holder released")
	waitUntil(t, ctx, func() bool { return a.Taker() == "c" }, func() string { return fmt.Sprintf("taker %q, want c", a.Taker()) })
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	grantedIn(t, ctx, c, "c")
}

// Bad options are refused before anything is asked; a Mesh that closed
// abandons its leases: their Revoked close, Release has nothing to do,
// and Acquire answers ErrClosed.
func TestLeaseOptionsAndClose(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, time.Minute)
	m := env.Node.Mesh()
	for _, o := range []mesh.LeaseOptions{
		{ID: "x"},
		{Name: "a/b", ID: "x"},
		{Name: "n"},
		{Name: "n", ID: "x", RenewInterval: time.Minute},
		{Name: "n", ID: "x", RevokeTimeout: -time.Second},
	} {
		if _, err := m.Acquire(ctx, o); err == nil || !strings.HasPrefix(err.Error(), "mesh: lease") {
			t.Errorf("%+v: %v", o, err)
		}
	}
	l := mustAcquire(t, ctx, m, mesh.LeaseOptions{Name: "n", ID: "with/slash"})
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := env.Node.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	env.Node = nil
	waitRevoked(t, ctx, l, "the closed Mesh")
	if err := l.Release(ctx); err != nil {
		t.Fatalf("release after close: %v", err)
	}
	if _, err := m.Acquire(ctx, mesh.LeaseOptions{Name: "n", ID: "y"}); !errors.Is(err, mesh.ErrClosed) {
		t.Fatalf("acquire after close: %v", err)
	}
}

// leaseOwnedBy is an id of namespace "test" whose lease actor c places
// on node i.
func leaseOwnedBy(t *testing.T, c *testenv.Cluster, i int, prefix string) string {
	t.Helper()
	for n := range 1000 {
		id := fmt.Sprintf("%s-%d", prefix, n)
		if int(c.Nodes[0].Registry().Owner(lease.Kind, lease.Identity("test", id)).ID) == i {
			return id
		}
	}
	t.Fatalf("no id whose lease actor is on node %d", i)
	return ""
}

func remoteCluster(t *testing.T) *testenv.Cluster {
	t.Helper()
	if race.Enabled {
		t.Skip("remoting between nodes in one process: run without -race (make test does)")
	}
	return testenv.StartCluster(t, 3, func(cfg *config.Config) { cfg.Cluster.Remote = "127.0.0.1:0" })
}

// On three nodes: a lease held on node 1, arbitrated on node 0, is asked
// for on node 2: node 1's Revoked closes naming node 2's holder, and
// node 2 is granted it, with a higher epoch, once node 1 releases it.
func TestRemotingLeaseTakeover(t *testing.T) {
	c := remoteCluster(t)
	ctx := timeout(t, time.Minute)
	id := leaseOwnedBy(t, c, 0, "takeover")
	o := mesh.LeaseOptions{Name: "test", ID: id, Holder: "on node 1", RevokeTimeout: time.Minute}
	a := mustAcquire(t, ctx, c.Nodes[1].Mesh(), o)
	o.Holder = "on node 2"
	b := acquireAsync(ctx, c.Nodes[2].Mesh(), o)
	waitRevoked(t, ctx, a, "node 1")
	if a.Taker() != "on node 2" {
		t.Fatalf("taker %q", a.Taker())
	}
	notYet(t, b, "before node 1 released")
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	lb := grantedIn(t, ctx, b, "node 2")
	if lb.Epoch() <= a.Epoch() {
		t.Fatalf("epoch %d after %d", lb.Epoch(), a.Epoch())
	}
	if !c.Nodes[0].LeaseActive("test", id) || c.Nodes[1].LeaseActive("test", id) || c.Nodes[2].LeaseActive("test", id) {
		t.Fatal("the lease actor is not (only) on node 0")
	}
}

// The node of the holder crashes: an acquirer on another node is granted
// the lease once the cluster finds the node dead (or the holder's renews
// stop), without waiting for a release that never comes.
func TestRemotingLeaseHolderCrash(t *testing.T) {
	c := remoteCluster(t)
	ctx := timeout(t, time.Minute)
	id := leaseOwnedBy(t, c, 0, "holder-crash")
	o := mesh.LeaseOptions{Name: "test", ID: id, Holder: "on node 1", RevokeTimeout: time.Minute}
	a := mustAcquire(t, ctx, c.Nodes[1].Mesh(), o)
	c.Crash(1)
	waitRevoked(t, ctx, a, "the crashed node") // its Mesh closed
	o.Holder = "on node 2"
	start := time.Now()
	b := mustAcquire(t, ctx, c.Nodes[2].Mesh(), o)
	if b.Epoch() <= a.Epoch() {
		t.Fatalf("epoch %d after %d", b.Epoch(), a.Epoch())
	}
	t.Logf("granted %s after the holder's node crashed", time.Since(start).Round(time.Millisecond))
}

// The node of the lease actor crashes while the holder lives on: the
// actor's new activation adopts the holder when it renews, so an Acquire
// from a third node revokes the holder's lease instead of being granted
// alongside it, and is granted once the holder releases.
func TestRemotingLeaseActorCrash(t *testing.T) {
	c := remoteCluster(t)
	ctx := timeout(t, time.Minute)
	id := leaseOwnedBy(t, c, 0, "actor-crash")
	o := mesh.LeaseOptions{Name: "test", ID: id, Holder: "on node 1", RevokeTimeout: time.Minute}
	a := mustAcquire(t, ctx, c.Nodes[1].Mesh(), o)
	c.Crash(0)
	c.WaitMembers(t, 2)
	o.Holder = "on node 2"
	b := acquireAsync(ctx, c.Nodes[2].Mesh(), o)
	waitRevoked(t, ctx, a, "node 1")
	if a.Taker() != "on node 2" {
		t.Fatalf("taker %q", a.Taker())
	}
	notYet(t, b, "before node 1 released")
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	lb := grantedIn(t, ctx, b, "node 2")
	if lb.Epoch() <= a.Epoch() {
		t.Fatalf("epoch %d after %d", lb.Epoch(), a.Epoch())
	}
}
