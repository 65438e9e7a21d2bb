package test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"net"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/cluster"
	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/internal/testenv"
	"github.com/meshka/meshka/node"
)

// These are the acceptance tests of meshka's cluster: several nodes in
// front of one upstream, each a broker to Kafka clients, each leading its
// share of the partitions and coordinating its share of the groups, with
// clients following the view as nodes crash or leave.

// askNode sends req to the node cl bootstraps from (its one seed), not to
// whichever broker the client would pick.
func askNode(ctx context.Context, cl *kgo.Client, req kmsg.Request) (kmsg.Response, error) {
	seeds := cl.SeedBrokers()
	if len(seeds) != 1 {
		return nil, fmt.Errorf("the client has %d seeds, want one node", len(seeds))
	}
	return seeds[0].Request(ctx, req)
}

// topicMetadata asks the node cl bootstraps from for topic's metadata.
func topicMetadata(t *testing.T, ctx context.Context, cl *kgo.Client, topic string) *kmsg.MetadataResponse {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := askNode(ctx, cl, req)
	if err != nil {
		t.Fatalf("metadata of %s: %v", topic, err)
	}
	return resp.(*kmsg.MetadataResponse)
}

// leadersOf waits until the node cl bootstraps from names a leader for
// every one of topic's parts partitions, and returns its whole answer and
// the leaders by partition.
func leadersOf(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, parts int) (*kmsg.MetadataResponse, map[int32]int32) {
	t.Helper()
	var md *kmsg.MetadataResponse
	waitFor(t, ctx, fmt.Sprintf("metadata naming a leader for every partition of %s", topic), func() bool {
		md = topicMetadata(t, ctx, cl, topic)
		if len(md.Topics) != 1 || md.Topics[0].ErrorCode != 0 || len(md.Topics[0].Partitions) != parts {
			return false
		}
		for _, p := range md.Topics[0].Partitions {
			if p.ErrorCode != 0 || p.Leader < 0 {
				return false
			}
		}
		return true
	})
	leaders := make(map[int32]int32, parts)
	for _, p := range md.Topics[0].Partitions {
		leaders[p.Partition] = p.Leader
	}
	return md, leaders
}

// checkBrokers fails unless brokers are exactly the running nodes of c,
// each with its id and Kafka address.
func checkBrokers(t *testing.T, c *testenv.Cluster, asked string, brokers []kmsg.MetadataResponseBroker) {
	t.Helper()
	want := map[int32]string{}
	for i, n := range c.Nodes {
		if n != nil {
			want[int32(i)] = c.Addr(i)
		}
	}
	got := map[int32]string{}
	for _, b := range brokers {
		got[b.NodeID] = net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
	}
	if len(brokers) != len(want) || !maps.Equal(got, want) {
		t.Errorf("%s lists brokers %v, want the nodes %v", asked, got, want)
	}
}

// allNodes is a franz-go client with every running node as a seed.
func allNodes(t *testing.T, c *testenv.Cluster, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.Addrs()...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// nodeClients are franz-go clients bootstrapping from one node each.
func nodeClients(t *testing.T, c *testenv.Cluster) []*kgo.Client {
	out := make([]*kgo.Client, len(c.Nodes))
	for i := range c.Nodes {
		out[i] = c.Client(t, i)
	}
	return out
}

// Three nodes: every node's Metadata lists the three as brokers at their
// addresses, names the same leader for each of 64 partitions, spreads
// them 22/21/21, and names a live controller. A client bootstrapping from
// one node writes a record to every partition and reads them all back;
// each partition's actor is then active on its leader and nowhere else.
func TestClusterMetadataAndLeaders(t *testing.T) {
	c := testenv.StartCluster(t, 3)
	ctx := timeout(t, 2*time.Minute)
	const topic, parts = "cluster-leaders", 64
	createTopic(t, ctx, c.Client(t, 0), topic, parts, nil)

	var first map[int32]int32
	controllers := map[int32]bool{}
	for i, cl := range nodeClients(t, c) {
		md, leaders := leadersOf(t, ctx, cl, topic, parts)
		asked := fmt.Sprintf("node %d", i)
		checkBrokers(t, c, asked, md.Brokers)
		if md.ControllerID < 0 || int(md.ControllerID) >= len(c.Nodes) {
			t.Errorf("%s names controller %d, not a live node", asked, md.ControllerID)
		}
		controllers[md.ControllerID] = true
		led := map[int32]int{}
		for _, l := range leaders {
			led[l]++
		}
		for id := int32(0); id < 3; id++ {
			if led[id] != 21 && led[id] != 22 {
				t.Errorf("%s: node %d leads %d of %d partitions, want 21 or 22 (all: %v)", asked, id, led[id], parts, led)
			}
		}
		if first == nil {
			first = leaders
		} else if !maps.Equal(leaders, first) {
			for p := int32(0); p < parts; p++ {
				if leaders[p] != first[p] {
					t.Errorf("partition %d: node 0 names leader %d, %s names %d", p, first[p], asked, leaders[p])
				}
			}
		}
	}
	if len(controllers) != 1 {
		t.Errorf("the nodes name different controllers: %v", slices.Sorted(maps.Keys(controllers)))
	}
	if t.Failed() {
		t.FailNow()
	}

	p := c.Client(t, 1, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	rs := make([]*kgo.Record, parts)
	for i := range rs {
		rs[i] = &kgo.Record{Partition: int32(i), Value: []byte("partition-" + strconv.Itoa(i))}
	}
	if err := p.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce one record to every partition: %v", err)
	}
	got := consumeN(t, ctx, c.Client(t, 1, kgo.ConsumeTopics(topic), fromStart(), kgo.FetchMaxWait(100*time.Millisecond)), parts)
	seen := map[int32]bool{}
	for _, r := range got {
		if want := "partition-" + strconv.Itoa(int(r.Partition)); string(r.Value) != want || r.Offset != 0 {
			t.Errorf("partition %d offset %d holds %q, want %q at offset 0", r.Partition, r.Offset, r.Value, want)
		}
		seen[r.Partition] = true
	}
	if len(seen) != parts {
		t.Errorf("read back %d partitions' records, want %d", len(seen), parts)
	}

	for p := int32(0); p < parts; p++ {
		for i, n := range c.Nodes {
			if active, leader := n.PartitionActive(topic, p), first[p] == int32(i); active != leader {
				t.Errorf("partition %d (leader node %d): active on node %d is %v", p, first[p], i, active)
			}
		}
	}
}

// requestsByNode counts, per broker id and request key, the requests a
// franz-go client had answered.
type requestsByNode struct {
	mu sync.Mutex
	n  map[int32]map[int16]int
}

func (h *requestsByNode) OnBrokerE2E(meta kgo.BrokerMetadata, key int16, e2e kgo.BrokerE2E) {
	if e2e.Err() != nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == nil {
		h.n = map[int32]map[int16]int{}
	}
	if h.n[meta.NodeID] == nil {
		h.n[meta.NodeID] = map[int16]int{}
	}
	h.n[meta.NodeID][key]++
}

// count is how many requests of key each broker answered.
func (h *requestsByNode) count(key int16) map[int32]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[int32]int{}
	for id, keys := range h.n {
		if keys[key] > 0 {
			out[id] = keys[key]
		}
	}
	return out
}

