//go:build unix

package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"gopkg.in/yaml.v3"

	"github.com/meshka/meshka/config"
)

// These tests run meshka clusters as operators do: one process per node,
// joined by their gossip addresses, stopped by SIGTERM and killed by
// SIGKILL.

var (
	portsMu    sync.Mutex
	portsTaken = map[int]bool{} // handed out by freePorts in this run
)

// freePorts returns a base port such that base … base+n-1 on 127.0.0.1
// are free for TCP and UDP (gossip uses both) and were handed out by no
// earlier call. They are chosen below the kernel's ephemeral range, so no
// listener on port 0 (every other test's) can take one before the meshka
// it is meant for binds it.
func freePorts(t *testing.T, n int) int {
	t.Helper()
	lo, hi := 15000, 32768 // below Linux's default ephemeral range, 32768-60999
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		var first int
		if _, err := fmt.Sscan(string(b), &first); err == nil && first > lo+1000 {
			hi = min(hi, first)
		}
	}
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 1000 {
		base := lo + rand.IntN(hi-lo-n)
		if free(base, n) {
			for p := base; p < base+n; p++ {
				portsTaken[p] = true
			}
			return base
		}
	}
	t.Fatalf("no %d free consecutive ports in %d-%d", n, lo, hi)
	return 0
}

// free reports whether ports base … base+n-1 are untaken, TCP and UDP;
// portsMu is held.
func free(base, n int) bool {
	var closers []func() error
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	for p := base; p < base+n; p++ {
		if portsTaken[p] {
			return false
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return false
		}
		closers = append(closers, ln.Close)
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return false
		}
		closers = append(closers, pc.Close)
	}
	return true
}

func hostPort(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// writeConfig writes a configuration file into a fresh temporary
// directory and returns its path.
func writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "meshka.yaml")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// clusterConfig logs JSON and detects failures fast: probes every
// 100 ms, a silent node dead after 1 s.
const clusterConfig = `log:
  format: json
cluster:
  probe_interval: 100ms
  suspicion_timeout: 1s
  leave_timeout: 1s
kafka:
  shutdown_timeout: 5s
`

// started is what a JSON "meshka node started" line says.
type started struct {
	Node   int32
	Listen string
	Gossip string
}

func waitStarted(t *testing.T, ctx context.Context, p *process) started {
	t.Helper()
	line := p.waitFor(ctx, `"msg":"meshka node started"`)
	var s started
	if err := json.Unmarshal([]byte(line), &s); err != nil || s.Listen == "" || s.Gossip == "" {
		t.Fatalf("no listen and gossip addresses in %q: %v", line, err)
	}
	return s
}

// nodeClient is a franz-go client whose requests, through its seed
// broker, go to the node at addr alone.
func nodeClient(t *testing.T, addr string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// metadata asks the node cl is seeded with for Metadata on topics (none
// when empty).
func metadata(ctx context.Context, cl *kgo.Client, topics ...string) (*kmsg.MetadataResponse, error) {
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{}
	for _, topic := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		return nil, err
	}
	return resp.(*kmsg.MetadataResponse), nil
}

// brokerList is Metadata's brokers as "id@host:port", by id.
func brokerList(resp *kmsg.MetadataResponse) []string {
	bs := slices.Clone(resp.Brokers)
	slices.SortFunc(bs, func(a, b kmsg.MetadataResponseBroker) int { return int(a.NodeID - b.NodeID) })
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = fmt.Sprintf("%d@%s", b.NodeID, net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))))
	}
	return out
}

