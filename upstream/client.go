// Package upstream is meshka's side of the upstream Kafka cluster: the kgo
// clients, the topic metadata cache, produce forwarding, and the shared
// per-broker fetch streams that fill partition caches.
package upstream

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
	"github.com/twmb/franz-go/pkg/sasl"
	"golang.org/x/sync/singleflight"

	"github.com/meshka/meshka/internal/ratelog"
)

// Config is what the upstream side needs from meshka's configuration.
type Config struct {
	Brokers        []string
	ClientID       string
	RequestTimeout time.Duration
	MetadataTTL    time.Duration
	Logger         *slog.Logger
	// Dialer, when set, replaces the network dial (tests count bytes with it).
	Dialer func(ctx context.Context, network, host string) (net.Conn, error)
	// TLS, when set, secures every connection to upstream, over what
	// Dialer dials; an empty ServerName checks the host dialled.
	TLS *tls.Config
	// SASL, when set, authenticates every connection to upstream.
	SASL sasl.Mechanism
	// Metrics, when set, registers the upstream figures by broker.
	Metrics prometheus.Registerer

	// slotWait, set by tests, is called from a produce pipe's writer when
	// it has a request ready and every slot of its connection is taken.
	slotWait func(broker int32)
	// now, set by tests, is the clock that retires produce connections
	// before their SASL sessions end.
	now func() time.Time
	// retired, set by tests, is called from a produce pipe's writer when
	// it retires its connection.
	retired func(broker int32)
}

// Client holds two kgo clients: main carries metadata, admin, produce and
// one-off fetches; stream carries only the long-poll fetch streams, so a
// long poll never delays anything else on kgo's per-broker connections.
type Client struct {
	cfg    Config
	log    *slog.Logger
	dialer dialer
	main   *kgo.Client
	stream *kgo.Client
	meta   *MetaCache

	versionsMu sync.Mutex
	versions   *kmsg.ApiVersionsResponse
	asks       singleflight.Group // one upstream ApiVersions at a time

	// life ends at Close: asks shared by many callers run on it rather
	// than on the context of whichever caller came first.
	life    context.Context
	endLife context.CancelFunc

	health health
	m      *metrics

	streams *Streams

	pipesMu sync.Mutex
	pipes   map[int32]*pipe // produce connections by broker id; nil once closed

	coords coordinators
}