// check fails unless every node answered requests of key.
func (h *requestsByNode) check(t *testing.T, what string, key int16, nodes int) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for id := int32(0); id < int32(nodes); id++ {
		if h.n[id][key] == 0 {
			t.Errorf("no %s request answered by node %d: the client did not use every broker", what, id)
		}
	}
}

// dialLog is a sarama dialer that records the addresses dialed.
type dialLog struct {
	mu    sync.Mutex
	addrs map[string]int
}

func (d *dialLog) Dial(network, addr string) (net.Conn, error) {
	d.mu.Lock()
	if d.addrs == nil {
		d.addrs = map[string]int{}
	}
	d.addrs[addr]++
	d.mu.Unlock()
	return net.Dial(network, addr)
}

func (d *dialLog) check(t *testing.T, c *testenv.Cluster) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range c.Nodes {
		if d.addrs[c.Addr(i)] == 0 {
			t.Errorf("sarama never connected to node %d at %s (dialed %v)", i, c.Addr(i), d.addrs)
		}
	}
}

// Clients that bootstrap from one node write and read a topic whose
// partitions the three nodes lead: each reads back exactly what it wrote,
// where the producer was told it went, and talked to every node.
func TestClusterClients(t *testing.T) {
	c := testenv.StartCluster(t, 3)
	const parts, n = 12, 3000

	t.Run("franz-go", func(t *testing.T) {
		ctx := timeout(t, time.Minute)
		const topic = "cluster-clients-franz"
		createTopic(t, ctx, c.Client(t, 0), topic, parts, nil)
		hooks := &requestsByNode{}
		p := c.Client(t, 2, kgo.WithHooks(hooks), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		type at struct {
			p   int32
			off int64
		}
		var mu sync.Mutex
		sent := make(map[int]at, n)
		for i := range n {
			r := &kgo.Record{Partition: int32(i % parts), Value: []byte(strconv.Itoa(i))}
			p.Produce(ctx, r, func(r *kgo.Record, err error) {
				if err != nil {
					t.Errorf("produce %s to %d: %v", r.Value, r.Partition, err)
					return
				}
				mu.Lock()
				sent[i] = at{r.Partition, r.Offset}
				mu.Unlock()
			})
		}
		if err := p.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		if len(sent) != n {
			t.Fatalf("%d of %d records acknowledged", len(sent), n)
		}
		mu.Unlock()

		cons := c.Client(t, 2, kgo.WithHooks(hooks), kgo.ConsumeTopics(topic), fromStart(), kgo.FetchMaxWait(100*time.Millisecond))
		got := consumeN(t, ctx, cons, n)
		read := map[int]bool{}
		next := map[int32]int64{}
		for _, r := range got {
			i, err := strconv.Atoi(string(r.Value))
			if err != nil || sent[i] != (at{r.Partition, r.Offset}) || read[i] {
				t.Fatalf("record %q at %d/%d: not a record written there once (written at %v)", r.Value, r.Partition, r.Offset, sent[i])
			}
			if r.Offset != next[r.Partition] {
				t.Fatalf("partition %d: offset %d follows %d", r.Partition, r.Offset, next[r.Partition]-1)
			}
			next[r.Partition]++
			read[i] = true
		}
		hooks.check(t, "Produce", int16(kmsg.Produce), 3)
		hooks.check(t, "Fetch", int16(kmsg.Fetch), 3)
	})

	t.Run("sarama", func(t *testing.T) {
		ctx := timeout(t, time.Minute)
		const topic = "cluster-clients-sarama"
		seed := []string{c.Addr(1)}
		saramaCreateTopic(t, newSaramaAdmin(t, c.Addr(1)), topic, parts, nil)
		dials := &dialLog{}
		cfg := saramaConfig()
		cfg.Net.Proxy.Enable, cfg.Net.Proxy.Dialer = true, dials
		cfg.Producer.Partitioner = sarama.NewManualPartitioner
		producer, err := sarama.NewSyncProducer(seed, cfg)
		if err != nil {
			t.Fatalf("sync producer: %v", err)
		}
		defer producer.Close()
		msgs := make([]*sarama.ProducerMessage, n)
		for i := range msgs {
			msgs[i] = &sarama.ProducerMessage{Topic: topic, Partition: int32(i % parts), Value: sarama.StringEncoder(strconv.Itoa(i))}
		}
		if err := producer.SendMessages(msgs); err != nil {
			t.Fatalf("produce: %v", saramaSendErr(err))
		}
		byPart := map[int32][]*sarama.ProducerMessage{}
		for _, m := range msgs {
			byPart[m.Partition] = append(byPart[m.Partition], m)
		}

		consumer, err := sarama.NewConsumer(seed, cfg)
		if err != nil {
			t.Fatalf("consumer: %v", err)
		}
		defer consumer.Close()
		for p := int32(0); p < parts; p++ {
			want := byPart[p]
			got, hwm := saramaConsumePartition(ctx, t, consumer, topic, p, len(want))
			if hwm != int64(len(want)) {
				t.Errorf("partition %d: high watermark %d, want %d", p, hwm, len(want))
			}
			for j, m := range got {
				w := want[j]
				v, _ := w.Value.Encode()
				if m.Offset != int64(j) || w.Offset != m.Offset || !bytes.Equal(m.Value, v) {
					t.Fatalf("partition %d: record %d is %q at offset %d, want %q at %d (the producer was told %d)", p, j, m.Value, m.Offset, v, j, w.Offset)
				}
			}
		}
		dials.check(t, c)
	})

	t.Run("kcat", func(t *testing.T) {
		kcat, err := exec.LookPath("kcat")
		if err != nil {
			t.Skipf("kcat is not on PATH, so librdkafka's view of the cluster is not tested: %v", err)
		}
		ctx := timeout(t, time.Minute)
		const topic, kparts, records = "cluster-clients-kcat", 6, 300
		createTopic(t, ctx, c.Client(t, 0), topic, kparts, nil)
		run := func(stdin string, args ...string) string {
			t.Helper()
			cmd := exec.CommandContext(ctx, kcat, append([]string{"-b", c.Addr(2), "-m", "30"}, args...)...)
			cmd.Stdin = strings.NewReader(stdin)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("kcat %v: %v\n%s", args, err, stderr.String())
			}
			return string(out)
		}

		list := run("", "-L", "-t", topic)
		if !strings.Contains(list, " 3 brokers:") {
			t.Errorf("kcat -L does not list 3 brokers:\n%s", list)
		}
		for i := range c.Nodes {
			if !strings.Contains(list, fmt.Sprintf("broker %d at %s", i, c.Addr(i))) {
				t.Errorf("kcat -L does not list node %d at %s:\n%s", i, c.Addr(i), list)
			}
		}
		_, leaders := leadersOf(t, ctx, c.Client(t, 2), topic, kparts)
		for p, l := range leaders {
			if !strings.Contains(list, fmt.Sprintf("partition %d, leader %d,", p, l)) {
				t.Errorf("kcat -L does not name node %d as the leader of partition %d:\n%s", l, p, list)
			}
		}

		var in strings.Builder
		want := make([]string, records)
		for i := range records {
			want[i] = fmt.Sprintf("k%03d:v%03d", i, i)
			in.WriteString(want[i] + "\n")
		}
		run(in.String(), "-P", "-t", topic, "-K:")
		out := run("", "-C", "-t", topic, "-e", "-o", "beginning", "-q", "-f", "%p:%k:%s\n")
		var got []string
		inPart := map[string]bool{}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			p, kv, ok := strings.Cut(line, ":")
			if !ok {
				t.Fatalf("kcat -C printed %q", line)
			}
			inPart[p] = true
			got = append(got, kv)
		}
		sort.Strings(got)
		if !slices.Equal(got, want) {
			t.Errorf("kcat read back %d records, want the %d written; got %v", len(got), len(want), got)
		}
		// Keys hash to every partition, so kcat wrote to and read from
		// every leader.
		if len(inPart) != kparts {
			t.Errorf("kcat's records went to partitions %v, want all %d", slices.Sorted(maps.Keys(inPart)), kparts)
		}
	})
}