// waitBrokers waits until the node at addr, served by p, lists want
// brokers in Metadata and returns them as brokerList does; it fails if p
// exits or ctx ends first.
func waitBrokers(t *testing.T, ctx context.Context, p *process, addr string, want int) []string {
	t.Helper()
	cl := nodeClient(t, addr)
	var last []string
	var lastErr error
	for {
		resp, err := metadata(ctx, cl)
		if err == nil {
			if last = brokerList(resp); len(last) == want {
				return last
			}
		}
		lastErr = err
		select {
		case <-p.done:
			t.Fatalf("meshka at %s exited (%v) before listing %d brokers; it listed %v (%v)", addr, p.cmd.ProcessState, want, last, lastErr)
		case <-ctx.Done():
			t.Fatalf("meshka at %s never listed %d brokers; it listed %v (%v): %v", addr, want, last, lastErr, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// leaders is the leader of each of topic's parts partitions in Metadata
// from the node cl is seeded with.
func leaders(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, parts int) []int32 {
	t.Helper()
	resp, err := metadata(ctx, cl, topic)
	if err != nil {
		t.Fatalf("metadata for %s: %v", topic, err)
	}
	if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 || len(resp.Topics[0].Partitions) != parts {
		t.Fatalf("metadata for %s: %+v, want %d partitions", topic, resp.Topics, parts)
	}
	out := make([]int32, parts)
	for _, p := range resp.Topics[0].Partitions {
		if p.ErrorCode != 0 {
			t.Fatalf("metadata for %s/%d: error %d", topic, p.Partition, p.ErrorCode)
		}
		out[p.Partition] = p.Leader
	}
	return out
}

// count is how many stderr lines so far hold s.
func (p *process) count(s string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, l := range p.lines {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}

// Three meshka processes in one cluster, an idempotent producer writing
// through all of them, and SIGKILL of one that leads partitions midway:
// the others declare it dead, take its partitions, and the producer
// finishes; upstream holds every record exactly once, in order per
// partition. The survivors then stop on SIGTERM with exit status 0.
func TestClusterSIGKILLUnderIdempotentProducer(t *testing.T) {
	bin := meshkaBin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const topic, parts, n, victim = "cluster-killed", 12, 100_000, 0
	up := startUpstream(t, 3, parts)
	direct, err := kgo.NewClient(kgo.SeedBrokers(up.ListenAddrs()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	adm := kadm.NewClient(direct)
	if _, err := adm.CreateTopic(ctx, parts, 1, nil, topic); err != nil {
		t.Fatalf("creating %s upstream: %v", topic, err)
	}

	cfg := writeConfig(t, clusterConfig)
	gossip := freePorts(t, 3)
	procs := make([]*process, 3)
	addrs := make([]string, 3)
	for i := range procs {
		args := []string{"run", "--config", cfg, "--node-id", strconv.Itoa(i), "--listen", "127.0.0.1:0",
			"--cluster-bind", hostPort(gossip + i), "--upstream", strings.Join(up.ListenAddrs(), ",")}
		if i > 0 {
			args = append(args, "--join", hostPort(gossip))
		}
		procs[i] = startMeshka(t, bin, args...)
		s := waitStarted(t, ctx, procs[i])
		if s.Node != int32(i) || s.Gossip != hostPort(gossip+i) {
			t.Fatalf("node %d started as node %d with gossip %s, want gossip %s", i, s.Node, s.Gossip, hostPort(gossip+i))
		}
		addrs[i] = s.Listen
	}
	want := []string{"0@" + addrs[0], "1@" + addrs[1], "2@" + addrs[2]}
	clients := make([]*kgo.Client, 3)
	for i, p := range procs {
		if got := waitBrokers(t, ctx, p, addrs[i], 3); !slices.Equal(got, want) {
			t.Fatalf("node %d lists brokers %v, want %v", i, got, want)
		}
		clients[i] = nodeClient(t, addrs[i])
	}
	// One view, one placement: every node names the same leaders, and
	// the partitions are spread evenly.
	placed := leaders(t, ctx, clients[0], topic, parts)
	for i := 1; i < 3; i++ {
		if got := leaders(t, ctx, clients[i], topic, parts); !slices.Equal(got, placed) {
			t.Fatalf("node %d names leaders %v, node 0 %v", i, got, placed)
		}
	}
	led := map[int32]int{}
	for _, l := range placed {
		led[l]++
	}
	if led[0] != parts/3 || led[1] != parts/3 || led[2] != parts/3 {
		t.Fatalf("leaders %v: not %d partitions per node", placed, parts/3)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchMaxBytes(1<<10), kgo.RecordRetries(1<<30))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var acked sync.WaitGroup
	var errMu sync.Mutex
	var errs []error
	var ackedN atomic.Int64
	var ackedAtKill int64
	for i := 0; i < n; i++ {
		acked.Add(1)
		r := &kgo.Record{Topic: topic, Partition: int32(i % parts), Value: []byte(strconv.Itoa(i))}
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			defer acked.Done()
			if err != nil {
				errMu.Lock()
				errs = append(errs, err)
				errMu.Unlock()
				return
			}
			ackedN.Add(1)
		})
		if i == n/2 {
			for ackedN.Load() < n/4 {
				select {
				case <-ctx.Done():
					t.Fatalf("%d of %d records acknowledged before the kill: %v", ackedN.Load(), n, ctx.Err())
				case <-time.After(5 * time.Millisecond):
				}
			}
			ackedAtKill = ackedN.Load()
			if code := procs[victim].exit(ctx, syscall.SIGKILL); code != -1 {
				t.Fatalf("node %d exited %d on SIGKILL, want death by the signal", victim, code)
			}
		}
	}
	allAcked := make(chan struct{})
	go func() { acked.Wait(); close(allAcked) }()
	select {
	case <-allAcked:
	case <-ctx.Done():
		t.Fatalf("%d of %d records acknowledged, %d failed: %v", ackedN.Load(), n, len(errs), ctx.Err())
	}
	if len(errs) > 0 {
		t.Fatalf("%d of %d records failed, first: %v", len(errs), n, errs[0])
	}
	t.Logf("%d of %d records acknowledged at the kill", ackedAtKill, n)

	// The survivors dropped the dead node and lead every partition.
	survivors := []int{1, 2}
	wantAfter := []string{"1@" + addrs[1], "2@" + addrs[2]}
	var after []int32
	for _, i := range survivors {
		if got := waitBrokers(t, ctx, procs[i], addrs[i], 2); !slices.Equal(got, wantAfter) {
			t.Fatalf("node %d lists brokers %v after the kill, want %v", i, got, wantAfter)
		}
		got := leaders(t, ctx, clients[i], topic, parts)
		for p, l := range got {
			if l != 1 && l != 2 {
				t.Fatalf("node %d names node %d leader of partition %d after the kill", i, l, p)
			}
		}
		if after != nil && !slices.Equal(got, after) {
			t.Fatalf("the survivors name different leaders: %v and %v", after, got)
		}
		after = got
	}
	for _, i := range survivors {
		procs[i].waitFor(ctx, `"msg":"cluster member left or failed"`)
		if !procs[i].logged(`"gossip":"` + hostPort(gossip+victim) + `"`) {
			t.Errorf("node %d did not log node %d's failure", i, victim)
		}
	}

	// Read straight from upstream: each partition holds its numbers once,
	// in increasing order, and nothing else.
	next := make([]int, parts)
	for p := range next {
		next[p] = p
	}
	for got := 0; got < n; {
		fs := direct.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records back from upstream: %v", got, n, ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d from upstream: %v", topic, p, err) })
		for _, r := range fs.Records() {
			if want := strconv.Itoa(next[r.Partition]); string(r.Value) != want {
				t.Fatalf("partition %d offset %d holds %s, want %s: lost, doubled or reordered", r.Partition, r.Offset, r.Value, want)
			}
			next[r.Partition] += parts
			got++
		}
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if len(ends[topic]) != parts {
		t.Fatalf("end offsets of %d partitions, want %d", len(ends[topic]), parts)
	}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("end offset of %s/%d: %v", o.Topic, o.Partition, o.Err)
		}
		if want := int64((next[o.Partition] - int(o.Partition)) / parts); o.Offset != want {
			t.Errorf("partition %d ends at offset %d, want %d: a record was doubled", o.Partition, o.Offset, want)
		}
	})

	for _, i := range survivors {
		if code := procs[i].exit(ctx, syscall.SIGTERM); code != 0 {
			t.Fatalf("node %d exited %d on SIGTERM, want 0", i, code)
		}
		procs[i].waitFor(ctx, `"msg":"meshka node stopped"`)
	}
}

