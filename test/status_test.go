//go:build unix

package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/net/html"

	"github.com/meshka/meshka/admin"
	"github.com/meshka/meshka/internal/testenv"
)

// The status page and its JSON, /api/status: what a node reports of the
// whole cluster must agree with what Kafka clients are told, partition
// leaders by Metadata and group coordinators by FindCoordinator.

const (
	statusTopic = "status-orders"
	statusParts = 6
	statusGroup = "status-readers"
)

// statusCluster is three nodes with the status topic's partition actors
// active on their leaders and the status group coordinated by one node.
type statusCluster struct {
	c       *testenv.Cluster
	leaders map[int32]int32 // partition → leader, as Metadata names it
	coord   int             // the group's coordinator, as FindCoordinator names it
}

func startStatusCluster(t *testing.T, ctx context.Context) *statusCluster {
	t.Helper()
	c := testenv.StartCluster(t, 3)
	createTopic(t, ctx, c.Client(t, 0), statusTopic, statusParts, nil)
	_, leaders := leadersOf(t, ctx, c.Client(t, 0), statusTopic, statusParts)

	// One record to every partition, each through another node: every
	// partition's actor is then active, on its leader.
	producers := make([]*kgo.Client, len(c.Nodes))
	for i := range c.Nodes {
		producers[i] = c.Client(t, i, kgo.DefaultProduceTopic(statusTopic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	for p := range int32(statusParts) {
		r := &kgo.Record{Partition: p, Value: []byte("status " + strconv.Itoa(int(p)))}
		if err := producers[int(p)%len(producers)].ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce to partition %d: %v", p, err)
		}
	}

	// A group member that has read every record has joined, so the
	// group's actor runs on its coordinator. It stays in the group until
	// the test ends.
	member := c.Client(t, 1, kgo.ConsumerGroup(statusGroup), kgo.ConsumeTopics(statusTopic), fromStart(), kgo.FetchMaxWait(100*time.Millisecond))
	consumeN(t, ctx, member, statusParts)
	return &statusCluster{c: c, leaders: leaders, coord: coordinatorOf(t, ctx, c, statusGroup)}
}

// getJSON GETs url and decodes its JSON answer into v.
func getJSON(t *testing.T, ctx context.Context, url string, v any) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v: %s", url, resp.Status, err, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, body)
	}
}

// statusURL is node i's admin listener at path.
func (s *statusCluster) statusURL(i int, path string) string {
	return "http://" + s.c.Nodes[i].AdminAddr().String() + path
}