// coordinatorOf asks every node for group's coordinator and fails unless
// all name the same running node, at its address; it returns that node.
func coordinatorOf(t *testing.T, ctx context.Context, c *testenv.Cluster, group string) int {
	t.Helper()
	coord := -1
	for i, n := range c.Nodes {
		if n == nil {
			continue
		}
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorKey, req.CoordinatorKeys = group, []string{group}
		resp, err := askNode(ctx, c.Client(t, i), req)
		if err != nil {
			t.Fatalf("FindCoordinator %s of node %d: %v", group, i, err)
		}
		fc := resp.(*kmsg.FindCoordinatorResponse)
		code, id, host, port := fc.ErrorCode, fc.NodeID, fc.Host, fc.Port
		if len(fc.Coordinators) == 1 {
			co := fc.Coordinators[0]
			code, id, host, port = co.ErrorCode, co.NodeID, co.Host, co.Port
		}
		if code != 0 || id < 0 || int(id) >= len(c.Nodes) || c.Nodes[id] == nil {
			t.Fatalf("node %d names coordinator %d (error %d) for %s, not a running node", i, id, code, group)
		}
		if addr := net.JoinHostPort(host, strconv.Itoa(int(port))); addr != c.Addr(int(id)) {
			t.Errorf("node %d names coordinator %d at %s, which is at %s", i, id, addr, c.Addr(int(id)))
		}
		if coord >= 0 && int(id) != coord {
			t.Errorf("node %d names coordinator %d for %s, an earlier node named %d", i, id, group, coord)
		}
		if coord < 0 {
			coord = int(id)
		}
	}
	return coord
}