// New connects lazily: no request is issued until one is needed.
func New(cfg Config) (*Client, error) {
	if len(cfg.Brokers) == 0 {
		return nil, fmt.Errorf("upstream: no brokers configured")
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "meshka"
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	if cfg.MetadataTTL <= 0 {
		cfg.MetadataTTL = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	// Forwarded requests go at the client's version, which ApiVersions
	// keeps within these caps; meshka's own requests go at the highest
	// version both sides know.
	versions := kmsgVersions()
	for key, max := range idlessMax {
		versions.SetMaxKeyVersion(key, max)
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.MaxVersions(versions),
		kgo.ClientID(cfg.ClientID),
		kgo.RequestTimeoutOverhead(cfg.RequestTimeout),
		kgo.MetadataMinAge(250 * time.Millisecond),
		kgo.DisableIdempotentWrite(),
	}
	secLog := ratelog.New(cfg.Logger, 10*time.Second)
	d := dialer{base: cfg.Dialer, tls: cfg.TLS, lim: secLog}
	if cfg.Dialer != nil || cfg.TLS != nil {
		opts = append(opts, kgo.Dialer(d.dial))
	}
	if cfg.SASL != nil {
		opts = append(opts, kgo.SASL(cfg.SASL), kgo.WithHooks(saslHook{lim: secLog, mech: cfg.SASL.Name()}))
	}
	opts = append(opts, kgo.WithLogger(newKgoLogger(cfg.Logger)))
	c := &Client{cfg: cfg, log: cfg.Logger, dialer: d, pipes: make(map[int32]*pipe)}
	c.m = newMetrics(cfg.Metrics, c)
	opts = append(opts, kgo.WithHooks(kgoHook{c.m}))
	main, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("upstream: %w", err)
	}
	stream, err := kgo.NewClient(append(opts, kgo.ClientID(cfg.ClientID+"-stream"))...)
	if err != nil {
		main.Close()
		return nil, fmt.Errorf("upstream: %w", err)
	}
	c.main, c.stream = main, stream
	c.life, c.endLife = context.WithCancel(context.Background())
	c.meta = newMetaCache(c, cfg.MetadataTTL)
	c.streams = newStreams(c)
	return c, nil
}

// idlessMax is the last version of OffsetCommit and OffsetFetch that names
// topics rather than identifying them by id (v10 switched); meshka's
// handlers read topic names, so they advertise no higher.
var idlessMax = map[int16]int16{8: 9, 9: 9}

// kmsgVersions is every key kmsg knows at its newest version: kversion's
// release tables can trail kmsg, and a client's newer version (Produce v12
// for KIP-890 transactions) must reach upstream unlowered.
func kmsgVersions() *kversion.Versions {
	vs := kversion.Tip()
	for key := int16(0); key < 1024; key++ {
		if req := kmsg.RequestForKey(key); req != nil {
			vs.SetMaxKeyVersion(key, req.MaxVersion())
		}
	}
	return vs
}

// MaxRoutedVersion is the highest version meshka forwards for key, or -1
// when only kmsg and upstream bound it.
func MaxRoutedVersion(key int16) int16 {
	if v, ok := idlessMax[key]; ok {
		return v
	}
	return -1
}

// Close stops every stream and produce connection and closes the kgo
// clients.
func (c *Client) Close() {
	c.endLife()
	c.closePipes()
	c.streams.close()
	c.stream.Close()
	c.main.Close()
}

// Meta is the topic metadata cache.
func (c *Client) Meta() *MetaCache { return c.meta }

// Streams is the registry of shared fetch streams.
func (c *Client) Streams() *Streams { return c.streams }

// ApiVersions returns upstream's ApiVersions answer, asking once and caching
// it; a failed ask is retried on the next call. Callers arriving while an
// ask is on its way wait for it (or for their ctx), so an unreachable
// upstream costs one ask at a time, not one per caller. The result is
// shared and must not be modified.
func (c *Client) ApiVersions(ctx context.Context) (*kmsg.ApiVersionsResponse, error) {
	if v := c.CachedApiVersions(); v != nil {
		return v, nil
	}
	ch := c.asks.DoChan("versions", func() (any, error) {
		ctx, cancel := c.timeout(c.life)
		defer cancel()
		req := kmsg.NewPtrApiVersionsRequest()
		req.ClientSoftwareName = "meshka"
		req.ClientSoftwareVersion = "1"
		kresp, err := c.main.Request(ctx, req)
		if err != nil {
			c.health.failed(err)
			return nil, fmt.Errorf("upstream: api versions: %w", err)
		}
		c.health.answered()
		resp := kresp.(*kmsg.ApiVersionsResponse)
		if resp.ErrorCode != 0 {
			return nil, fmt.Errorf("upstream: api versions: error code %d", resp.ErrorCode)
		}
		c.versionsMu.Lock()
		c.versions = resp
		c.versionsMu.Unlock()
		return resp, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*kmsg.ApiVersionsResponse), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Unreachable is the error of the last failed attempt to reach upstream
// when no attempt has succeeded since, else nil. Safe for concurrent use;
// never blocks.
func (c *Client) Unreachable() error { return c.health.unreachable() }

// NoteSilence tells the client a caller waited d for upstream and got no
// answer, so Unreachable reports upstream down until an answer comes.
func (c *Client) NoteSilence(d time.Duration) { c.health.silent(d) }

// Request sends a request of meshka's own (metadata, offsets, group
// listings) with kgo's routing: sharded by partition leader, to the
// controller, or to a coordinator, at the highest version both sides
// support. Clients' requests go through Forward instead.
func (c *Client) Request(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	ctx, cancel := c.timeout(ctx)
	defer cancel()
	return c.main.Request(ctx, req)
}

func (c *Client) now() time.Time {
	if c.cfg.now != nil {
		return c.cfg.now()
	}
	return time.Now()
}

func (c *Client) timeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.cfg.RequestTimeout)
}