// The cluster's flags are checked like the keys they set, and a mistake
// is blamed on the flag, before anything binds or starts.
func TestClusterFlagErrors(t *testing.T) {
	bin := meshkaBin(t)
	ctx := testContext(t)
	data := filepath.Join(t.TempDir(), "data")
	run := []string{"run", "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:9"}
	dev := []string{"dev", "--listen", "127.0.0.1:0", "--data-dir", data}
	tests := []struct {
		args []string
		want string // all of stderr
	}{
		{slices.Concat(run, []string{"--cluster-bind", "127.0.0.1:0", "--node-id", "x"}),
			"meshka run: --node-id x: node.id: must be a whole number from 0 to 2147483647\n"},
		{slices.Concat(run, []string{"--cluster-bind", "127.0.0.1:0", "--node-id", "3000000000"}),
			"meshka run: --node-id 3000000000: node.id: must be a whole number from 0 to 2147483647\n"},
		{slices.Concat(run, []string{"--cluster-bind", "127.0.0.1:0", "--node-id", "-1"}),
			"meshka run: --node-id -1: node.id: must be between 0 and 2147483647, got -1\n"},
		{slices.Concat(dev, []string{"--cluster-bind", "127.0.0.1:0", "--node-id", "x"}),
			"meshka dev: --node-id x: node.id: must be a whole number from 0 to 2147483647\n"},
		{slices.Concat(dev, []string{"--cluster-bind", "127.0.0.1:0", "--nodes", "10"}),
			"meshka dev: --nodes 10: dev.nodes: must be between 1 and 9, got 10\n"},
		{slices.Concat(dev, []string{"--cluster-bind", "127.0.0.1:0", "--nodes", "0"}),
			"meshka dev: --nodes 0: dev.nodes: must be between 1 and 9, got 0\n"},
		{slices.Concat(dev, []string{"--cluster-bind", "127.0.0.1:0", "--nodes", "three"}),
			"meshka dev: --nodes three: dev.nodes: must be a whole number from 1 to 9\n"},
		{slices.Concat(run, []string{"--cluster-bind", "127.0.0.1:0", "--join", "seed"}),
			`meshka run: --join seed: cluster.join[0]: must be host:port, e.g. "127.0.0.1:9092", got "seed"` + "\n"},
		{slices.Concat(run, []string{"--cluster-bind", "127.0.0.1:0", "--join", "127.0.0.1:7946,:7946"}),
			`meshka run: --join 127.0.0.1:7946,:7946: cluster.join[1]: must name a host, e.g. "kafka.example.com:9092", got ":7946"` + "\n"},
		{slices.Concat(dev, []string{"--cluster-bind", "127.0.0.1:0", "--join", "seed:0"}),
			`meshka dev: --join seed:0: cluster.join[0]: port must be a number between 1 and 65535, got "0"` + "\n"},
		{slices.Concat(run, []string{"--cluster-bind", "localhost:0"}),
			`meshka run: --cluster-bind localhost:0: cluster.bind: must be an IP address and port, e.g. "10.0.0.1:7946" (gossip uses addresses, not names), got "localhost:0"` + "\n"},
		{slices.Concat(dev, []string{"--cluster-bind", "[::]:0"}),
			"meshka dev: --cluster-bind [::]:0: cluster.bind: listens on all interfaces (::); use 0.0.0.0, or set cluster.advertise_bind to the IP address and port other nodes should dial\n"},
		// Refused before it binds anything, so the default port is
		// never tried.
		{slices.Concat(run, []string{"--cluster-bind", "127.0.0.1"}),
			`meshka run: --cluster-bind 127.0.0.1: cluster.bind: must be host:port, e.g. "127.0.0.1:9092", got "127.0.0.1"` + "\n"},
	}
	for _, tc := range tests {
		if r := runMeshka(t, ctx, bin, tc.args...); r.code != 1 || r.stdout != "" || r.stderr != tc.want {
			t.Errorf("meshka %s: exit %d, stdout %q, stderr %q; want 1 and %q", strings.Join(tc.args, " "), r.code, r.stdout, r.stderr, tc.want)
		}
	}
	if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dev with a bad cluster flag created its data dir: %v", err)
	}
}