// checkGroupActive fails unless group's actor runs on the coordinator
// and on no other node.
func checkGroupActive(t *testing.T, c *testenv.Cluster, group string, coord int) {
	t.Helper()
	for i, n := range c.Nodes {
		if n != nil && n.GroupActive(group) != (i == coord) {
			t.Errorf("group %s (coordinator node %d): active on node %d is %v", group, coord, i, n.GroupActive(group))
		}
	}
}

// Consumer groups of franz-go, sarama and kafka-go, three members each,
// every member bootstrapping from another node, consume a topic: every
// record is consumed, every member consumes, every node names the same
// coordinator, and the group's actor runs there and only there.
func TestClusterGroups(t *testing.T) {
	c := testenv.StartCluster(t, 3)
	const parts, n = 6, 600
	admin := allNodes(t, c)

	// run creates the topic, starts the members with start (which returns
	// their names and a stop), waits for a stable group of three and
	// checks it.
	run := func(t *testing.T, topic, group string, start func(t *testing.T, seen *seqLog) ([]string, func())) {
		ctx := timeout(t, time.Minute)
		createTopic(t, ctx, admin, topic, parts, nil)
		seen := newSeqLog()
		names, stop := start(t, seen)
		waitStable(t, ctx, admin, group, 3)
		produceSeq(t, ctx, allNodes(t, c, kgo.RecordPartitioner(kgo.ManualPartitioner())), topic, parts, 0, n, 50, 0)
		waitFor(t, ctx, fmt.Sprintf("all %d records consumed", n), func() bool { return seen.distinct() == n })
		coord := coordinatorOf(t, ctx, c, group)
		checkGroupActive(t, c, group, coord)
		stop()
		seen.check(t, n)
		for _, name := range names {
			if seen.consumedBy(name) == 0 {
				t.Errorf("%s consumed nothing though it was one of three members of a stable group", name)
			}
		}
	}

	t.Run("franz-go", func(t *testing.T) {
		const topic, group = "cluster-groups-franz", "cluster-groups-franz"
		run(t, topic, group, func(t *testing.T, seen *seqLog) ([]string, func()) {
			var ms []*member
			var names []string
			for i := range c.Nodes {
				m := newMember(t, []string{c.Addr(i)}, fmt.Sprintf("franz-%d", i), group, topic)
				m.consume(seen, 0)
				ms = append(ms, m)
				names = append(names, m.name)
			}
			return names, func() {
				ctx := timeout(t, 30*time.Second)
				for _, m := range ms {
					if err := m.stop(ctx); err != nil {
						t.Errorf("%s: %v", m.name, err)
					}
					m.errs(t)
				}
			}
		})
	})

	t.Run("sarama", func(t *testing.T) {
		const topic, group = "cluster-groups-sarama", "cluster-groups-sarama"
		run(t, topic, group, func(t *testing.T, seen *seqLog) ([]string, func()) {
			cfg := saramaConfig()
			cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
			cfg.Consumer.Offsets.AutoCommit.Enable = false
			cfg.Consumer.Group.Session.Timeout = groupSession
			cfg.Consumer.Group.Heartbeat.Interval = groupHeartbeat
			cfg.Consumer.Group.Rebalance.Timeout = 10 * time.Second
			consumeCtx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			var errMu sync.Mutex
			var groupErrs []string
			var names []string
			for i := range c.Nodes {
				h := &saramaMember{name: fmt.Sprintf("sarama-%d", i), topic: topic, seen: seen}
				names = append(names, h.name)
				g, err := sarama.NewConsumerGroup([]string{c.Addr(i)}, group, cfg)
				if err != nil {
					t.Fatalf("consumer group: %v", err)
				}
				runSaramaMember(consumeCtx, &wg, g, h, topic, func(msg string) {
					errMu.Lock()
					groupErrs = append(groupErrs, msg)
					errMu.Unlock()
				})
			}
			return names, func() {
				cancel()
				wg.Wait()
				for _, e := range groupErrs {
					t.Errorf("sarama group error: %s", e)
				}
			}
		})
	})

	t.Run("kafka-go", func(t *testing.T) {
		const topic, group = "cluster-groups-kafkago", "cluster-groups-kafkago"
		run(t, topic, group, func(t *testing.T, seen *seqLog) ([]string, func()) {
			readCtx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			var errMu sync.Mutex
			var readerErrs, commitErrs []string
			var names []string
			for i := range c.Nodes {
				name := fmt.Sprintf("kafkago-%d", i)
				names = append(names, name)
				r := kafka.NewReader(kafka.ReaderConfig{
					Brokers:           []string{c.Addr(i)},
					GroupID:           group,
					Topic:             topic,
					MinBytes:          1,
					MaxBytes:          1 << 20,
					MaxWait:           time.Second, // kafka-go leaves a quarter for the answer to arrive
					StartOffset:       kafka.FirstOffset,
					SessionTimeout:    groupSession,
					HeartbeatInterval: groupHeartbeat,
					RebalanceTimeout:  10 * time.Second,
					JoinGroupBackoff:  200 * time.Millisecond,
					ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
						errMu.Lock()
						defer errMu.Unlock()
						readerErrs = append(readerErrs, name+": "+fmt.Sprintf(msg, args...))
					}),
				})
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer r.Close()
					for {
						m, err := r.FetchMessage(readCtx)
						if err != nil {
							return // the test stopped reading
						}
						seen.addValue(name, m.Value, int32(m.Partition), m.Offset)
						if err := r.CommitMessages(readCtx, m); err != nil && readCtx.Err() == nil {
							errMu.Lock()
							commitErrs = append(commitErrs, fmt.Sprintf("%s: commit %d/%d: %v", name, m.Partition, m.Offset, err))
							errMu.Unlock()
						}
					}
				}()
			}
			return names, func() {
				cancel()
				wg.Wait()
				for _, e := range commitErrs {
					t.Errorf("kafka-go %s", e)
				}
				for _, e := range readerErrs {
					// As in TestKafkaGoConsumerGroup: a reader closed
					// mid-fetch logs the cancellation, and one syncing
					// while another joins is told to rejoin.
					if strings.Contains(e, "context canceled") || strings.Contains(e, "[27] Rebalance In Progress") {
						t.Logf("kafka-go reader: %s", e)
						continue
					}
					t.Errorf("kafka-go reader error: %s", e)
				}
			}
		})
	})
}

