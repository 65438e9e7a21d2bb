package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/embedded"
	"github.com/meshka/meshka/internal/countnet"
	"github.com/meshka/meshka/node"
)

// upstream is the in-process kfake cluster a measurement runs against,
// with every byte its brokers write to any client counted: that is the
// figure meshka exists to reduce.
type upstream struct {
	cluster *kfake.Cluster
	sent    atomic.Int64
	admin   *kgo.Client
	debug   bool
}

func startUpstream(debug bool) (*upstream, error) { return startUpstreamWith(debug, nil, nil) }

// startUpstreamWith starts the upstream with more kfake options (TLS,
// SASL) and the admin client options that reach it then.
func startUpstreamWith(debug bool, kopts []kfake.Opt, adminOpts []kgo.Opt) (*upstream, error) {
	u := &upstream{debug: debug}
	c, err := embedded.Start(embedded.Config{Brokers: 3, Partitions: 1}, append([]kfake.Opt{kfake.ListenFn(countnet.ListenFn(&u.sent, nil))}, kopts...)...)
	if err != nil {
		return nil, err
	}
	u.cluster = c
	u.admin, err = kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, adminOpts...)...)
	if err != nil {
		c.Close()
		return nil, err
	}
	return u, nil
}

func (u *upstream) close() {
	u.admin.Close()
	u.cluster.Close()
}

func (u *upstream) addrs() []string { return u.cluster.ListenAddrs() }

// Sent is the byte count so far; measurements take deltas around a run.
func (u *upstream) Sent() int64 { return u.sent.Load() }

// createTopic creates a topic upstream with configs given as name, value
// pairs. Topics are created explicitly, never auto-created, so every run
// gets exactly the partitions it asks for.
func (u *upstream) createTopic(ctx context.Context, name string, partitions int32, configs ...string) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic = name
	t.NumPartitions = partitions
	t.ReplicationFactor = -1
	for i := 0; i+1 < len(configs); i += 2 {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = configs[i], kmsg.StringPtr(configs[i+1])
		t.Configs = append(t.Configs, c)
	}
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, u.admin)
	if err != nil {
		return fmt.Errorf("create topic %s: %w", name, err)
	}
	if len(resp.Topics) != 1 {
		return fmt.Errorf("create topic %s: %d topics in response", name, len(resp.Topics))
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		return fmt.Errorf("create topic %s: %w", name, err)
	}
	return nil
}

// deleteTopic frees a topic's data: kfake keeps everything in memory, and
// produce runs would otherwise pile up gigabytes.
func (u *upstream) deleteTopic(ctx context.Context, name string) error {
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.TopicNames = []string{name} // v0-v5
	t := kmsg.NewDeleteTopicsRequestTopic()
	t.Topic = &name // v6+
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, u.admin)
	if err != nil {
		return fmt.Errorf("delete topic %s: %w", name, err)
	}
	for _, rt := range resp.Topics {
		if err := kerr.ErrorForCode(rt.ErrorCode); err != nil {
			return fmt.Errorf("delete topic %s: %w", name, err)
		}
	}
	return nil
}

// startNode starts a fresh meshka node in front of u, so each meshka run
// begins with a cold cache and its upstream bytes include the one read it
// must make.
func (u *upstream) startNode(tune func(*config.Config)) (*node.Node, error) {
	cfg := config.Default()
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Node.Listen = "127.0.0.1:0"
	cfg.Cluster.Bind = "127.0.0.1:0"
	cfg.Upstream.Brokers = u.addrs()
	cfg.Kafka.ShutdownTimeout = config.Duration(5 * time.Second)
	if tune != nil {
		tune(&cfg)
	}
	return node.Start(cfg, node.Options{Logger: meshkaLogger(u.debug)})
}

// shutdownGrace bounds a node's shutdown after a run. At 2fdf5b7 meshka
// kept a closed client's long-polling fetch running (franz-go waits up to
// 5 s), which held Shutdown that long per run; the run is over by then, so
// the node's connections are cut after the grace, and the report says how
// often that was needed so a regression shows.
const shutdownGrace = 250 * time.Millisecond

// stopNode shuts a node down; a shutdown cut short by the grace is
// counted, not failed.
func stopNode(b *bench, n *node.Node) error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	err := n.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		b.shutdownCuts++
		return nil
	}
	return err
}

// meshkaLogger keeps meshka quiet except for warnings, which point at
// problems worth reporting; -debug shows everything.
func meshkaLogger(debug bool) *slog.Logger {
	level := slog.LevelWarn
	if debug {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("from", "meshka")
}

// clientOpts is the client configuration shared by direct and meshka runs,
// so the two sides differ only in their seed brokers.
func clientOpts(seeds []string, debug bool, extra ...kgo.Opt) []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(seeds...)}
	if debug {
		opts = append(opts, kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelWarn, func() string { return "franz-go: " })))
	}
	return append(opts, extra...)
}

// produceTopicConfigs are the upstream topic settings of produce runs.
// kfake keeps each segment in one in-memory file that grows by appending,
// so with its 100 MiB default every growth step copies up to 100 MiB on
// kfake's single goroutine, stalling every client for tens of ms; smaller
// segments keep those stalls (which hit both sides alike, but at random
// moments) out of the latency percentiles.
var produceTopicConfigs = []string{"segment.bytes", strconv.Itoa(8 << 20)}

// payload hands out 1 KiB values cut from one random buffer: random so
// compression cannot shrink them, shared so generating them costs nothing
// during a run. Within one 1 MB producer batch no value repeats.
type payload struct{ buf []byte }

const valueSize = 1024

func newPayload() *payload {
	buf := make([]byte, 1<<20+valueSize)
	r := rand.NewChaCha8([32]byte{'m', 'e', 's', 'h', 'k', 'a'})
	_, _ = r.Read(buf)
	return &payload{buf: buf}
}

func (p *payload) value(i int64) []byte {
	off := (i % 1024) * valueSize
	return p.buf[off : off+valueSize : off+valueSize]
}