// A node whose --node-id a running node has does not start (exit status
// 1, an error naming the id), and the running node goes on serving, alone
// until a node with another id joins it.
func TestClusterDuplicateNodeIDRefused(t *testing.T) {
	bin := meshkaBin(t)
	ctx := testContext(t)
	up := startUpstream(t, 1, 1)
	cfg := writeConfig(t, clusterConfig)
	node := func(id string, join ...string) *process {
		args := []string{"run", "--config", cfg, "--node-id", id, "--listen", "127.0.0.1:0", "--cluster-bind", "127.0.0.1:0",
			"--upstream", strings.Join(up.ListenAddrs(), ",")}
		if len(join) > 0 {
			args = append(args, "--join", strings.Join(join, ","))
		}
		return startMeshka(t, bin, args...)
	}

	first := node("5")
	s := waitStarted(t, ctx, first)
	second := node("5", s.Gossip)
	if _, ok := second.exitOrLog(ctx, `"msg":"meshka node started"`); ok {
		t.Fatalf("a second node with id 5 started")
	}
	if code := second.cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("second node with id 5 exited %d, want 1", code)
	}
	line, ok := second.exitOrLog(ctx, `"msg":"cannot start meshka"`)
	if !ok || !strings.Contains(line, "node.id 5 is used by both") || !strings.Contains(line, "the node at "+s.Gossip) {
		t.Errorf("second node's error %q does not name node.id 5 and the node at %s", line, s.Gossip)
	}
	if line := first.waitFor(ctx, `"msg":"cluster: refused a join"`); !strings.Contains(line, "node.id 5 is used by both") {
		t.Errorf("first node's refusal %q does not name node.id 5", line)
	}

	select {
	case <-first.done:
		t.Fatalf("the first node exited (%v) after refusing a second node 5", first.cmd.ProcessState)
	default:
	}
	resp, err := metadata(ctx, nodeClient(t, s.Listen))
	if err != nil {
		t.Fatalf("metadata from the first node: %v", err)
	}
	if got, want := brokerList(resp), []string{"5@" + s.Listen}; !slices.Equal(got, want) {
		t.Fatalf("the first node lists brokers %v after the refusal, want %v", got, want)
	}

	// Its membership is intact: a node with its own id joins.
	third := node("6", s.Gossip)
	s3 := waitStarted(t, ctx, third)
	want := []string{"5@" + s.Listen, "6@" + s3.Listen}
	if got := waitBrokers(t, ctx, first, s.Listen, 2); !slices.Equal(got, want) {
		t.Fatalf("the first node lists %v once node 6 joined, want %v", got, want)
	}
	for _, p := range []*process{third, first} {
		if code := p.exit(ctx, syscall.SIGTERM); code != 0 {
			t.Fatalf("meshka exited %d on SIGTERM, want 0", code)
		}
	}
}