// waitAllReady asks node 0 for the cluster's status until it lists the
// three nodes, all ready, and returns that answer.
func (s *statusCluster) waitAllReady(t *testing.T, ctx context.Context) admin.ClusterStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		var st admin.ClusterStatus
		getJSON(t, ctx, s.statusURL(0, "/api/status"), &st)
		ready := 0
		for _, n := range st.Nodes {
			if n.Ready {
				ready++
			}
		}
		if len(st.Nodes) == len(s.c.Nodes) && ready == len(st.Nodes) && len(st.Unreachable) == 0 {
			return st
		}
		select {
		case <-ctx.Done():
			b, _ := json.MarshalIndent(st, "", "  ")
			t.Fatalf("node 0's /api/status never listed the %d nodes all ready and none unreachable; last:\n%s", len(s.c.Nodes), b)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Node 0's /api/status lists the three nodes, each ready, at its Kafka and
// admin addresses; each partition of a topic on exactly one node, the
// leader Metadata names; a group on exactly one node, the coordinator
// FindCoordinator names. ?scope=node answers for the node asked alone.
func TestStatusAPI(t *testing.T) {
	ctx := timeout(t, 2*time.Minute)
	s := startStatusCluster(t, ctx)
	st := s.waitAllReady(t, ctx)

	if st.Node != 0 {
		t.Errorf("answered by node %d, want 0", st.Node)
	}
	listedBy := map[int32][]int32{} // partition → the nodes listing it
	groupBy := []int32{}            // the nodes listing the group
	connections := 0
	for i, n := range st.Nodes {
		if n.ID != int32(i) {
			t.Errorf("nodes[%d] is node %d; want the nodes in id order", i, n.ID)
			continue
		}
		if n.Kafka != s.c.Addr(i) {
			t.Errorf("node %d: kafka %q, want %q", i, n.Kafka, s.c.Addr(i))
		}
		if want := s.c.Nodes[i].AdminAddr().String(); n.Admin != want {
			t.Errorf("node %d: admin %q, want %q", i, n.Admin, want)
		}
		if !n.Upstream.Up || len(n.Reasons) > 0 {
			t.Errorf("node %d: upstream up %v (%s), reasons %v", i, n.Upstream.Up, n.Upstream.Error, n.Reasons)
		}
		if members := slices.Sorted(slices.Values(n.Members)); !slices.Equal(members, []int32{0, 1, 2}) {
			t.Errorf("node %d sees members %v, want [0 1 2]", i, members)
		}
		for _, p := range n.Partitions {
			if p.Topic == statusTopic {
				listedBy[p.Partition] = append(listedBy[p.Partition], n.ID)
			}
		}
		if slices.Contains(n.Groups, statusGroup) {
			groupBy = append(groupBy, n.ID)
		}
		for _, k := range n.Connections {
			connections += k
		}
	}
	for p := range int32(statusParts) {
		if got, want := listedBy[p], s.leaders[p]; len(got) != 1 || got[0] != want {
			t.Errorf("partition %s/%d is listed by nodes %v; want node %d alone, its leader by Metadata", statusTopic, p, got, want)
		}
	}
	if len(listedBy) != statusParts {
		t.Errorf("the nodes list partitions %v of %s, want 0 to %d", slices.Sorted(maps.Keys(listedBy)), statusTopic, statusParts-1)
	}
	if len(groupBy) != 1 || groupBy[0] != int32(s.coord) {
		t.Errorf("group %s is listed by nodes %v; want node %d alone, its coordinator by FindCoordinator", statusGroup, groupBy, s.coord)
	}
	if connections == 0 {
		t.Errorf("no node counts a connection, with the test's clients connected")
	}

	// ?scope=node: the node asked, alone, not the cluster.
	for i := range s.c.Nodes {
		var raw map[string]json.RawMessage
		getJSON(t, ctx, s.statusURL(i, "/api/status?scope=node"), &raw)
		if _, ok := raw["nodes"]; ok {
			t.Errorf("node %d: ?scope=node answers a list of nodes", i)
		}
		var ns admin.NodeStatus
		getJSON(t, ctx, s.statusURL(i, "/api/status?scope=node"), &ns)
		if ns.ID != int32(i) || ns.Kafka != s.c.Addr(i) {
			t.Errorf("node %d: ?scope=node answers node %d at %s", i, ns.ID, ns.Kafka)
		}
	}
}

// chromiumPath finds headless Chromium, or skips the test (fails it in CI,
// which installs it).
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	missingTool(t, "chromium is not installed")
	return ""
}

// headless runs Chromium headless on url with args, in a profile of its
// own, and returns what it printed to stdout. The whole process group
// goes when it ends or ctx does: Chromium forks helpers.
func headless(t *testing.T, ctx context.Context, url string, args ...string) []byte {
	t.Helper()
	browser := chromiumPath(t)
	profile, err := os.MkdirTemp("", "meshka-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for range 20 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	all := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-extensions", "--disable-sync", "--no-first-run", "--no-default-browser-check", "--hide-scrollbars",
		"--user-data-dir=" + profile}, args...)
	cmd := exec.CommandContext(ctx, browser, append(all, url)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // helpers left behind
	}
	if err != nil {
		t.Fatalf("chromium %s: %v (ctx: %v)\n%s", strings.Join(args, " "), err, ctx.Err(), stderr.Bytes())
	}
	return stdout.Bytes()
}

// pageDOM is what the drawn status page shows, read off its data-*
// attributes.
type pageDOM struct {
	loaded  bool
	nodes   []string          // data-node of the node table's rows, in order
	leaders map[string]string // data-partition → data-leader
	groups  map[string]string // data-group → data-coordinator
}