// An idempotent franz-go producer that knows every node writes 200,000
// records (keys spread over 12 partitions, values numbered) while a node
// that leads some of the partitions is lost after 60,000 acknowledgements:
// crashed (no leave) or stopped (leave, then drain). Read straight from
// upstream, every acknowledged record is there once, where the producer
// was told, every partition's records in the order produced, and no
// record at all appears twice.
func TestClusterIdempotentProducerNodeLoss(t *testing.T) {
	for _, tc := range []struct {
		name string
		lose func(t *testing.T, c *testenv.Cluster, i int)
	}{
		{"crash", func(_ *testing.T, c *testenv.Cluster, i int) { c.Crash(i) }},
		{"stop", func(t *testing.T, c *testenv.Cluster, i int) { c.Stop(t, i) }},
	} {
		t.Run(tc.name, func(t *testing.T) { idempotentThroughNodeLoss(t, tc.lose) })
	}
}

func idempotentThroughNodeLoss(t *testing.T, lose func(t *testing.T, c *testenv.Cluster, i int)) {
	c := testenv.StartCluster(t, 3)
	ctx := timeout(t, 2*time.Minute)
	const topic, parts, n, loseAfter, victim = "cluster-idempotent", 12, 200_000, 60_000, 1
	createTopic(t, ctx, c.DirectClient(t), topic, parts, nil)
	_, leaders := leadersOf(t, ctx, c.Client(t, 0), topic, parts)
	var victimLeads []int32
	for p, l := range leaders {
		if l == victim {
			victimLeads = append(victimLeads, p)
		}
	}
	if len(victimLeads) == 0 {
		t.Fatalf("node %d leads none of %s's partitions: %v", victim, topic, leaders)
	}
	slices.Sort(victimLeads)

	type ack struct {
		p    int32
		off  int64
		err  error
		done bool
	}
	var (
		mu    sync.Mutex
		acks  = make([]ack, n)
		acked atomic.Int64
		gaps  []int32
	)
	hooks := &requestsByNode{}
	p := allNodes(t, c, kgo.WithHooks(hooks), kgo.DefaultProduceTopic(topic), kgo.MaxBufferedRecords(10_000), kgo.ProducerBatchMaxBytes(smallBatch),
		kgo.ProducerOnDataLossDetected(func(_ string, p int32) {
			mu.Lock()
			gaps = append(gaps, p)
			mu.Unlock()
		}))
	lostAt := -1
	start := time.Now()
	for i := range n {
		if lostAt < 0 && acked.Load() >= loseAfter {
			t.Logf("losing node %d (leader of partitions %v) after %d acks, %d records queued", victim, victimLeads, acked.Load(), i)
			lose(t, c, victim)
			lostAt = i
		}
		r := &kgo.Record{Key: []byte("key-" + strconv.Itoa(i%1000)), Value: binary.BigEndian.AppendUint64(nil, uint64(i))}
		p.Produce(ctx, r, func(r *kgo.Record, err error) {
			mu.Lock()
			acks[i] = ack{r.Partition, r.Offset, err, true}
			mu.Unlock()
			if err == nil {
				acked.Add(1)
			}
		})
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	t.Logf("%d records produced in %v; Produce requests answered by node %v", n, time.Since(start).Round(time.Millisecond), hooks.count(int16(kmsg.Produce)))
	if lostAt < 0 {
		t.Fatalf("fewer than %d of %d records were acknowledged before the last was queued; node %d was never lost", loseAfter, n, victim)
	}

	mu.Lock()
	var failed []string
	for i, a := range acks {
		if !a.done {
			t.Fatalf("record %d: no callback after the flush", i)
		}
		if a.err != nil {
			if len(failed) < 5 {
				failed = append(failed, fmt.Sprintf("%d: %v", i, a.err))
			}
		}
	}
	nacked := acked.Load()
	if nacked != n {
		// franz-go retries an idempotent producer's records as long as
		// it takes; a failed one is one the cluster refused for good.
		t.Errorf("%d of %d records failed (first: %v)", n-int(nacked), n, failed)
	}
	if len(gaps) > 0 {
		t.Logf("upstream told the producer of a gap in its sequence numbers %d times (partitions %v)", len(gaps), gaps)
	}
	mu.Unlock()

	// The survivors lead every partition now, all of which were written
	// after the loss: each partition's actor runs on its new leader
	// only, the other survivor having stopped any it had led before.
	c.WaitMembers(t, 2)
	var now map[int32]int32
	for i, n := range c.Nodes {
		if n == nil {
			continue
		}
		_, leaders := leadersOf(t, ctx, c.Client(t, i), topic, parts)
		if now == nil {
			now = leaders
		} else if !maps.Equal(leaders, now) {
			t.Errorf("the survivors name different leaders: %v and %v", now, leaders)
		}
	}
	for p := int32(0); p < parts; p++ {
		if now[p] == victim {
			t.Errorf("partition %d is still led by the lost node %d", p, victim)
		}
		for i, n := range c.Nodes {
			if n != nil && n.PartitionActive(topic, p) != (now[p] == int32(i)) {
				t.Errorf("partition %d (led by node %d after the loss): active on node %d is %v", p, now[p], i, n.PartitionActive(topic, p))
			}
		}
	}

	direct := c.DirectClient(t)
	end := endOffsets(t, ctx, direct, topic)
	total := int64(0)
	for p := int32(0); p < parts; p++ {
		if end[p] == 0 {
			t.Errorf("partition %d holds no records: the keys were to reach every partition", p)
		}
		total += end[p]
	}
	if total < nacked {
		t.Errorf("upstream holds %d records, %d were acknowledged", total, nacked)
	}
	got := consumeN(t, ctx, c.DirectClient(t, kgo.ConsumeTopics(topic), fromStart(), kgo.FetchMaxWait(100*time.Millisecond)), int(total))
	where := make(map[int][2]int64, len(got))
	last := map[int32]int{}
	for _, r := range got {
		if len(r.Value) != 8 {
			t.Fatalf("partition %d offset %d: a value of %d bytes", r.Partition, r.Offset, len(r.Value))
		}
		v := int(binary.BigEndian.Uint64(r.Value))
		if v < 0 || v >= n {
			t.Fatalf("partition %d offset %d: value %d was never produced", r.Partition, r.Offset, v)
		}
		if w, dup := where[v]; dup {
			t.Fatalf("record %d is upstream twice: at %d/%d and at %d/%d", v, w[0], w[1], r.Partition, r.Offset)
		}
		where[v] = [2]int64{int64(r.Partition), r.Offset}
		if l, ok := last[r.Partition]; ok && v <= l {
			t.Fatalf("partition %d offset %d holds record %d after record %d: not in the order produced", r.Partition, r.Offset, v, l)
		}
		last[r.Partition] = v
		if want := "key-" + strconv.Itoa(v%1000); string(r.Key) != want {
			t.Fatalf("record %d has key %q, want %q", v, r.Key, want)
		}
	}
	missing := 0
	for i, a := range acks {
		if a.err != nil {
			continue
		}
		w, ok := where[i]
		if !ok {
			if missing < 5 {
				t.Errorf("record %d was acknowledged at %d/%d and is not upstream", i, a.p, a.off)
			}
			missing++
			continue
		}
		if w != [2]int64{int64(a.p), a.off} {
			t.Errorf("record %d was acknowledged at %d/%d and is upstream at %d/%d", i, a.p, a.off, w[0], w[1])
		}
	}
	if missing > 0 {
		t.Errorf("%d acknowledged records are not upstream", missing)
	}
}

// Three franz-go members of one group, one bootstrapping from each node,
// consume while a producer writes; the group's coordinator crashes
// midway. Every record is consumed at least once, the committed offsets
// (read straight from upstream, again and again) never go backwards, and
// they reach the end of every partition.
func TestClusterGroupThroughCrash(t *testing.T) {
	c := testenv.StartCluster(t, 3)
	ctx := timeout(t, 2*time.Minute)
	const topic, group, parts, n = "cluster-group-crash", "cluster-group-crash", 6, 6000
	direct := c.DirectClient(t)
	createTopic(t, ctx, direct, topic, parts, nil)

	seen := newSeqLog()
	var ms []*member
	for i := range c.Nodes {
		m := newMember(t, []string{c.Addr(i)}, fmt.Sprintf("m%d", i), group, topic)
		m.consume(seen, 100*time.Microsecond)
		ms = append(ms, m)
	}
	admin := allNodes(t, c)
	waitStable(t, ctx, admin, group, 3)
	sampler := sampleOffsetsOf(t, direct, group, topic)
	prod := allNodes(t, c, kgo.RecordPartitioner(kgo.ManualPartitioner()))

	// The producer writes while the members consume, a batch of 50 at a
	// time with a pause between batches; the crash comes once a third
	// of the records are consumed, most likely mid-stream, though only
	// the outcome is checked.
	var produced atomic.Int64
	prodErr := make(chan error, 1)
	go func() {
		for i := 0; i < n; {
			var rs []*kgo.Record
			for ; i < n && len(rs) < 50; i++ {
				rs = append(rs, &kgo.Record{Topic: topic, Partition: int32(i) % parts, Value: []byte(strconv.Itoa(i))})
			}
			if err := prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
				prodErr <- fmt.Errorf("produce %d..%d: %w", i-len(rs), i-1, err)
				return
			}
			produced.Store(int64(i))
			time.Sleep(5 * time.Millisecond)
		}
		prodErr <- nil
	}()
	waitFor(t, ctx, fmt.Sprintf("%d records consumed", n/3), func() bool { return seen.distinct() >= n/3 })
	coord := coordinatorOf(t, ctx, c, group)
	checkGroupActive(t, c, group, coord)
	t.Logf("crashing node %d, the group's coordinator, with %d records produced and %d consumed", coord, produced.Load(), seen.distinct())
	c.Crash(coord)
	select {
	case err := <-prodErr:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatalf("the producer did not finish: %v", ctx.Err())
	}
	waitFor(t, ctx, fmt.Sprintf("all %d records consumed", n), func() bool { return seen.distinct() == n })

	end := endOffsets(t, ctx, direct, topic)
	var got map[int32]int64
	waitFor(t, ctx, "the committed offsets to reach the end of every partition", func() bool {
		var err error
		got, err = fetchCommitted(ctx, direct, group, topic)
		return err == nil && maps.Equal(got, end)
	})
	sampler.stop(t)
	seen.check(t, n)
	newCoord := coordinatorOf(t, ctx, c, group)
	if newCoord == coord {
		t.Errorf("the crashed node %d is still named the coordinator", coord)
	}
	checkGroupActive(t, c, group, newCoord)
	stopCtx := timeout(t, 30*time.Second)
	for _, m := range ms {
		if err := m.stop(stopCtx); err != nil {
			t.Errorf("%s: %v", m.name, err)
		}
		// Commits and fetches may fail while the coordinator and the
		// leaders move; what was consumed and committed is checked above.
		m.mu.Lock()
		t.Logf("%s: commit errors %v; fetch errors %v; commit errors before revocation %v", m.name, m.commitErrs, m.fetchErrs, m.revokeErrs)
		m.mu.Unlock()
	}
}

