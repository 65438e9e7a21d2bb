package kafkawire_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/internal/testenv"
)

// waitClosed reads c until meshka closes it and returns what it wrote;
// closeGuard only keeps a broken server from hanging the test.
func waitClosed(t *testing.T, c net.Conn) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(closeGuard))
	got, err := io.ReadAll(c)
	var ne net.Error
	switch {
	case err == nil, errors.Is(err, syscall.ECONNRESET):
	case errors.As(err, &ne) && ne.Timeout():
		t.Fatalf("meshka did not close the connection (waited %v)", closeGuard)
	default:
		t.Fatalf("reading from meshka: %v", err)
	}
	return got
}

// ApiVersions v3 whose body declares 2^32-1 tagged fields: kmsg before
// v1.15.1 spun on it for a minute of CPU. It must be refused (or answered)
// at once, and the node keep serving.
func TestTagBomb(t *testing.T) {
	env := startBadInputEnv(t)
	bomb := []byte{0x00, 0x00, 0x00, 0x14, 0x00, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x07, 0xff, 0xff,
		0x00, 0x02, 0x61, 0x02, 0x62, 0xff, 0xff, 0xff, 0xff, 0x0f}
	for i := 0; i < 4; i++ {
		c := dial(t, env)
		if _, err := c.Write(bomb); err != nil {
			t.Fatal(err)
		}
		waitClosed(t, c)
	}
	newHealthProbe(t, env, "tagbomb-health").check(t)
}