func parsePage(t *testing.T, dom []byte) pageDOM {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(dom))
	if err != nil {
		t.Fatalf("the dumped DOM does not parse: %v", err)
	}
	out := pageDOM{leaders: map[string]string{}, groups: map[string]string{}}
	attr := func(n *html.Node, key string) (string, bool) {
		for _, a := range n.Attr {
			if a.Key == key {
				return a.Val, true
			}
		}
		return "", false
	}
	// inNodes says whether n is inside the table of nodes.
	inNodes := func(n *html.Node) bool {
		for p := n.Parent; p != nil; p = p.Parent {
			if id, _ := attr(p, "id"); p.Data == "table" && id == "nodes" {
				return true
			}
		}
		return false
	}
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		if v, ok := attr(n, "data-loaded"); ok && n.Data == "body" {
			out.loaded = v == "true"
		}
		if v, ok := attr(n, "data-node"); ok && n.Data == "tr" && inNodes(n) {
			out.nodes = append(out.nodes, v)
		}
		if p, ok := attr(n, "data-partition"); ok {
			out.leaders[p], _ = attr(n, "data-leader")
		}
		if g, ok := attr(n, "data-group"); ok {
			out.groups[g], _ = attr(n, "data-coordinator")
		}
	}
	return out
}

// pageBudget is the virtual time headless Chromium gives the page before
// it dumps or shoots it: the first fetch of api/status and its drawing
// take well under it (virtual time stands still while a fetch is out).
const pageBudget = "--virtual-time-budget=15000"

// The status page in headless Chromium draws what /api/status says: a row
// for each of the three nodes, each partition's chip naming its leader by
// Metadata, and the group's coordinator by FindCoordinator.
//
// MESHKA_SCREENSHOT=FILE also saves a screenshot of the page (relative to
// the module's root: MESHKA_SCREENSHOT=docs/status.png makes the docs'
// one), at MESHKA_SCREENSHOT_SIZE (WIDTH,HEIGHT; default 1280,900).
func TestStatusPageInBrowser(t *testing.T) {
	chromiumPath(t)
	ctx := timeout(t, 3*time.Minute)
	s := startStatusCluster(t, ctx)
	s.waitAllReady(t, ctx)
	url := s.statusURL(0, "/")

	dom := headless(t, ctx, url, pageBudget, "--dump-dom")
	page := parsePage(t, dom)
	if !page.loaded {
		t.Fatalf("the page was never drawn (no data-loaded on body):\n%s", dom)
	}
	if want := []string{"0", "1", "2"}; !slices.Equal(page.nodes, want) {
		t.Errorf("node rows %v, want %v", page.nodes, want)
	}
	for p := range int32(statusParts) {
		key := fmt.Sprintf("%s/%d", statusTopic, p)
		if got, want := page.leaders[key], strconv.Itoa(int(s.leaders[p])); got != want {
			t.Errorf("partition %s: the page names leader %q, Metadata %s", key, got, want)
		}
	}
	if got, want := page.groups[statusGroup], strconv.Itoa(s.coord); got != want {
		t.Errorf("group %s: the page names coordinator %q, FindCoordinator %s", statusGroup, got, want)
	}
	if t.Failed() {
		t.Logf("the dumped DOM:\n%s", dom)
	}

	shot := os.Getenv("MESHKA_SCREENSHOT")
	if shot == "" {
		return
	}
	if !filepath.IsAbs(shot) {
		shot = filepath.Join("..", shot)
	}
	size := os.Getenv("MESHKA_SCREENSHOT_SIZE")
	if size == "" {
		size = "1280,900"
	}
	headless(t, ctx, url, pageBudget, "--window-size="+size, "--screenshot="+shot)
	if fi, err := os.Stat(shot); err != nil || fi.Size() == 0 {
		t.Fatalf("no screenshot at %s: %v", shot, err)
	}
	t.Logf("screenshot of %s at %s: %s", url, size, shot)
}
