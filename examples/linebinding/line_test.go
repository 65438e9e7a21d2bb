package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshka/meshka/actors/partition"
	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/internal/race"
	"github.com/meshka/meshka/internal/testenv"
	"github.com/meshka/meshka/mesh"
	"github.com/meshka/meshka/node"
)

// withLine configures the line binding on a free port, with extra keys,
// so that the node builds it from the registry as it would from a file.
func withLine(t testing.TB, extra map[string]any) testenv.Option {
	section := map[string]any{"listen": "127.0.0.1:0"}
	maps.Copy(section, extra)
	s, err := config.NewSection(section)
	if err != nil {
		t.Fatal(err)
	}
	return func(cfg *config.Config) { cfg.Bindings = map[string]config.Section{"line": s} }
}

func lineOf(t testing.TB, n *node.Node) *lineBinding {
	t.Helper()
	b, ok := n.Binding("line")
	if !ok {
		t.Fatal("the node did not start the line binding")
	}
	return b.(*lineBinding)
}

func createTopic(t testing.TB, cl *kgo.Client, topic string, partitions int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopics(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
}

// client is a plain TCP client of the line protocol.
type client struct {
	t  testing.TB
	nc net.Conn
	r  *bufio.Reader
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &client{t: t, nc: nc, r: bufio.NewReader(nc)}
}

func (c *client) send(line string) {
	c.t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.nc.Write([]byte(line + "\n")); err != nil {
		c.t.Fatalf("send %.40q: %v", line, err)
	}
}

// line reads one line, without its line end.
func (c *client) line() (string, error) {
	c.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	s, err := c.r.ReadString('\n')
	return strings.TrimSuffix(s, "\n"), err
}

func (c *client) expect(want string) {
	c.t.Helper()
	got, err := c.line()
	if err != nil || got != want {
		c.t.Fatalf("got %q (%v), want %q", got, err, want)
	}
}

// expectPrefix reads a line starting with prefix and returns it.
func (c *client) expectPrefix(prefix string) string {
	c.t.Helper()
	got, err := c.line()
	if err != nil || !strings.HasPrefix(got, prefix) {
		c.t.Fatalf("got %q (%v), want a line starting %q", got, err, prefix)
	}
	return got
}

// ok reads a PUB's answer, "OK <partition> <offset>".
func (c *client) ok() (int32, int64) {
	c.t.Helper()
	var p int32
	var o int64
	got := c.expectPrefix("OK ")
	if _, err := fmt.Sscanf(got, "OK %d %d", &p, &o); err != nil {
		c.t.Fatalf("answer %q: %v", got, err)
	}
	return p, o
}

// closed expects the binding to close the connection.
func (c *client) closed() {
	c.t.Helper()
	if got, err := c.line(); err == nil {
		c.t.Fatalf("got %q, want the connection closed", got)
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		c.t.Fatal("the connection is still open")
	}
}

// consume reads topic from the start with a Kafka client until it has a
// record of every key in keys, and returns them by key.
func consume(t testing.TB, cl *kgo.Client, keys ...string) map[string]*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := map[string]*kgo.Record{}
	for len(got) < len(keys) {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consuming, with %d of %v: %v", len(got), keys, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if slices.Contains(keys, string(r.Key)) {
				got[string(r.Key)] = r
			}
		})
	}
	return got
}

func produce(t testing.TB, cl *kgo.Client, topic, key, value string) *kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := &kgo.Record{Topic: topic, Key: []byte(key), Value: []byte(value)}
	if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return r
}