// clusterNodeConfig is the configuration of a node outside c's start, in
// front of c's upstream, with c's fast failure detection.
func clusterNodeConfig(c *testenv.Cluster, id int32) config.Config {
	cfg := config.Default()
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Node.ID = id
	cfg.Node.Listen = "127.0.0.1:0"
	cfg.Cluster.Bind = "127.0.0.1:0"
	cfg.Cluster.Remote = ""
	cfg.Cluster.ProbeInterval = config.Duration(100 * time.Millisecond)
	cfg.Cluster.SuspicionTimeout = config.Duration(time.Second)
	cfg.Cluster.LeaveTimeout = config.Duration(time.Second)
	cfg.Upstream.Brokers = c.Configs[0].Upstream.Brokers
	cfg.Kafka.ShutdownTimeout = config.Duration(5 * time.Second)
	return cfg
}

// startNode starts a node and stops it at test cleanup.
func startNode(t *testing.T, cfg config.Config) *node.Node {
	t.Helper()
	n, err := node.Start(cfg, node.Options{Logger: testenv.Logger()})
	if err != nil {
		t.Fatalf("node %d: %v", cfg.Node.ID, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Shutdown(ctx); err != nil {
			t.Errorf("node %d did not drain: %v", cfg.Node.ID, err)
		}
	})
	return n
}

