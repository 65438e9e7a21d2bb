package test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/embedded"
	"github.com/meshka/meshka/node"
)

// syncBuffer is a log sink shared by the node's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// freePorts reserves n loopback ports and releases them for the caller.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// While upstream cannot be reached, a client is answered, not
// disconnected: ApiVersions from meshka's own ranges, then Metadata with a
// retriable error for its topics, so the client's own error says the
// cluster is unavailable. The cause is logged once, however many clients
// ask. When upstream comes up, the same clients produce and consume.
func TestUpstreamUnreachable(t *testing.T) {
	ctx := timeout(t, 60*time.Second)
	ports := freePorts(t, 3)
	var brokers []string
	for _, p := range ports {
		brokers = append(brokers, net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	}
	logs := &syncBuffer{}
	cfg := config.Default()
	cfg.Node.Listen = "127.0.0.1:0"
	cfg.Upstream.Brokers = brokers
	cfg.Kafka.ShutdownTimeout = config.Duration(5 * time.Second)
	n, err := node.Start(cfg, node.Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Shutdown(context.Background()) })
	addr := n.Addr().String()

	const topic, clients = "unreachable-then-up", 10
	start := time.Now()
	var cls []*kgo.Client
	for i := 0; i < clients; i++ {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.AllowAutoTopicCreation())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		cls = append(cls, cl)
		av, err := cl.Request(ctx, kmsg.NewPtrApiVersionsRequest())
		if err != nil {
			t.Fatalf("client %d: ApiVersions while upstream is down: %v", i, err)
		}
		keys := map[int16]bool{}
		for _, k := range av.(*kmsg.ApiVersionsResponse).ApiKeys {
			keys[k.ApiKey] = true
		}
		if code := av.(*kmsg.ApiVersionsResponse).ErrorCode; code != 0 || !keys[0] || !keys[1] || !keys[3] {
			t.Fatalf("client %d: ApiVersions error %d, keys %v; want Produce, Fetch and Metadata advertised", i, code, keys)
		}

		mreq := kmsg.NewPtrMetadataRequest()
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(topic)
		mreq.Topics = append(mreq.Topics, mt)
		kresp, err := cl.Request(ctx, mreq)
		if err != nil {
			t.Fatalf("client %d: Metadata on the same connection: %v", i, err)
		}
		meta := kresp.(*kmsg.MetadataResponse)
		if len(meta.Topics) != 1 || meta.Topics[0].ErrorCode != kerr.LeaderNotAvailable.Code {
			t.Fatalf("client %d: Metadata topics %+v; want %s with LEADER_NOT_AVAILABLE", i, meta.Topics, topic)
		}
		if !kerr.ErrorForCode(meta.Topics[0].ErrorCode).(*kerr.Error).Retriable {
			t.Fatal("the Metadata error is not retriable")
		}
	}
	// At most one line per interval: the clients' 20 requests all failed
	// for the same cause.
	allowed := 1 + int(time.Since(start)/(10*time.Second))
	if got := strings.Count(logs.String(), "msg=\"upstream unreachable"); got < 1 || got > allowed {
		t.Errorf("%d clients made %d upstream warnings in %s, want 1 to %d:\n%s", clients, got, time.Since(start), allowed, logs.String())
	}

	up, err := embedded.Start(embedded.Config{Brokers: 3, Partitions: 1}, kfake.Ports(ports...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Close)
	for i, cl := range cls[:3] {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatalf("client %d: produce once upstream is up: %v", i, err)
		}
	}
	reader, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), fromStart())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reader.Close)
	if got := consumeN(t, ctx, reader, 3); len(got) != 3 {
		t.Fatalf("read %d records", len(got))
	}
}