// On one node: PUB writes keyed records a Kafka client reads where a
// Kafka producer would have put them; SUB delivers what its pattern
// matches, written through the binding or by a Kafka client; bad commands
// are answered and the connection goes on; a line too long ends it.
func TestLine(t *testing.T) {
	env := testenv.Start(t, withLine(t, nil))
	const topic, parts = "lines", 3
	createTopic(t, env.Client(t), topic, parts)
	addr := lineOf(t, env.Node).Addr().String()

	sensors := dial(t, addr)
	sensors.send("SUB lines sensors/+/temp")
	sensors.expect("OK")
	all := dial(t, addr)
	all.send("sub lines")
	all.expect("OK")

	pub := dial(t, addr)
	pub.send("PUB lines sensors/1/temp 21.5 C")
	p1, o1 := pub.ok()
	pub.send("PUB lines other/1 x")
	p2, o2 := pub.ok()
	if want := mesh.KeyPartition([]byte("sensors/1/temp"), parts); p1 != want {
		t.Fatalf("sensors/1/temp went to partition %d, want %d", p1, want)
	}
	sensors.expect(fmt.Sprintf("MSG lines %d %d sensors/1/temp 21.5 C", p1, o1))
	got := []string{all.expectPrefix("MSG "), all.expectPrefix("MSG ")}
	slices.Sort(got) // two partitions: either may come first
	if want := []string{fmt.Sprintf("MSG lines %d %d other/1 x", p2, o2), fmt.Sprintf("MSG lines %d %d sensors/1/temp 21.5 C", p1, o1)}; !slices.Equal(got, want) {
		t.Fatalf("the SUB without a pattern got %q, want %q", got, want)
	}

	for _, bad := range []struct{ line, answer string }{
		{"FOO bar", `ERR unknown command "FOO" (PUB topic key value, SUB topic [key-pattern])`},
		{"PUB lines", "ERR usage: PUB topic key value"},
		{"SUB a/b", `ERR invalid topic name "a/b": only letters, digits, '.', '_' and '-' are allowed`},
		{"SUB lines a/#/b", `ERR key pattern "a/#/b": '#' must be its last level`},
		{`PUB lines "open v`, "ERR key: an unterminated or invalid quoted string"},
	} {
		pub.send(bad.line)
		pub.expect(bad.answer)
	}
	pub.send("") // a blank line is no command and has no answer
	pub.send(`PUB lines "sensors/2/temp" "19\t°C"`)
	p3, o3 := pub.ok()
	sensors.expect(fmt.Sprintf(`MSG lines %d %d sensors/2/temp "19\t°C"`, p3, o3))
	all.expect(fmt.Sprintf(`MSG lines %d %d sensors/2/temp "19\t°C"`, p3, o3))

	// A Kafka client reads what PUB wrote, where PUB said.
	cl := env.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	read := consume(t, cl, "sensors/1/temp", "other/1", "sensors/2/temp")
	for key, want := range map[string]struct {
		p     int32
		o     int64
		value string
	}{"sensors/1/temp": {p1, o1, "21.5 C"}, "other/1": {p2, o2, "x"}, "sensors/2/temp": {p3, o3, "19\t°C"}} {
		if r := read[key]; r.Partition != want.p || r.Offset != want.o || string(r.Value) != want.value {
			t.Errorf("%s: a Kafka client read %q at %d/%d, PUB wrote %q at %d/%d", key, r.Value, r.Partition, r.Offset, want.value, want.p, want.o)
		}
	}

	// What a Kafka producer writes reaches the subscribers, in MSG lines
	// that PUB could take back.
	kp := env.Client(t)
	r := produce(t, kp, topic, "sensors/9/temp", "from kafka")
	sensors.expect(fmt.Sprintf("MSG lines %d %d sensors/9/temp from kafka", r.Partition, r.Offset))
	all.expect(fmt.Sprintf("MSG lines %d %d sensors/9/temp from kafka", r.Partition, r.Offset))
	r = produce(t, kp, topic, "a b", "x\ny")
	all.expect(fmt.Sprintf(`MSG lines %d %d "a b" "x\ny"`, r.Partition, r.Offset))

	if h := env.Node.BindingHealth()["line"]; !h.OK || h.Detail != "listening on "+addr+", 3 connections" {
		t.Errorf("health %+v", h)
	}

	pub.send("PUB lines k " + strings.Repeat("x", maxLine))
	pub.expect("ERR line too long")
	pub.closed()
	// The others go on.
	all.send("PUB lines k v")
	p4, o4 := all.ok()
	all.expect(fmt.Sprintf("MSG lines %d %d k v", p4, o4))
}