// meshka dev --nodes 3 runs three joined nodes in one process, node i on
// the configured Kafka and gossip ports + i with id i, and stops them all
// on SIGTERM.
func TestDevThreeNodes(t *testing.T) {
	bin := meshkaBin(t)
	ctx := testContext(t)
	kafka, gossip, remote := freePorts(t, 3), freePorts(t, 3), freePorts(t, 3)
	data := filepath.Join(t.TempDir(), "data")
	p := startMeshka(t, bin, "dev", "--nodes", "3", "--listen", hostPort(kafka), "--cluster-bind", hostPort(gossip),
		"--cluster-remote", hostPort(remote), "--data-dir", data)
	want := []string{"0@" + hostPort(kafka), "1@" + hostPort(kafka+1), "2@" + hostPort(kafka+2)}
	if got := waitBrokers(t, ctx, p, hostPort(kafka+2), 3); !slices.Equal(got, want) {
		t.Fatalf("node 2 lists brokers %v, want %v", got, want)
	}
	for i := range 2 {
		if got := waitBrokers(t, ctx, p, hostPort(kafka+i), 3); !slices.Equal(got, want) {
			t.Fatalf("node %d lists brokers %v, want %v", i, got, want)
		}
	}
	for i := range 3 {
		if line := p.waitFor(ctx, fmt.Sprintf("gossip=%s members=", hostPort(gossip+i))); !strings.Contains(line, "meshka node started") {
			t.Errorf("node %d's gossip is not at %s: %q", i, hostPort(gossip+i), line)
		}
	}
	produceAndConsume(t, ctx, hostPort(kafka+2), "dev-nodes")
	devMeshProtected(t, p, filepath.Join(data, "mesh"), hostPort(remote+1))

	if code := p.exit(ctx, syscall.SIGTERM); code != 0 {
		t.Fatalf("dev --nodes 3 exited %d on SIGTERM, want 0", code)
	}
	if got := p.count("meshka node stopped"); got != 3 {
		t.Fatalf("%d nodes logged stopping, want 3:\n%s", got, p.stderr())
	}
}