// freeGossipAddr is a loopback address with both its TCP and UDP port
// free for now, as memberlist binds both.
func freeGossipAddr(t *testing.T) string {
	t.Helper()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		pc, err := net.ListenPacket("udp", addr)
		ln.Close()
		if err == nil {
			pc.Close()
			return addr
		}
	}
	t.Fatal("no loopback port free for both TCP and UDP")
	return ""
}

// checkStillThree fails unless every node of c still lists exactly its
// three nodes, through the registry and through Kafka Metadata.
func checkStillThree(t *testing.T, ctx context.Context, c *testenv.Cluster) {
	t.Helper()
	for i, cl := range nodeClients(t, c) {
		var ids []int32
		for _, b := range c.Nodes[i].Registry().Nodes() {
			ids = append(ids, b.ID)
		}
		if !slices.Equal(ids, []int32{0, 1, 2}) {
			t.Errorf("node %d's registry lists nodes %v, want [0 1 2]", i, ids)
		}
		req := kmsg.NewPtrMetadataRequest()
		req.Topics = []kmsg.MetadataRequestTopic{}
		resp, err := askNode(ctx, cl, req)
		if err != nil {
			t.Fatalf("metadata of node %d: %v", i, err)
		}
		checkBrokers(t, c, fmt.Sprintf("node %d", i), resp.(*kmsg.MetadataResponse).Brokers)
	}
}