// max_connections and max_subscriptions are held to, and the node's
// Shutdown stops the binding: its connections close, and its health says
// so.
func TestLineLimitsAndShutdown(t *testing.T) {
	env := testenv.Start(t, withLine(t, map[string]any{"max_connections": 2, "max_subscriptions": 1}))
	createTopic(t, env.Client(t), "limits", 1)
	b := lineOf(t, env.Node)
	addr := b.Addr().String()

	c1, c2 := dial(t, addr), dial(t, addr)
	c1.send("SUB limits")
	c1.expect("OK")
	c1.send("SUB limits")
	c1.expect("ERR at most 1 subscriptions per connection")
	c2.send("PUB limits k v")
	c2.ok()
	c1.expectPrefix("MSG limits 0 0 k v")
	c3 := dial(t, addr)
	c3.expect("ERR too many connections")
	c3.closed()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := env.Node.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	env.Node = nil
	c1.closed()
	c2.closed()
	if h := b.Health(); h.OK || h.Detail != "stopped" {
		t.Errorf("health after Shutdown: %+v", h)
	}
	if nc, err := net.Dial("tcp", addr); err == nil {
		nc.Close()
		t.Errorf("%s still accepts connections", addr)
	}
}

// A client that stops reading is paused, so the other subscriber of its
// partition gets every record at its own pace, and once it has taken
// nothing for write_timeout its connection is closed.
func TestLineSlowClient(t *testing.T) {
	env := testenv.Start(t, withLine(t, map[string]any{"write_timeout": "200ms"}))
	createTopic(t, env.Client(t), "slow", 1)
	b := lineOf(t, env.Node)
	addr := b.Addr().String()

	slow := dial(t, addr)
	slow.nc.(*net.TCPConn).SetReadBuffer(4 << 10)
	slow.send("SUB slow")
	slow.expect("OK")
	fast := dial(t, addr)
	fast.send("SUB slow")
	fast.expect("OK")
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		for {
			l, err := fast.line()
			if err != nil {
				return
			}
			lines <- l
		}
	}()

	// Produce until the slow client is cut off, a batch at a time, while
	// the fast one reads each batch.
	kp := env.Client(t, kgo.ProducerLinger(0))
	value := strings.Repeat("v", 4<<10)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var n int64
	for len(b.slots) == 2 {
		if n > 16<<10 {
			t.Fatalf("%d records of 4 KiB written and the slow client is still connected", n)
		}
		var batch []*kgo.Record
		for range 64 {
			batch = append(batch, &kgo.Record{Topic: "slow", Key: []byte("k"), Value: []byte(value)})
		}
		if err := kp.ProduceSync(ctx, batch...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		for range batch {
			select {
			case l := <-lines:
				if want := fmt.Sprintf("MSG slow 0 %d k %s", n, value); l != want {
					t.Fatalf("the fast client's record %d: %.40q", n, l)
				}
				n++
			case <-ctx.Done():
				t.Fatalf("the fast client is stuck at record %d", n)
			}
		}
	}
	var taken int64
	for {
		if _, err := slow.line(); err != nil {
			break
		}
		taken++
	}
	if taken >= n {
		t.Fatalf("the slow client took all %d records", n)
	}
	t.Logf("the slow client was cut off after %d of %d records", taken, n)
}