// Forty connections that each send only a size prefix announcing 100 MiB
// hold a first chunk each, not 100 MiB each, and are closed once
// kafka.request_read_timeout passes; the node serves others meanwhile.
func TestBarePrefixes(t *testing.T) {
	env := testenv.Start(t, func(c *config.Config) {
		c.Kafka.RequestReadTimeout = config.Duration(2 * time.Second)
	})
	probe := newHealthProbe(t, env, "prefix-health")
	probe.check(t)
	budget := env.Node.Kafka().RequestBudget()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	const conns = 40
	prefix := binary.BigEndian.AppendUint32(nil, 100<<20)
	var cs []net.Conn
	for i := 0; i < conns; i++ {
		c := dial(t, env)
		if _, err := c.Write(prefix); err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	// Every prefix is read once the budget holds a chunk for each.
	for budget.Used() < conns*(64<<10) {
		time.Sleep(10 * time.Millisecond)
	}
	probe.check(t)
	var during runtime.MemStats
	runtime.ReadMemStats(&during)
	if used := budget.Used(); used > conns*(64<<10)+1<<20 {
		t.Errorf("%d bare prefixes hold %d bytes of request budget, want about %d", conns, used, conns*(64<<10))
	}
	if grown := int64(during.HeapAlloc) - int64(before.HeapAlloc); grown > 256<<20 {
		t.Errorf("heap grew %d MiB with %d bare 100 MiB prefixes", grown>>20, conns)
	}
	for _, c := range cs {
		if got := waitClosed(t, c); len(got) != 0 {
			t.Fatalf("meshka answered a bare prefix with %d bytes", len(got))
		}
	}
	for budget.Used() != 0 {
		time.Sleep(10 * time.Millisecond) // the closed connections' chunks return
	}
	probe.check(t)
}

// A connection with nothing in flight is closed after kafka.idle_timeout;
// one waiting for a long poll is not idle.
func TestIdleTimeout(t *testing.T) {
	env := testenv.Start(t, func(c *config.Config) {
		c.Kafka.IdleTimeout = config.Duration(time.Second)
		c.Kafka.FetchMaxWaitCap = config.Duration(3 * time.Second)
	})
	idle := dial(t, env)
	if got := waitClosed(t, idle); len(got) != 0 {
		t.Fatalf("meshka wrote %d bytes to an idle connection", len(got))
	}
	if env.Node.Kafka().IdleClosed() != 1 {
		t.Fatalf("idle connections closed: %d, want 1", env.Node.Kafka().IdleClosed())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := env.Client(t, kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("idle-poll"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := admin.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	poll := dial(t, env)
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.MaxWaitMillis, req.MinBytes, req.MaxBytes, req.SessionEpoch = 11, 3000, 1<<20, 1<<20, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = "idle-poll"
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = 0, 1, 1<<20 // past the end: waits the full 3 s
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	// An ApiVersions request follows at once, so the connection is never
	// without a request in flight until both are answered.
	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 3
	av.ClientSoftwareName, av.ClientSoftwareVersion = "raw", "1"
	if _, err := poll.Write(append(encode(req, 1), encode(av, 2)...)); err != nil {
		t.Fatal(err)
	}
	// The poll waits 3 s, three idle timeouts: both answers arrive only on
	// a connection that was not closed as idle meanwhile. (The count of
	// idle closes cannot tell: the producer's own connections, idle while
	// the poll waits, are closed and counted too.)
	_ = poll.SetReadDeadline(time.Now().Add(closeGuard))
	corr, body := readResponse(t, poll)
	if corr != 1 {
		t.Fatalf("answer with correlation id %d, want 1", corr)
	}
	fr := kmsg.NewPtrFetchResponse()
	fr.Version = req.Version
	if err := fr.ReadFrom(body); err != nil {
		t.Fatal(err)
	}
	// No records and no error: the poll ended at its MaxWait, so it waited.
	if len(fr.Topics) != 1 || len(fr.Topics[0].Partitions) != 1 {
		t.Fatalf("long poll answered with %d topics", len(fr.Topics))
	}
	if p := fr.Topics[0].Partitions[0]; fr.ErrorCode != 0 || p.ErrorCode != 0 || len(p.RecordBatches) != 0 || p.HighWatermark != 1 {
		t.Fatalf("long poll answered error %d, partition error %d, %d record bytes, high watermark %d; want a wait with nothing new at 1",
			fr.ErrorCode, p.ErrorCode, len(p.RecordBatches), p.HighWatermark)
	}
	if corr, _ := readResponse(t, poll); corr != 2 {
		t.Fatalf("answer with correlation id %d, want 2", corr)
	}
}

// A client that pipelines fetches and never reads the answers is cut off
// after kafka.write_timeout, with its memory freed; others are unaffected.
func TestSlowConsumer(t *testing.T) {
	env := testenv.Start(t, func(c *config.Config) {
		c.Kafka.WriteTimeout = config.Duration(time.Second)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const topic = "slow-consumer"
	p := env.Client(t, kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	value := bytes.Repeat([]byte("v"), 64<<10)
	var rs []*kgo.Record
	for i := 0; i < 128; i++ { // 8 MiB in partition 0
		rs = append(rs, &kgo.Record{Value: value})
	}
	if err := p.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	slow := dial(t, env)
	_ = slow.SetReadBuffer(4 << 10)
	for i := int32(0); i < 32; i++ {
		req := kmsg.NewPtrFetchRequest()
		req.Version, req.MaxBytes, req.SessionEpoch = 11, 8<<20, -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.PartitionMaxBytes = 8 << 20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		if _, err := slow.Write(encode(req, i)); err != nil {
			break // meshka may already have cut it off
		}
	}
	for env.Node.Kafka().SlowClosed() == 0 {
		if ctx.Err() != nil {
			t.Fatal("a client reading none of its answers was never cut off")
		}
		time.Sleep(50 * time.Millisecond)
	}
	newHealthProbe(t, env, "slow-health").check(t)
}

// Past kafka.max_connections_per_ip a new connection from that address is
// closed at once; the ones it has keep working.
func TestConnectionsPerIP(t *testing.T) {
	env := testenv.Start(t, func(c *config.Config) { c.Kafka.MaxConnectionsPerIP = 3 })
	var kept []net.Conn
	for i := 0; i < 3; i++ {
		c := dial(t, env)
		// An answer shows the connection was taken, not refused.
		if _, err := c.Write(encode(kmsg.NewPtrApiVersionsRequest(), int32(i))); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(closeGuard))
		if corr, _ := readResponse(t, c); corr != int32(i) {
			t.Fatalf("connection %d: correlation id %d", i, corr)
		}
		kept = append(kept, c)
	}
	over := dial(t, env)
	if got := waitClosed(t, over); len(got) != 0 {
		t.Fatalf("meshka answered a connection over the per-address limit with %d bytes", len(got))
	}
	if n := env.Node.Kafka().Listener().Refused(); n != 1 {
		t.Fatalf("refused %d connections, want 1", n)
	}
	kept[0].Close()
	for env.Node.Kafka().Listener().Open() != 2 {
		time.Sleep(10 * time.Millisecond)
	}
	again := dial(t, env)
	if _, err := again.Write(encode(kmsg.NewPtrApiVersionsRequest(), 9)); err != nil {
		t.Fatal(err)
	}
	_ = again.SetReadDeadline(time.Now().Add(closeGuard))
	if corr, _ := readResponse(t, again); corr != 9 {
		t.Fatalf("a connection after one closed: correlation id %d", corr)
	}
}

// Fifty connections pipelining Fetches below the partition cache's window
// and reading none of the answers hold at most the response budget of
// records read through from upstream; a normal producer and consumer keep
// working meanwhile.
func TestNonReadingFetchers(t *testing.T) {
	env := testenv.Start(t, func(c *config.Config) {
		c.Cache.PartitionMaxBytes = 64 << 10
		c.Kafka.MaxResponseMemory = 16 << 20
		c.Kafka.WriteTimeout = config.Duration(10 * time.Minute) // they hold on; only the budget bounds them
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const topic = "below-window"
	p := env.Client(t, kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	value := bytes.Repeat([]byte("r"), 64<<10)
	var rs []*kgo.Record
	for i := 0; i < 128; i++ { // 8 MiB in partition 0, 128 times the cache
		rs = append(rs, &kgo.Record{Value: value})
	}
	if err := p.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// A reader at the end keeps the cache's window there, so reads from
	// the start go through to upstream.
	tail := env.Client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtEnd()}}))
	tailCtx, stopTail := context.WithCancel(ctx)
	defer stopTail()
	go func() {
		for tailCtx.Err() == nil {
			tail.PollFetches(tailCtx)
		}
	}()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	server := env.Node.Kafka()
	for i := 0; i < 50; i++ {
		c := dial(t, env)
		_ = c.SetReadBuffer(4 << 10)
		for j := int32(0); j < 8; j++ {
			req := kmsg.NewPtrFetchRequest()
			req.Version, req.MaxBytes, req.SessionEpoch = 11, 50<<20, -1
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = topic
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.PartitionMaxBytes = 50 << 20
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			if _, err := c.Write(encode(req, j)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for server.BudgetFull() == 0 {
		if ctx.Err() != nil {
			t.Fatalf("the response budget was never spent (%d bytes held): the fetchers did not read through", server.ResponseBudget().Used())
		}
		time.Sleep(20 * time.Millisecond)
	}
	newHealthProbe(t, env, "nonreading-health").check(t)
	var during runtime.MemStats
	runtime.ReadMemStats(&during)
	if held := server.ResponseBudget().Used(); held > 16<<20+(64<<10)*50 {
		t.Errorf("read-through answers hold %d bytes, over the 16 MiB budget by more than one batch per connection", held)
	}
	// Unbounded, 400 answers of up to 8 MiB each would be held.
	if grown := int64(during.HeapAlloc) - int64(before.HeapAlloc); grown > 192<<20 {
		t.Errorf("heap grew %d MiB with 50 non-reading fetchers and a 16 MiB response budget", grown>>20)
	}
}
