package httpmap_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/internal/race"
	"github.com/meshka/meshka/internal/testenv"
	httpmap "github.com/meshka/meshka/mappers/http"
)

// startRequestCluster runs three nodes with remoting between them, each
// serving HTTP with an async request route /rpc (requests → replies), and
// returns their HTTP bases. replies has 12 partitions, so that each node
// is all but sure to host some of their actors.
func startRequestCluster(t *testing.T) (*testenv.Cluster, []string) {
	t.Helper()
	if race.Enabled {
		t.Skip("remoting between nodes in one process: run without -race (make test does)")
	}
	c := testenv.StartClusterWith(t, 3, []kfake.Opt{kfake.SeedTopics(3, "requests"), kfake.SeedTopics(12, "replies")}, func(cfg *config.Config) {
		cfg.Cluster.Remote = "127.0.0.1:0"
		cfg.HTTP.Listen = "127.0.0.1:0"
		cfg.HTTP.Routes = []config.HTTPRoute{{Method: "POST", Path: "/rpc", Topic: "requests", Capability: "request", ReplyTo: "replies",
			Async: true, Timeout: config.Duration(20 * time.Second)}}
	})
	bases := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		b, ok := n.Binding("http")
		if !ok {
			t.Fatalf("node %d serves no HTTP", i)
		}
		bases[i] = "http://" + b.(*httpmap.Server).Addr().String()
	}
	return c, bases
}

// clusterResponder answers requests as responder does, with a franz-go
// client that bootstraps from node i, so that it reads requests and
// writes replies through meshka. It writes the replies only to the
// partitions of replies whose actors are on the nodes in owners (the
// leaders meshka's Metadata names), so that the test knows on which
// nodes they land. See respond for hold.
func clusterResponder(t *testing.T, c *testenv.Cluster, i int, owners []int32, hold map[string]chan struct{}) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addr(i)), kgo.ConsumeTopics("requests"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	md, err := kadm.NewClient(cl).Metadata(ctx, "replies")
	if err != nil {
		cl.Close()
		t.Fatal(err)
	}
	var to []int32
	for _, p := range md.Topics["replies"].Partitions.Sorted() {
		if slices.Contains(owners, p.Leader) {
			to = append(to, p.Partition)
		}
	}
	if len(to) == 0 {
		cl.Close()
		t.Fatalf("no partition of replies is on nodes %v: %v", owners, md.Topics["replies"].Partitions)
	}
	respond(t, cl, to, hold)
}

// Requests made on node 0, answered by a service connected to node 2
// whose replies land on nodes 1 and 2: 200 at once, each answered with
// its own reply.
func TestRemotingRequestReplyAcrossNodes(t *testing.T) {
	c, bases := startRequestCluster(t)
	clusterResponder(t, c, 2, []int32{1, 2}, nil)
	const n, workers = 200, 50
	errs := make(chan error, n)
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	for range workers {
		go func() {
			for i := range next {
				errs <- ask(t, bases[0], i)
			}
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// An async request made on node 0, whose reply lands on node 0, is read
// on node 1 and on node 2: its Location answers 202 while the reply has
// not come, and the reply once it has; Prefer: wait=N waits for it.
func TestRemotingAsyncReplyAcrossNodes(t *testing.T) {
	c, bases := startRequestCluster(t)
	release := make(chan struct{})
	clusterResponder(t, c, 2, []int32{0}, map[string]chan struct{}{"held": release})
	post := func(body string) (loc, id string) {
		t.Helper()
		resp, _ := do(t, "POST", bases[0]+"/rpc", body, map[string]string{"Prefer": "respond-async"})
		loc = resp.Header.Get("Location")
		rest, ok := strings.CutPrefix(loc, "/rpc/")
		id, _, _ = strings.Cut(rest, "?")
		if resp.StatusCode != http.StatusAccepted || !ok || id == "" {
			t.Fatalf("async %q: %d Location %q", body, resp.StatusCode, loc)
		}
		return loc, id
	}
	isReply := func(node int, resp *http.Response, body, id, want string) {
		t.Helper()
		if resp.StatusCode != 201 || body != want || resp.Header.Get("Correlation-Id") != id || resp.Header.Get("Content-Type") != "text/plain" {
			t.Errorf("node %d: %d %q %v, want 201 %q (correlation id %s)", node, resp.StatusCode, body, resp.Header, want, id)
		}
	}

	// Node 1 answers 202 until the reply has come, then the reply.
	loc, id := post("first")
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, body := do(t, "GET", bases[1]+loc, "", nil)
		if resp.StatusCode == http.StatusAccepted && time.Now().Before(deadline) {
			if l := resp.Header.Get("Location"); l != loc {
				t.Fatalf("node 1's 202 has Location %q, want %q", l, loc)
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		isReply(1, resp, body, id, "FIRST")
		break
	}
	resp, body := do(t, "GET", bases[2]+loc, "", map[string]string{"Prefer": "wait=5"})
	isReply(2, resp, body, id, "FIRST")

	// A reply the service holds back: node 1 answers 202 (the request
	// went out, its reply has not); node 2, asked to wait, answers the
	// reply once the service sends it.
	loc, id = post("held")
	if resp, body := do(t, "GET", bases[1]+loc, "", nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("node 1 before the reply: %d %q, want 202", resp.StatusCode, body)
	}
	type answer struct {
		resp *http.Response
		body string
		err  error
	}
	waited := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest("GET", bases[2]+loc, nil)
		req.Header.Set("Prefer", "wait=5")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			waited <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		waited <- answer{resp, string(b), err}
	}()
	time.Sleep(500 * time.Millisecond) // node 2 is waiting
	close(release)
	a := <-waited
	if a.err != nil {
		t.Fatalf("node 2, waiting: %v", a.err)
	}
	isReply(2, a.resp, a.body, id, "HELD")
	resp, body = do(t, "GET", bases[1]+loc, "", nil)
	isReply(1, resp, body, id, "HELD")
}

// A produce retried with the same Idempotency-Key on another node (a load
// balancer's retry) is answered as the first was and written once.
func TestRemotingIdempotencyAcrossNodes(t *testing.T) {
	c, bases := startHTTPCluster(t, func(cfg *config.Config) {
		cfg.HTTP.Routes = []config.HTTPRoute{{Method: "POST", Path: "/events/{id}", Topic: "events", Capability: "produce", Key: "${params.id}"}}
	})
	for i := range 20 {
		h := map[string]string{"Idempotency-Key": fmt.Sprintf("req-%d", i)}
		r1, b1 := do(t, "POST", bases[i%3]+"/events/k", fmt.Sprintf("v%d", i), h)
		for j := 1; j <= 2; j++ {
			r, b := do(t, "POST", bases[(i+j)%3]+"/events/k", fmt.Sprintf("v%d", i), h)
			if r1.StatusCode != 201 || r.StatusCode != 201 || b != b1 || r.Header.Get("Idempotent-Replayed") != "true" {
				t.Fatalf("key %d: first %d %s; retry on node %d: %d %s %v", i, r1.StatusCode, b1, (i+j)%3, r.StatusCode, b, r.Header)
			}
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Upstream.ListenAddrs()...), kgo.ConsumeTopics("events"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	got := map[string]int{}
	for ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got[string(r.Value)]++ })
	}
	if len(got) != 20 {
		t.Fatalf("%d distinct records, want 20: %v", len(got), got)
	}
	for v, n := range got {
		if n != 1 {
			t.Errorf("%s written %d times", v, n)
		}
	}
}