// A section the binding cannot use is refused at node start, each
// problem at its line and column.
func TestLineConfig(t *testing.T) {
	file := "bindings:\n" +
		"  line:\n" +
		"    listen: nowhere\n" +
		"    max_connections: 0\n" +
		"    write_timeout: 1ms\n" +
		"    max_subscription: 2\n"
	cfg, err := config.Parse("m.yaml", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	_, err = newLineBinding(mesh.BindingEnv{Name: "line"}, cfg.Binding("line"))
	want := "m.yaml:6:5: bindings.line.max_subscription: unknown key \"max_subscription\" (did you mean \"max_subscriptions\"?)"
	if err == nil || err.Error() != want {
		t.Fatalf("newLineBinding = %v\nwant %s", err, want)
	}
	cfg, _ = config.Parse("m.yaml", []byte(strings.TrimSuffix(file, "    max_subscription: 2\n")+"    max_subscriptions: 2000\n"))
	_, err = newLineBinding(mesh.BindingEnv{Name: "line"}, cfg.Binding("line"))
	want = "m.yaml:3:13: bindings.line.listen: must be host:port, e.g. \"127.0.0.1:7070\", got \"nowhere\"\n" +
		"m.yaml:4:22: bindings.line.max_connections: must be between 1 and 65536, got 0\n" +
		"m.yaml:5:20: bindings.line.write_timeout: must be between 100ms and 10m, got 1ms\n" +
		"m.yaml:6:24: bindings.line.max_subscriptions: must be between 1 and 1024, got 2000"
	var errs config.Errors
	if !errors.As(err, &errs) || err.Error() != want {
		t.Fatalf("newLineBinding = %v\nwant %s", err, want)
	}
}

// Across a cluster: a SUB on one node gets what a PUB on another writes,
// and what a Kafka producer writes through a third, whichever node owns
// each partition; a Kafka consumer reads what the PUBs wrote.
func TestRemotingLine(t *testing.T) {
	if race.Enabled {
		t.Skip("remoting between nodes in one process: run without -race (make test does)")
	}
	c := testenv.StartCluster(t, 3, func(cfg *config.Config) { cfg.Cluster.Remote = "127.0.0.1:0" }, withLine(t, nil))
	const topic, parts = "lines-remote", 3
	createTopic(t, c.Client(t, 0), topic, parts)
	sub := dial(t, lineOf(t, c.Nodes[1]).Addr().String())
	sub.send("SUB " + topic)
	sub.expect("OK")
	pub := dial(t, lineOf(t, c.Nodes[2]).Addr().String())

	// Keys over every partition, so that some belong to each node.
	type written struct {
		p int32
		o int64
	}
	wrote := map[string]written{}
	var keys []string
	for i := 0; len(keys) < 9; i++ {
		key := "key-" + strconv.Itoa(i)
		keys = append(keys, key)
		pub.send(fmt.Sprintf("PUB %s %s value %d", topic, key, i))
		p, o := pub.ok()
		if want := mesh.KeyPartition([]byte(key), parts); p != want {
			t.Fatalf("%s went to partition %d, want %d", key, p, want)
		}
		wrote[key] = written{p, o}
	}
	seen := map[string]bool{}
	for range keys {
		var key, value string
		var p int32
		var o int64
		l := sub.expectPrefix("MSG ")
		if _, err := fmt.Sscanf(l, "MSG "+topic+" %d %d %s", &p, &o, &key); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		i, _ := strconv.Atoi(strings.TrimPrefix(key, "key-"))
		value = fmt.Sprintf("value %d", i)
		if w := wrote[key]; w.p != p || w.o != o || !strings.HasSuffix(l, " "+key+" "+value) || seen[key] {
			t.Fatalf("the SUB on node 1 got %q; the PUB on node 2 wrote %s at %d/%d", l, key, w.p, w.o)
		}
		seen[key] = true
	}
	// The keys went to every partition, and the partitions are spread
	// over the nodes: records crossed from node to node.
	owners := map[int32]bool{}
	for _, w := range wrote {
		owners[c.Nodes[0].Registry().Owner(partition.Kind, partition.Identity("default", topic, w.p)).ID] = true
	}
	if len(owners) < 2 {
		t.Fatalf("every record went to partitions of node %v", owners)
	}

	cl := c.Client(t, 0, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	read := consume(t, cl, keys...)
	for i, key := range keys {
		r, w := read[key], wrote[key]
		if r.Partition != w.p || r.Offset != w.o || string(r.Value) != fmt.Sprintf("value %d", i) {
			t.Errorf("%s: a Kafka client read %q at %d/%d, PUB wrote at %d/%d", key, r.Value, r.Partition, r.Offset, w.p, w.o)
		}
	}

	kp := c.Client(t, 0)
	for i := range 6 {
		r := produce(t, kp, topic, fmt.Sprintf("kafka-%d", i), "from kafka")
		sub.expect(fmt.Sprintf("MSG %s %d %d kafka-%d from kafka", topic, r.Partition, r.Offset, i))
	}
}
