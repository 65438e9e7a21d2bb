package httpmap

// The built-in schema registry's service (http.schema_registry): on every
// node a replica, a registry.State fed by a subscription to the
// registry's topic from its start, which serves the reads; and one
// cluster-wide writer, a mesh actor (kind schema-writer, identity the
// topic), which plans every change against its node's replica and
// produces the records. The actor keeps nothing of its own: before each
// change it makes its node's replica apply the topic up to its end, so it
// may move to any node and go on where the last writer stopped.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshka/meshka/mesh"
	"github.com/meshka/meshka/records"
	"github.com/meshka/meshka/schema/registry"
)

// registryKind is the actor kind of the registry's writer.
const registryKind = "schema-writer"

// registryRetry is how long the replica waits before subscribing again
// after its subscription failed (the topic not there yet, say).
const registryRetry = 500 * time.Millisecond

// schemaReplica is a node's copy of the registry.
type schemaReplica struct {
	mesh  *mesh.Mesh
	topic string
	log   *slog.Logger

	mu      sync.RWMutex
	state   *registry.State
	applied int64         // the offset after the last record applied (the log start before any)
	started bool          // applied is known
	loaded  bool          // applied has reached the end measured at the first subscription
	ready   atomic.Bool   // loaded, read without the lock (it never goes back)
	loadEnd int64         // that end
	changed chan struct{} // closed (and replaced) whenever applied or loaded changes

	cancel context.CancelFunc
	done   chan struct{}
}

func newSchemaReplica(m *mesh.Mesh, topic string, log *slog.Logger) *schemaReplica {
	return &schemaReplica{mesh: m, topic: topic, log: log, state: registry.New(), changed: make(chan struct{})}
}

// start reads the topic in a goroutine of its own until stop.
func (r *schemaReplica) start() {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	go func() {
		defer close(r.done)
		r.run(ctx)
	}()
}

func (r *schemaReplica) stop() {
	if r.cancel != nil {
		r.cancel()
		<-r.done
	}
}

// run subscribes and applies, subscribing again from the offset applied
// whenever the subscription ends.
func (r *schemaReplica) run(ctx context.Context) {
	for ctx.Err() == nil {
		if err := r.follow(ctx); err != nil && ctx.Err() == nil {
			r.log.Debug("schema registry: reading the topic", "topic", r.topic, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(registryRetry):
			}
		}
	}
}

func (r *schemaReplica) follow(ctx context.Context) error {
	r.mu.RLock()
	started, from := r.started, r.applied
	r.mu.RUnlock()
	start := mesh.AtOffsets(map[int32]int64{0: from})
	if !started {
		begin, err := r.mesh.Offsets(ctx, r.topic, mesh.Earliest())
		if err != nil {
			return err
		}
		end, err := r.mesh.Offsets(ctx, r.topic, mesh.Latest())
		if err != nil {
			return err
		}
		r.mu.Lock()
		r.started, r.applied, r.loadEnd = true, begin[0], end[0]
		r.loaded = r.applied >= r.loadEnd
		r.ready.Store(r.loaded)
		r.signal()
		r.mu.Unlock()
		start = mesh.AtOffsets(map[int32]int64{0: begin[0]})
	}
	sub, err := r.mesh.Subscribe(ctx, mesh.SubscribeOptions{Topic: r.topic, Partitions: []int32{0}, Start: start, Slow: mesh.Pause})
	if err != nil {
		return err
	}
	defer sub.Close()
	for {
		if !r.isLoaded() {
			// Until loaded, look up from the queue now and then: the
			// records before the end the replica started with may be
			// gone (compacted away, transaction markers), which only
			// the subscription's read offset shows.
			nctx, cancel := context.WithTimeout(ctx, registryGapCheck)
			rec, err := sub.Next(nctx)
			cancel()
			switch {
			case err == nil:
				r.apply(rec)
			case ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded):
				r.readTo(sub.ReadTo(0))
			default:
				return err
			}
			continue
		}
		rec, err := sub.Next(ctx)
		if err != nil {
			return err
		}
		r.apply(rec)
	}
}

// registryGapCheck is how long the replica, still loading, waits for a
// record before it asks how far the topic has been read.
const registryGapCheck = 500 * time.Millisecond

func (r *schemaReplica) isLoaded() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.loaded
}

// readTo notes that the topic has been read up to offset with no record
// left to apply before it (-1: not known).
func (r *schemaReplica) readTo(offset int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if offset <= r.applied {
		return
	}
	r.applied = offset
	if !r.loaded && r.applied >= r.loadEnd {
		r.loaded = true
		r.ready.Store(true)
	}
	r.signal()
}

