package mesh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"golang.org/x/sync/singleflight"

	"github.com/meshka/meshka/actors/hosted"
	"github.com/meshka/meshka/actors/partition"
	"github.com/meshka/meshka/cluster"
	"github.com/meshka/meshka/upstream"
)

// ErrClosed is the error of calls on a Mesh that has been closed, and of
// the subscriptions and producers it ended.
var ErrClosed = errors.New("mesh: closed")

// Config is what a node gives its Mesh.
type Config struct {
	Cluster      *cluster.Mesh
	Upstream     *upstream.Client
	UpstreamName string // the upstream's name in actor identities
	// Writers, when set, are the node's partition actors' produce
	// pipelines, which producers hand batches to without a message when
	// the node owns the partition (see partition.Writers).
	Writers *partition.Writers
	// Hosted is the node's registry of binding actors, which its hosted
	// actor kind serves (nil: Actors is refused); the Mesh closes it.
	Hosted *hosted.Registry
	// Checker, when not nil, is what Check asks (see also SetChecker).
	Checker RecordChecker
	Logger  *slog.Logger
}

// Mesh is one node's door to the records of the upstream's topics: its
// producers and subscriptions reach every partition through the mesh,
// whichever node owns it. Safe for concurrent use.
type Mesh struct {
	cluster      *cluster.Mesh
	up           *upstream.Client
	upstreamName string
	writers      *partition.Writers
	hosted       *hosted.Registry
	log          *slog.Logger
	checker      atomic.Pointer[checkerBox]
	schemas      atomic.Pointer[schemasBox]
	skipped      atomic.Int64       // records validate_fetch had subscriptions skip
	offsets      singleflight.Group // start offsets asked of upstream, shared by subscriptions starting at once

	ctx    context.Context // ends at Close: every goroutine of the Mesh stops
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	hubs   map[hubKey]*hub
	leases map[*Lease]struct{}
	closed bool
}

// New is a node's Mesh; the node closes it when it stops.
func New(cfg Config) *Mesh {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Mesh{cluster: cfg.Cluster, up: cfg.Upstream, upstreamName: cfg.UpstreamName, writers: cfg.Writers, hosted: cfg.Hosted, log: log.With("component", "mesh"),
		ctx: ctx, cancel: cancel, hubs: map[hubKey]*hub{}, leases: map[*Lease]struct{}{}}
	m.SetChecker(cfg.Checker)
	return m
}

// Close ends every subscription (their Next answers ErrClosed),
// producer and share of the Mesh, stops the binding actors this node
// runs (StopClosing), abandons its leases (their Revoked close; see
// Lease) and waits for their goroutines to stop.
func (m *Mesh) Close() {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.cancel()
	if m.hosted != nil {
		ctx, cancel := context.WithTimeout(context.Background(), hostedCloseTimeout)
		if err := m.hosted.Close(ctx); err != nil {
			m.log.Warn("binding actors did not all stop", "err", err)
		}
		cancel()
	}
	m.wg.Wait()
	m.dropLeases()
}

// hostedCloseTimeout bounds how long Close waits for binding actors to
// stop.
const hostedCloseTimeout = 10 * time.Second

// go runs f as one of the Mesh's goroutines, stopped by Close.
func (m *Mesh) goroutine(f func()) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		f()
	}()
	return true
}

// Partitions is the number of partitions of topic upstream.
func (m *Mesh) Partitions(ctx context.Context, topic string) (int32, error) {
	ts, err := m.up.Meta().Topics(ctx, []string{topic}, false)
	if err != nil {
		return 0, fmt.Errorf("mesh: topic %q: %w", topic, err)
	}
	for _, t := range ts {
		if t.Name != topic {
			continue
		}
		if t.Err != 0 {
			return 0, fmt.Errorf("mesh: topic %q: %w", topic, kerr.ErrorForCode(t.Err))
		}
		return int32(len(t.Partitions)), nil
	}
	return 0, fmt.Errorf("mesh: topic %q: %w", topic, kerr.UnknownTopicOrPartition)
}

// upstreamVersion is want, or upstream's highest version of key if that
// is lower (want when upstream's versions are not known yet).
func (m *Mesh) upstreamVersion(key, want int16) int16 {
	if av := m.up.CachedApiVersions(); av != nil {
		for _, k := range av.ApiKeys {
			if k.ApiKey == key {
				return min(want, k.MaxVersion)
			}
		}
	}
	return want
}