// A node is refused a place in the cluster when its node.id is taken or
// its cluster.name differs, and the cluster goes on listing its three
// nodes; a node whose only seed is not up yet starts alone and joins once
// the seed starts.
func TestClusterRefusals(t *testing.T) {
	c := testenv.StartCluster(t, 3)

	t.Run("taken node id", func(t *testing.T) {
		ctx := timeout(t, 30*time.Second)
		cfg := clusterNodeConfig(c, 0)
		cfg.Cluster.Join = []string{c.Nodes[1].GossipAddr()}
		n, err := node.Start(cfg, node.Options{Logger: testenv.Logger()})
		if err == nil {
			n.Shutdown(ctx)
			t.Fatal("a second node 0 started")
		}
		if !errors.Is(err, cluster.ErrRefused) || !strings.Contains(err.Error(), "node.id 0") {
			t.Errorf("a second node 0 failed to start with %q, want a refusal naming node.id 0", err)
		}
		checkStillThree(t, ctx, c)
	})

	t.Run("other cluster name", func(t *testing.T) {
		ctx := timeout(t, 30*time.Second)
		cfg := clusterNodeConfig(c, 7)
		cfg.Cluster.Name = "another-mesh"
		cfg.Cluster.Join = []string{c.Nodes[0].GossipAddr()}
		n, err := node.Start(cfg, node.Options{Logger: testenv.Logger()})
		if err == nil {
			n.Shutdown(ctx)
			t.Fatal("a node of cluster another-mesh started in cluster meshka")
		}
		if !errors.Is(err, cluster.ErrRefused) || !strings.Contains(err.Error(), `"another-mesh"`) || !strings.Contains(err.Error(), `"meshka"`) {
			t.Errorf("a node of another cluster failed to start with %q, want a refusal naming both clusters", err)
		}
		checkStillThree(t, ctx, c)
	})

	t.Run("seed starts later", func(t *testing.T) {
		ctx := timeout(t, time.Minute)
		seedAddr := freeGossipAddr(t)
		// A cluster of its own, beside c: ids 0 and 1 again.
		joiner := clusterNodeConfig(c, 1)
		joiner.Cluster.Name = "later"
		joiner.Cluster.Join = []string{seedAddr}
		b := startNode(t, joiner)
		if ns := b.Registry().Nodes(); len(ns) != 1 || ns[0].ID != 1 {
			t.Fatalf("with its seed down the node lists %v, want itself alone", ns)
		}
		seedCfg := clusterNodeConfig(c, 0)
		seedCfg.Cluster.Name = "later"
		seedCfg.Cluster.Bind = seedAddr
		a := startNode(t, seedCfg)
		both := func(n *node.Node) bool {
			ns := n.Registry().Nodes()
			return len(ns) == 2 && ns[0].ID == 0 && ns[1].ID == 1
		}
		waitFor(t, ctx, "the node and its seed to list each other", func() bool { return both(a) && both(b) })
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr().String()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		req := kmsg.NewPtrMetadataRequest()
		req.Topics = []kmsg.MetadataRequestTopic{}
		resp, err := askNode(ctx, cl, req)
		if err != nil {
			t.Fatal(err)
		}
		got := map[int32]string{}
		for _, br := range resp.(*kmsg.MetadataResponse).Brokers {
			got[br.NodeID] = net.JoinHostPort(br.Host, strconv.Itoa(int(br.Port)))
		}
		if want := map[int32]string{0: a.Addr().String(), 1: b.Addr().String()}; !maps.Equal(got, want) {
			t.Errorf("the joined node's Metadata lists %v, want %v", got, want)
		}
	})
}