// The deployment examples use only flags and keys meshka has: the
// Kubernetes ConfigMap passes config check with the pod's environment,
// and the StatefulSet's and the systemd unit's command lines parse (a
// --help after them succeeds only when every flag before it is known).
func TestDeployExamples(t *testing.T) {
	bin := meshkaBin(t)
	ctx := testContext(t)

	f, err := os.Open("../../deploy/kubernetes/meshka.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var config string
	var args []string
	kinds := map[string]int{}
	for dec := yaml.NewDecoder(f); ; {
		var doc struct {
			Kind string
			Data map[string]string
			Spec struct {
				Replicas int
				Template struct {
					Spec struct {
						Containers []struct{ Args []string }
					}
				}
			}
		}
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("deploy/kubernetes/meshka.yaml: %v", err)
		}
		kinds[doc.Kind]++
		switch doc.Kind {
		case "ConfigMap":
			config = doc.Data["meshka.yaml"]
		case "StatefulSet":
			if doc.Spec.Replicas != 3 || len(doc.Spec.Template.Spec.Containers) != 1 {
				t.Fatalf("StatefulSet of %d replicas and %d containers, want 3 and 1", doc.Spec.Replicas, len(doc.Spec.Template.Spec.Containers))
			}
			args = doc.Spec.Template.Spec.Containers[0].Args
		}
	}
	if kinds["ConfigMap"] != 1 || kinds["Service"] != 2 || kinds["StatefulSet"] != 1 || config == "" {
		t.Fatalf("deploy/kubernetes/meshka.yaml holds %v and config %q", kinds, config)
	}
	path := writeConfig(t, config)
	cmd := exec.CommandContext(ctx, bin, "config", "check", path)
	cmd.Env = append(os.Environ(), "POD_NAME=meshka-2", "POD_NAMESPACE=default", "POD_IP=10.1.2.3")
	if out, err := cmd.CombinedOutput(); err != nil || string(out) != "ok\n" {
		t.Errorf("config check of the ConfigMap's meshka.yaml: %v\n%s", err, out)
	}
	if !slices.Contains(args, "$(POD_INDEX)") {
		t.Errorf("the StatefulSet's args %q do not pass the pod index", args)
	}
	for i, a := range args {
		args[i] = strings.ReplaceAll(a, "$(POD_INDEX)", "2")
	}
	if r := runMeshka(t, ctx, bin, append(args, "--help")...); r.code != 0 {
		t.Errorf("meshka %s --help: exit %d, stderr %q", strings.Join(args, " "), r.code, r.stderr)
	}

	unit, err := os.ReadFile("../../deploy/systemd/meshka-cluster.service")
	if err != nil {
		t.Fatal(err)
	}
	var execStart string
	for _, l := range strings.Split(strings.ReplaceAll(string(unit), "\\\n", " "), "\n") {
		if s, ok := strings.CutPrefix(l, "ExecStart="); ok {
			execStart = s
		}
	}
	for i := range 3 {
		env, err := os.ReadFile(fmt.Sprintf("../../deploy/systemd/cluster/node-%d.env", i))
		if err != nil {
			t.Fatal(err)
		}
		vars := map[string]string{}
		for _, l := range strings.Split(string(env), "\n") {
			if k, v, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(l, "#") {
				vars[k] = v
			}
		}
		if vars["MESHKA_NODE_ID"] != strconv.Itoa(i) {
			t.Errorf("node-%d.env sets MESHKA_NODE_ID=%s", i, vars["MESHKA_NODE_ID"])
		}
		line := os.Expand(execStart, func(k string) string {
			v, ok := vars[k]
			if !ok {
				t.Errorf("node-%d.env does not set %s", i, k)
			}
			return v
		})
		fields := strings.Fields(line)
		if len(fields) < 2 || fields[0] != "/usr/local/bin/meshka" || fields[1] != "run" {
			t.Fatalf("ExecStart=%s", execStart)
		}
		if r := runMeshka(t, ctx, bin, append(fields[1:], "--help")...); r.code != 0 {
			t.Errorf("meshka %s --help: exit %d, stderr %q", strings.Join(fields[1:], " "), r.code, r.stderr)
		}
	}
}

// devMeshProtected checks that dev protected its mesh with what it made
// in dir: it said so, the gossip key file holds a key, and remoting at
// addr takes a client with the dev certificate and refuses one without.
func devMeshProtected(t *testing.T, p *process, dir, addr string) {
	t.Helper()
	if line := p.waitFor(testContext(t), "dev mesh: gossip encrypted and remoting under mutual TLS"); !strings.Contains(line, dir) {
		t.Fatalf("dev says %q, want the directory %s", line, dir)
	}
	if _, err := (config.Cluster{GossipKeyFile: filepath.Join(dir, "gossip.key")}).GossipKeyring(); err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(filepath.Join(dir, "dev-mesh-ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca)
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "dev-node.pem"), filepath.Join(dir, "dev-node-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	handshake := func(c *tls.Config) error {
		conn, err := tls.Dial("tcp", addr, c)
		if err != nil {
			return err
		}
		defer conn.Close()
		// With TLS 1.3 a refused client certificate shows on the first
		// read; an accepted one gets the server's HTTP/2 settings.
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		return err
	}
	if err := handshake(&tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}}); err != nil {
		t.Fatalf("remoting at %s with the dev certificate: %v", addr, err)
	}
	if err := handshake(&tls.Config{RootCAs: roots, NextProtos: []string{"h2"}}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("remoting at %s without a certificate: %v, want a certificate error", addr, err)
	}
}