// apply applies one record of the topic; a record the registry cannot
// read is logged and skipped, as every node skips it alike.
func (r *schemaReplica) apply(rec mesh.Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rec.Offset < r.applied {
		return
	}
	if err := r.state.Apply(registry.Record{Key: rec.Key, Value: rec.Value}); err != nil {
		r.log.Warn("schema registry: a record skipped", "topic", r.topic, "offset", rec.Offset, "err", err)
	}
	r.applied = rec.Offset + 1
	if !r.loaded && r.applied >= r.loadEnd {
		r.loaded = true
		r.ready.Store(true)
	}
	r.signal()
}

// signal wakes whoever waits on the replica; r.mu is held.
func (r *schemaReplica) signal() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// wait waits until ok holds (checked under the read lock) or ctx ends.
func (r *schemaReplica) wait(ctx context.Context, ok func() bool) error {
	for {
		r.mu.RLock()
		done, ch := ok(), r.changed
		r.mu.RUnlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// waitApplied waits until the replica has applied every record before
// offset.
func (r *schemaReplica) waitApplied(ctx context.Context, offset int64) error {
	return r.wait(ctx, func() bool { return r.started && r.applied >= offset })
}

// waitLoaded waits until the replica has read the topic up to the end it
// had when the replica started.
func (r *schemaReplica) waitLoaded(ctx context.Context) error {
	return r.wait(ctx, func() bool { return r.loaded })
}

// read runs f on the state under the read lock, once the replica is
// loaded.
func (r *schemaReplica) read(ctx context.Context, f func(*registry.State) error) error {
	if err := r.whenLoaded(ctx); err != nil {
		return err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return f(r.state)
}

// whenLoaded waits, at most 10 s, until the replica is loaded: at once
// once it has been (every checked record asks).
func (r *schemaReplica) whenLoaded(ctx context.Context) error {
	if r.ready.Load() {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := r.waitLoaded(wctx); err != nil {
		return &registry.Error{Code: codeRegistryUnavailable, Message: "the schema registry is still loading its topic " + r.topic}
	}
	return nil
}

// readReplica is f's answer over the replica's state, read as read does.
func readReplica[T any](ctx context.Context, r *schemaReplica, f func(*registry.State) (T, error)) (T, error) {
	var out T
	err := r.read(ctx, func(st *registry.State) error {
		var err error
		out, err = f(st)
		return err
	})
	return out, err
}

// codeRegistryUnavailable is Confluent's 50003: the registry cannot serve
// now (its store is not readable, or its writer cannot be reached).
const codeRegistryUnavailable = 50003

// codeRegistryStore is Confluent's 50001: the store failed a write.
const codeRegistryStore = 50001

// writerCall is one change asked of the writer.
type writerCall struct {
	Op        string           `json:"op"` // register, delete_subject, delete_version, set_config, delete_config, set_mode, delete_mode
	Subject   string           `json:"subject,omitempty"`
	Schema    *registry.Schema `json:"schema,omitempty"`
	Normalize bool             `json:"normalize,omitempty"`
	ID        int              `json:"id,omitempty"`
	Version   int              `json:"version,omitempty"`
	Permanent bool             `json:"permanent,omitempty"`
	Config    *registry.Config `json:"config,omitempty"`
	Mode      registry.Mode    `json:"mode,omitempty"`
	Force     bool             `json:"force,omitempty"`
}

func (c writerCall) op() (registry.Op, error) {
	switch c.Op {
	case "register":
		if c.Schema == nil {
			return nil, errors.New("register without a schema")
		}
		return registry.Register{Subject: c.Subject, Schema: *c.Schema, Normalize: c.Normalize, ID: c.ID, Version: c.Version}, nil
	case "delete_subject":
		return registry.DeleteSubject{Subject: c.Subject, Permanent: c.Permanent}, nil
	case "delete_version":
		return registry.DeleteVersion{Subject: c.Subject, Version: c.Version, Permanent: c.Permanent}, nil
	case "set_config":
		if c.Config == nil {
			return nil, errors.New("set_config without a config")
		}
		return registry.SetConfig{Subject: c.Subject, Config: *c.Config}, nil
	case "delete_config":
		return registry.DeleteConfig{Subject: c.Subject}, nil
	case "set_mode":
		return registry.SetMode{Subject: c.Subject, Mode: c.Mode, Force: c.Force}, nil
	case "delete_mode":
		return registry.DeleteMode{Subject: c.Subject}, nil
	}
	return nil, fmt.Errorf("unknown op %q", c.Op)
}

// writerAnswer is the writer's answer: the result, or the registry's
// error; Offset is the offset after the last record the change wrote (the
// topic's end when it wrote none), which a node's replica must have
// applied to show the change.
type writerAnswer struct {
	Result registry.Result `json:"result"`
	Error  *registry.Error `json:"error,omitempty"`
	Offset int64           `json:"offset"`
}

// schemaWriter is the writer actor; what it knows is its node's replica.
type schemaWriter struct {
	replica  *schemaReplica
	producer *mesh.Producer
}

func (w *schemaWriter) Receive(ctx context.Context, body []byte) ([]byte, error) {
	var c writerCall
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, fmt.Errorf("schema writer: %w", err)
	}
	op, err := c.op()
	if err != nil {
		return nil, fmt.Errorf("schema writer: %w", err)
	}
	r := w.replica
	// Whatever a writer wrote before (here or on another node) must be in
	// the state this change is planned against.
	end, err := r.mesh.Offsets(ctx, r.topic, mesh.Latest())
	if err != nil {
		return nil, fmt.Errorf("schema writer: the end of %s: %w", r.topic, err)
	}
	if err := r.waitApplied(ctx, end[0]); err != nil {
		return nil, fmt.Errorf("schema writer: catching up with %s: %w", r.topic, err)
	}
	r.mu.RLock()
	recs, res, err := r.state.Plan(op)
	r.mu.RUnlock()
	if err != nil {
		var re *registry.Error
		if !errors.As(err, &re) {
			re = &registry.Error{Code: codeRegistryStore, Message: err.Error()}
		}
		return json.Marshal(writerAnswer{Error: re, Offset: end[0]})
	}
	ans := writerAnswer{Result: res, Offset: end[0]}
	if len(recs) > 0 {
		out := make([]mesh.Record, len(recs))
		for i, rec := range recs {
			out[i] = mesh.Record{Topic: r.topic, Partition: 0, Key: rec.Key, Value: rec.Value}
		}
		written, err := w.producer.ProduceSync(ctx, out...)
		if err != nil {
			return nil, fmt.Errorf("schema writer: writing to %s: %w", r.topic, err)
		}
		ans.Offset = written[len(written)-1].Offset + 1
		if err := r.waitApplied(ctx, ans.Offset); err != nil {
			return nil, fmt.Errorf("schema writer: reading back from %s: %w", r.topic, err)
		}
	}
	return json.Marshal(ans)
}

func (w *schemaWriter) Stop(mesh.StopReason) {}

// schemaService is the registry as a node serves it.
type schemaService struct {
	replica  *schemaReplica
	writer   *mesh.Actors
	producer *mesh.Producer
}

// startRegistry creates the registry's topic when asked to, starts the
// node's replica and serves the writer's kind.
func (s *Server) startRegistry(ctx context.Context) error {
	c := s.cfg.SchemaRegistry
	if c.Create {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		errs, err := s.env.Mesh.CreateTopics(cctx, mesh.TopicSpec{Name: c.Topic, Partitions: 1, Replication: c.Replication,
			Configs: map[string]string{"cleanup.policy": "compact"}})
		cancel()
		if err == nil {
			err = errs[c.Topic]
		}
		if err != nil {
			s.log.Warn("the schema registry's topic was not created", "topic", c.Topic, "err", err)
		}
	}
	svc := &schemaService{replica: s.replica,
		producer: s.env.Mesh.NewProducer(mesh.ProducerOptions{Acks: mesh.AcksAll, Compression: records.CodecNone})}
	kind, err := s.env.Mesh.Actors(mesh.ActorsOptions{Kind: registryKind, Queue: 256,
		New: func(string) (mesh.Actor, error) {
			return &schemaWriter{replica: svc.replica, producer: svc.producer}, nil
		}})
	if err != nil {
		svc.producer.Close(ctx)
		return fmt.Errorf("http: schema registry: %w", err)
	}
	svc.writer = kind
	svc.replica.start()
	s.registry = svc
	return nil
}

// stop stops serving the writer here, then the replica.
func (svc *schemaService) stop(ctx context.Context) {
	svc.writer.Close(ctx)
	svc.producer.Close(ctx)
	svc.replica.stop()
}

// write asks the writer for a change, then waits until this node's
// replica shows it (read-your-writes on this node).
func (svc *schemaService) write(ctx context.Context, c writerCall) (registry.Result, error) {
	body, err := json.Marshal(c)
	if err != nil {
		return registry.Result{}, err
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := svc.writer.Call(cctx, svc.replica.topic, body)
	if err != nil {
		msg := err.Error()
		if errors.Is(err, mesh.ErrNoActors) {
			msg = "the node that runs the schema registry's writer does not serve the registry (http.schema_registry.enabled is off there)"
		}
		return registry.Result{}, &registry.Error{Code: codeRegistryUnavailable, Message: msg}
	}
	var ans writerAnswer
	if err := json.Unmarshal(out, &ans); err != nil {
		return registry.Result{}, &registry.Error{Code: codeRegistryStore, Message: "the writer answered: " + err.Error()}
	}
	if ans.Error != nil {
		return registry.Result{}, ans.Error
	}
	if err := svc.replica.waitApplied(cctx, ans.Offset); err != nil {
		return registry.Result{}, &registry.Error{Code: codeRegistryUnavailable,
			Message: "the change was written, but this node has not read it back yet"}
	}
	return ans.Result, nil
}
