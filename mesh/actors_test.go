package mesh_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/internal/race"
	"github.com/meshka/meshka/internal/testenv"
	"github.com/meshka/meshka/mesh"
)

// counter is an actor that counts its calls and says where it runs; its
// count is its memory alone, so a new incarnation starts again at 1.
type counter struct {
	node    string
	id      string
	n       int
	stopped chan<- string // "<id> <reason>" per Stop
	block   chan struct{} // a call "block" waits for it to close
}

func (c *counter) Receive(ctx context.Context, call []byte) ([]byte, error) {
	switch string(call) {
	case "panic":
		panic("asked to")
	case "fail":
		return nil, errors.New("asked to fail")
	case "block":
		select {
		case <-c.block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	c.n++
	return []byte(fmt.Sprintf("%s %s %d", c.node, c.id, c.n)), nil
}

func (c *counter) Stop(reason mesh.StopReason) {
	if c.stopped != nil {
		c.stopped <- c.id + " " + reason.String()
	}
}

type counters struct {
	node    string
	made    atomic.Int32
	stopped chan string
	block   chan struct{}
}

func (cs *counters) options(idle time.Duration) mesh.ActorsOptions {
	return mesh.ActorsOptions{Kind: "counter", Queue: 4, IdleAfter: idle, New: func(id string) (mesh.Actor, error) {
		cs.made.Add(1)
		return &counter{node: cs.node, id: id, stopped: cs.stopped, block: cs.block}, nil
	}}
}

func call(t *testing.T, ctx context.Context, a *mesh.Actors, id, body string) string {
	t.Helper()
	out, err := a.Call(ctx, id, []byte(body))
	if err != nil {
		t.Fatalf("call %s %q: %v", id, body, err)
	}
	return string(out)
}

// Calls reach one actor per identity, which keeps its memory between
// calls; an actor's error and panic come back as the call's error and
// the actor goes on; a full queue answers ErrActorBusy; an actor with no
// call for IdleAfter stops, and the next call makes it anew.
func TestActors(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, time.Minute)
	m := env.Node.Mesh()
	cs := &counters{node: "n0", stopped: make(chan string, 16), block: make(chan struct{})}
	a, err := m.Actors(cs.options(300 * time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(context.Background())
	if _, err := m.Actors(cs.options(0)); err == nil {
		t.Fatal("a kind registered twice")
	}

	for i := 1; i <= 3; i++ {
		if got, want := call(t, ctx, a, "x", "inc"), fmt.Sprintf("n0 x %d", i); got != want {
			t.Fatalf("call %d: %q, want %q", i, got, want)
		}
	}
	if got := call(t, ctx, a, "y", "inc"); got != "n0 y 1" {
		t.Fatalf("another identity: %q", got)
	}
	var ae *mesh.ActorError
	if _, err := a.Call(ctx, "x", []byte("fail")); !errors.As(err, &ae) || ae.Message != "asked to fail" {
		t.Fatalf("an actor's error: %v", err)
	}
	if _, err := a.Call(ctx, "x", []byte("panic")); !errors.As(err, &ae) || !strings.Contains(ae.Message, "asked to") {
		t.Fatalf("an actor's panic: %v", err)
	}
	if got := call(t, ctx, a, "x", "inc"); got != "n0 x 4" {
		t.Fatalf("after an error and a panic: %q", got)
	}

	// One call running, four queued: the sixth is refused.
	var wg sync.WaitGroup
	results := make(chan error, 5)
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := a.Call(ctx, "z", []byte("block"))
			results <- err
		}()
		time.Sleep(50 * time.Millisecond) // in this order: the first runs, four wait
	}
	time.Sleep(200 * time.Millisecond)
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, err = a.Call(cctx, "z", []byte("inc"))
	cancel()
	if !errors.Is(err, mesh.ErrActorBusy) {
		t.Fatalf("a call past a full queue: %v", err)
	}
	close(cs.block)
	wg.Wait()
	close(results)
	for err := range results {
		if err != nil {
			t.Errorf("a queued call: %v", err)
		}
	}

	// Idle: x, y and z stop within a moment of 300 ms without calls.
	stops := map[string]bool{}
	for len(stops) < 3 {
		select {
		case s := <-cs.stopped:
			stops[s] = true
		case <-ctx.Done():
			t.Fatalf("idle actors stopped: %v", stops)
		}
	}
	for _, id := range []string{"x", "y", "z"} {
		if !stops[id+" idle"] {
			t.Fatalf("stops: %v", stops)
		}
	}
	if got := call(t, ctx, a, "x", "inc"); got != "n0 x 1" {
		t.Fatalf("after it stopped idle: %q", got)
	}
}

// A kind's Close stops its actors (StopClosing); calls then answer
// ErrNoActors, and the kind can be served again.
func TestActorsClose(t *testing.T) {
	env := testenv.Start(t)
	ctx := timeout(t, time.Minute)
	m := env.Node.Mesh()
	cs := &counters{node: "n0", stopped: make(chan string, 4)}
	a, err := m.Actors(cs.options(0))
	if err != nil {
		t.Fatal(err)
	}
	call(t, ctx, a, "x", "inc")
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if s := <-cs.stopped; s != "x closing" {
		t.Fatalf("stop: %q", s)
	}
	if _, err := a.Call(ctx, "x", []byte("inc")); !errors.Is(err, mesh.ErrNoActors) {
		t.Fatalf("a call after Close: %v", err)
	}
	again, err := m.Actors(cs.options(0))
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close(context.Background())
	if got := call(t, ctx, again, "x", "inc"); got != "n0 x 1" {
		t.Fatalf("served again: %q", got)
	}
}

// Three nodes serve the kind: calls from every node reach the same actor
// of an identity, on its owner; when the owner crashes, the next call
// makes the actor on a survivor.
func TestRemotingActorsAcrossNodes(t *testing.T) {
	if race.Enabled {
		t.Skip("remoting between nodes in one process: run without -race (make test does)")
	}
	c := testenv.StartCluster(t, 3, func(cfg *config.Config) { cfg.Cluster.Remote = "127.0.0.1:0" })
	ctx := timeout(t, 2*time.Minute)
	var kinds []*mesh.Actors
	for i, n := range c.Nodes {
		cs := &counters{node: strconv.Itoa(i)}
		a, err := n.Mesh().Actors(cs.options(0))
		if err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, a)
	}
	owner := ""
	for i := 1; i <= 9; i++ {
		got := call(t, ctx, kinds[i%3], "k", "inc")
		var node, id string
		var n int
		if _, err := fmt.Sscanf(got, "%s %s %d", &node, &id, &n); err != nil || n != i || id != "k" {
			t.Fatalf("call %d from node %d: %q", i, i%3, got)
		}
		if owner == "" {
			owner = node
		} else if node != owner {
			t.Fatalf("call %d ran on node %s, the first on %s", i, node, owner)
		}
	}
	crashed, _ := strconv.Atoi(owner)
	c.Crash(crashed)
	survivor := kinds[(crashed+1)%3]
	deadline := time.Now().Add(time.Minute)
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		out, err := survivor.Call(cctx, "k", []byte("inc"))
		cancel()
		if err == nil {
			var node, id string
			var n int
			fmt.Sscanf(string(out), "%s %s %d", &node, &id, &n)
			if node == owner || n != 1 {
				t.Fatalf("after node %s crashed: %q", owner, out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no call answered after node %s crashed: %v", owner, err)
		}
	}
}
