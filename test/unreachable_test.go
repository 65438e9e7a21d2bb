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
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Node.Listen = "127.0.0.1:0"
	cfg.Cluster.Bind = "127.0.0.1:0"
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

// Requests meshka forwards, while upstream cannot be reached, are answered
// as a broker answers what it cannot serve: the retriable
// REQUEST_TIMED_OUT on every topic, partition or resource they name, on a
// connection that stays open.
func TestForwardUpstreamUnreachable(t *testing.T) {
	ctx := timeout(t, 60*time.Second)
	var brokers []string
	for _, p := range freePorts(t, 3) {
		brokers = append(brokers, net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	}
	logs := &syncBuffer{}
	cfg := config.Default()
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Node.Listen = "127.0.0.1:0"
	cfg.Upstream.Brokers = brokers
	cfg.Upstream.RequestTimeout = config.Duration(time.Second)
	cfg.Kafka.ShutdownTimeout = config.Duration(5 * time.Second)
	n, err := node.Start(cfg, node.Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Shutdown(context.Background()) })
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.Addr().String()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	// Metadata names meshka as broker 0, so requests can go to it by id.
	if _, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl); err != nil {
		t.Fatal(err)
	}
	b := cl.Broker(0)
	const want = 7 // REQUEST_TIMED_OUT
	codes := func(what string, got []int16, entries int) {
		t.Helper()
		if len(got) != entries {
			t.Errorf("%s: %d error codes %v, want %d", what, len(got), got, entries)
			return
		}
		for _, c := range got {
			if c != want {
				t.Errorf("%s: error codes %v, want all %d (REQUEST_TIMED_OUT)", what, got, want)
				return
			}
		}
	}

	ct := kmsg.NewPtrCreateTopicsRequest()
	for _, name := range []string{"fwd-a", "fwd-b"} {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 1, 1
		ct.Topics = append(ct.Topics, rt)
	}
	kresp, err := b.Request(ctx, ct)
	if err != nil {
		t.Fatalf("CreateTopics: %v", err)
	}
	var got []int16
	for _, rt := range kresp.(*kmsg.CreateTopicsResponse).Topics {
		got = append(got, rt.ErrorCode)
	}
	codes("CreateTopics", got, 2)

	dc := kmsg.NewPtrDescribeConfigsRequest()
	r := kmsg.NewDescribeConfigsRequestResource()
	r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, "fwd-a"
	dc.Resources = append(dc.Resources, r)
	if kresp, err = b.Request(ctx, dc); err != nil {
		t.Fatalf("DescribeConfigs: %v", err)
	}
	got = nil
	for _, rr := range kresp.(*kmsg.DescribeConfigsResponse).Resources {
		got = append(got, rr.ErrorCode)
	}
	codes("DescribeConfigs", got, 1)

	ip := kmsg.NewPtrInitProducerIDRequest()
	ip.TransactionalID = kmsg.StringPtr("fwd-txn")
	ip.TransactionTimeoutMillis = 60_000
	if kresp, err = b.Request(ctx, ip); err != nil {
		t.Fatalf("InitProducerID: %v", err)
	}
	codes("InitProducerID", []int16{kresp.(*kmsg.InitProducerIDResponse).ErrorCode}, 1)

	// A standalone commit passes the group's check, then cannot be stored.
	oc := kmsg.NewPtrOffsetCommitRequest()
	oc.Group, oc.Generation = "fwd-group", -1
	ot := kmsg.NewOffsetCommitRequestTopic()
	ot.Topic = "fwd-a"
	for p := int32(0); p < 2; p++ {
		op := kmsg.NewOffsetCommitRequestTopicPartition()
		op.Partition, op.Offset = p, 1
		ot.Partitions = append(ot.Partitions, op)
	}
	oc.Topics = append(oc.Topics, ot)
	if kresp, err = b.Request(ctx, offsetCommitV8{oc}); err != nil {
		t.Fatalf("OffsetCommit: %v", err)
	}
	got = nil
	for _, rt := range kresp.(*kmsg.OffsetCommitResponse).Topics {
		for _, rp := range rt.Partitions {
			got = append(got, rp.ErrorCode)
		}
	}
	codes("OffsetCommit", got, 2)

	// The same connection still answers.
	if _, err := b.Request(ctx, kmsg.NewPtrApiVersionsRequest()); err != nil {
		t.Fatalf("ApiVersions after the failed forwards: %v", err)
	}
}
