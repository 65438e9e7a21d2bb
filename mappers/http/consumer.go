package httpmap

// A v2 consumer instance of the Confluent REST Proxy API, as a
// cluster-wide actor (mesh.Actors, kind http-consumer): one per group and
// name in the cluster, on whichever node owns it, so any node's listener
// serves any instance and no load balancer needs sticky sessions. Its
// settings and subscription are kept in http.consumers.topic (a Table);
// its reading is a member of the group (a mesh Share) running on the
// actor's node. When the actor moves (its node leaves or is lost), the
// next request makes it anew from the table on its new node, which joins
// the group again and reads on from the group's committed offsets: records
// returned but not committed come again, as after a Kafka consumer's
// restart.

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshka/meshka/mesh"
	"github.com/meshka/meshka/schema/convert"
	"github.com/meshka/meshka/schema/wire"
)

// consumerKind is the actor kind of v2 consumer instances.
const consumerKind = "http-consumer"

// Error codes of the v2 consumer API.
const (
	codeConsumerNotFound  = 40403
	codeFormatMismatch    = 40601
	codeConsumerExists    = 40902
	codeIllegalState      = 40903
	codeInvalidConsumer   = 42204
	codeConsumerBadConfig = 40001
)

// consumerID is the actor identity and table key of a group's instance.
func consumerID(group, name string) string {
	return url.PathEscape(group) + "/" + url.PathEscape(name)
}

// consumerInstance is an instance's state as the table keeps it.
type consumerInstance struct {
	Group  string `json:"group"`
	Name   string `json:"name"`
	Format string `json:"format"` // binary, json, avro, jsonschema or protobuf
	// AutoOffsetReset is where a partition the group has committed
	// nothing for starts: earliest or latest.
	AutoOffsetReset string   `json:"auto_offset_reset"`
	AutoCommit      bool     `json:"auto_commit"`
	FetchMinBytes   int64    `json:"fetch_min_bytes"`    // -1: answer once anything is there
	RequestTimeout  int64    `json:"request_timeout_ms"` // how long GET records waits at most
	Topics          []string `json:"topics,omitempty"`
	TopicPattern    string   `json:"topic_pattern,omitempty"`
	// Subscriber and SubscriberHost are the principal (and its address)
	// that subscribed with TopicPattern: topics that come to match it
	// later are read only if they may READ them.
	Subscriber     string `json:"subscriber,omitempty"`
	SubscriberHost string `json:"subscriber_host,omitempty"`
	// Seen is when the instance last had a request (Unix ms), kept
	// within a quarter of the instance timeout.
	Seen int64 `json:"seen"`
}

// consumerCall is what the HTTP edge asks an instance's actor.
type consumerCall struct {
	Op     string            `json:"op"`
	Create *consumerInstance `json:"create,omitempty"`
	// subscribe
	Topics         []string `json:"topics,omitempty"`
	TopicPattern   string   `json:"topic_pattern,omitempty"`
	Subscriber     string   `json:"subscriber,omitempty"`
	SubscriberHost string   `json:"subscriber_host,omitempty"`
	// records
	Format    string `json:"format,omitempty"` // the Accept header's; empty: the instance's
	TimeoutMs int64  `json:"timeout_ms,omitempty"`
	MaxBytes  int64  `json:"max_bytes,omitempty"`
	// offsets: commit (none: every record returned) and committed
	Offsets    []v2TopicPartitionOffset `json:"offsets,omitempty"`
	Partitions []v2TopicPartition       `json:"partitions,omitempty"`
}

// consumerAnswer is the actor's answer: the HTTP status and JSON body.
type consumerAnswer struct {
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body,omitempty"`
}

type v2TopicPartition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
}

type v2TopicPartitionOffset struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Offset    int64   `json:"offset"`
	Metadata  *string `json:"metadata,omitempty"`
}

// v2ConsumerRecord is a record as GET records returns it: key and value
// base64 in the binary format, JSON as they are in the json format,
// decoded to JSON with the schema their wire format names in the schema
// formats, with that schema's id.
type v2ConsumerRecord struct {
	Topic         string          `json:"topic"`
	Key           json.RawMessage `json:"key"`
	Value         json.RawMessage `json:"value"`
	KeySchemaID   *int            `json:"key_schema_id,omitempty"`
	ValueSchemaID *int            `json:"value_schema_id,omitempty"`
	Partition     int32           `json:"partition"`
	Offset        int64           `json:"offset"`
}

// consumerEnv is what every instance's actor on a node shares.
type consumerEnv struct {
	mesh     *mesh.Mesh
	table    *mesh.Table
	timeout  time.Duration // http.consumers.instance_timeout
	maxBytes int64         // http.consumers.max_bytes
	// undecodable counts the keys and values the schema formats give
	// undecoded.
	undecodable prometheus.Counter
	// mayRead says whether principal, at host, may READ topic (true
	// without ACLs); a pattern subscription's new topics are checked
	// with it.
	mayRead func(principal string, host netip.Addr, topic string) bool
}

// patternRefresh is how often a pattern subscription's topics are matched
// again, at a GET records: new topics that match join it, topics gone
// leave it (a Kafka consumer does so at its metadata refresh).
var patternRefresh = 30 * time.Second

// consumerActor is one instance.
type consumerActor struct {
	env    *consumerEnv
	id     string
	loaded bool
	st     *consumerInstance // nil: no such instance
	share  *mesh.Share
	// returned is, per partition, the offset of the last record GET
	// records returned: what a commit without offsets commits.
	returned map[v2TopicPartition]int64
	held     *mesh.Record // taken from the share, not yet returned (it did not fit)
	saved    time.Time    // when st.Seen was last written
	matched  time.Time    // when st.TopicPattern was last matched against upstream's topics
}

func (e *consumerEnv) newActor(id string) (mesh.Actor, error) {
	return &consumerActor{env: e, id: id, returned: map[v2TopicPartition]int64{}}, nil
}

func (a *consumerActor) Receive(ctx context.Context, body []byte) ([]byte, error) {
	var c consumerCall
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, fmt.Errorf("a consumer call that does not decode: %w", err)
	}
	if err := a.load(ctx); err != nil {
		return answer(http.StatusServiceUnavailable, errorf(http.StatusServiceUnavailable, "the consumer instance's state cannot be read: %v", err))
	}
	if c.Op == "create" {
		return a.create(ctx, c.Create)
	}
	if a.st == nil {
		return answer(http.StatusNotFound, errorf(codeConsumerNotFound, "Consumer instance not found."))
	}
	a.touch(ctx)
	switch c.Op {
	case "delete":
		return a.delete(ctx)
	case "subscribe":
		return a.subscribe(ctx, c)
	case "subscription":
		topics := a.st.Topics
		if topics == nil {
			topics = []string{}
		}
		return answer(http.StatusOK, map[string]any{"topics": topics})
	case "unsubscribe":
		a.stopShare()
		a.st.Topics, a.st.TopicPattern = nil, ""
		if err := a.save(ctx); err != nil {
			return answer(http.StatusServiceUnavailable, errorf(codeKafkaRetriable, "the subscription cannot be saved: %v", err))
		}
		return answer(http.StatusNoContent, nil)
	case "assignments":
		parts := []v2TopicPartition{}
		if a.share != nil {
			for t, ps := range a.share.Assigned() {
				for _, p := range ps {
					parts = append(parts, v2TopicPartition{t, p})
				}
			}
		}
		slices.SortFunc(parts, func(x, y v2TopicPartition) int {
			if c := strings.Compare(x.Topic, y.Topic); c != 0 {
				return c
			}
			return int(x.Partition - y.Partition)
		})
		return answer(http.StatusOK, map[string]any{"partitions": parts})
	case "records":
		return a.records(ctx, c)
	case "commit":
		return a.commit(ctx, c.Offsets)
	case "committed":
		return a.committed(ctx, c.Partitions)
	}
	return nil, fmt.Errorf("an unknown consumer call %q", c.Op)
}

// Done says the actor holds no instance (deleted, expired, or never
// created): it stops at once rather than holding a place among the
// node's http.consumers.max_instances until it is idle.
func (a *consumerActor) Done() bool { return a.loaded && a.st == nil }

func (a *consumerActor) Stop(reason mesh.StopReason) {
	a.stopShare()
	if reason == mesh.StopIdle && a.st != nil {
		// Idle for the instance timeout: the instance expires, as the
		// REST Proxy's do.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		a.env.table.Delete(ctx, []byte(a.id))
	}
}

// load reads the instance's state at the actor's first call; an instance
// unused past the timeout (its actor lost with its node, say) has expired.
func (a *consumerActor) load(ctx context.Context) error {
	if a.loaded {
		return nil
	}
	e, ok, err := a.env.table.Get(ctx, []byte(a.id))
	if err != nil {
		return err
	}
	a.loaded = true
	if !ok {
		return nil
	}
	var st consumerInstance
	if err := json.Unmarshal(e.Value, &st); err != nil {
		return nil // not ours to read: no instance
	}
	if time.Since(time.UnixMilli(st.Seen)) > a.env.timeout {
		a.env.table.Delete(ctx, []byte(a.id))
		return nil
	}
	a.st, a.saved = &st, time.UnixMilli(st.Seen)
	if len(st.Topics) > 0 {
		if err := a.startShare(); err != nil {
			a.st = nil
			a.loaded = false
			return err
		}
	}
	return nil
}

func (a *consumerActor) save(ctx context.Context) error {
	now := time.Now()
	a.st.Seen = now.UnixMilli()
	v, err := json.Marshal(a.st)
	if err != nil {
		return err
	}
	if _, err := a.env.table.Put(ctx, []byte(a.id), v); err != nil {
		return err
	}
	a.saved = now
	return nil
}

// touch keeps the instance's last use within a quarter of the timeout,
// so that an instance in use does not expire when its actor moves.
func (a *consumerActor) touch(ctx context.Context) {
	if time.Since(a.saved) > a.env.timeout/4 {
		a.save(ctx)
	}
}

func (a *consumerActor) create(ctx context.Context, st *consumerInstance) ([]byte, error) {
	if st == nil {
		return nil, errors.New("a create call without the instance")
	}
	if a.st != nil {
		return answer(http.StatusConflict, errorf(codeConsumerExists, "Consumer with specified consumer ID already exists in the specified consumer group."))
	}
	a.st = st
	if err := a.save(ctx); err != nil {
		a.st = nil
		return answer(http.StatusServiceUnavailable, errorf(codeKafkaRetriable, "the consumer instance cannot be saved: %v", err))
	}
	a.returned = map[v2TopicPartition]int64{}
	return answer(http.StatusOK, map[string]string{"instance_id": st.Name})
}

func (a *consumerActor) delete(ctx context.Context) ([]byte, error) {
	a.stopShare()
	if err := a.env.table.Delete(ctx, []byte(a.id)); err != nil {
		return answer(http.StatusServiceUnavailable, errorf(codeKafkaRetriable, "the consumer instance cannot be deleted: %v", err))
	}
	a.st = nil
	return answer(http.StatusNoContent, nil)
}

// subscribe reads topics from now on (the edge has resolved a
// pattern to its topics and checked ACLs).
func (a *consumerActor) subscribe(ctx context.Context, c consumerCall) ([]byte, error) {
	a.stopShare()
	a.st.Topics, a.st.TopicPattern = slices.Clone(c.Topics), c.TopicPattern
	a.st.Subscriber, a.st.SubscriberHost = c.Subscriber, c.SubscriberHost
	a.matched = time.Now()
	if len(a.st.Topics) > 0 {
		if err := a.startShare(); err != nil {
			a.st.Topics = nil
			return answer(http.StatusServiceUnavailable, errorf(codeKafkaRetriable, "subscribing: %v", err))
		}
	}
	if err := a.save(ctx); err != nil {
		return answer(http.StatusServiceUnavailable, errorf(codeKafkaRetriable, "the subscription cannot be saved: %v", err))
	}
	return answer(http.StatusNoContent, nil)
}

// startShare joins the group as a member reading the subscription.
// Records are acknowledged (and so committed) when GET records returns
// them with auto commit, else when POST offsets names them.
func (a *consumerActor) startShare() error {
	start := mesh.Latest()
	if a.st.AutoOffsetReset == "earliest" {
		start = mesh.Earliest()
	}
	commitEvery := 5 * time.Second
	if !a.st.AutoCommit {
		commitEvery = -1
	}
	sh, err := a.env.mesh.Share(mesh.ShareOptions{Group: a.st.Group, Topics: a.st.Topics, Start: start,
		Acknowledge: true, CommitInterval: commitEvery, ClientID: "meshka-http/" + a.st.Name})
	if err != nil {
		return err
	}
	a.share = sh
	return nil
}

// matchPattern matches the subscription's pattern against upstream's
// topics again once patternRefresh has passed since it last did, and
// moves the subscription to the topics it matches now that the
// subscriber may READ. A failure to list topics keeps the topics it has.
func (a *consumerActor) matchPattern(ctx context.Context) {
	if time.Since(a.matched) < patternRefresh {
		return
	}
	a.matched = time.Now()
	re, err := regexp.Compile("^(?:" + a.st.TopicPattern + ")$")
	if err != nil {
		return // checked at subscribe
	}
	all, err := a.env.mesh.Topics(ctx)
	if err != nil {
		return
	}
	host, _ := netip.ParseAddr(a.st.SubscriberHost)
	var topics []string
	for _, t := range all {
		if !t.Internal && re.MatchString(t.Name) && (a.env.mayRead == nil || a.env.mayRead(a.st.Subscriber, host, t.Name)) {
			topics = append(topics, t.Name)
		}
	}
	slices.Sort(topics)
	have := slices.Sorted(slices.Values(a.st.Topics))
	if slices.Equal(topics, have) {
		return
	}
	a.stopShare()
	a.st.Topics = topics
	if len(topics) > 0 {
		if err := a.startShare(); err != nil {
			a.st.Topics = have // tried again at the next refresh
			a.matched = time.Time{}
			if len(have) > 0 && a.startShare() != nil {
				a.st.Topics = nil
			}
			return
		}
	}
	a.save(ctx)
}

// stopShare leaves the group; with auto commit, what was returned is
// committed first.
func (a *consumerActor) stopShare() {
	if a.share == nil {
		return
	}
	a.share.Close()
	a.share, a.held = nil, nil
	a.returned = map[v2TopicPartition]int64{}
}

// records takes what the share delivers: once it holds fetch.min.bytes
// (or any record, when that is not set) it answers with what has come,
// else at the request's timeout; never more than max_bytes (a record
// larger than that alone comes alone).
func (a *consumerActor) records(ctx context.Context, c consumerCall) ([]byte, error) {
	if c.Format != "" && c.Format != a.st.Format {
		return answer(http.StatusNotAcceptable, errorf(codeFormatMismatch,
			"The requested embedded data format does not match the deserializer for this consumer instance"))
	}
	if a.st.TopicPattern != "" {
		a.matchPattern(ctx)
	}
	if a.share == nil {
		if a.st.TopicPattern != "" {
			// subscribed to a pattern no topic matches yet
			return answer(http.StatusOK, []v2ConsumerRecord{})
		}
		return answer(http.StatusConflict, errorf(codeIllegalState, "Illegal state: Consumer is not subscribed to any topics or assigned any partitions"))
	}
	wait := time.Duration(a.st.RequestTimeout) * time.Millisecond
	if c.TimeoutMs > 0 {
		wait = min(wait, time.Duration(c.TimeoutMs)*time.Millisecond)
	}
	maxBytes := a.env.maxBytes
	if c.MaxBytes > 0 {
		maxBytes = min(maxBytes, c.MaxBytes)
	}
	minBytes := max(a.st.FetchMinBytes, 1)
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	out := []v2ConsumerRecord{}
	var size int64
	var taken []mesh.Record
	for size < maxBytes {
		var r mesh.Record
		if a.held != nil {
			r, a.held = *a.held, nil
		} else {
			next, stop := wctx, context.CancelFunc(func() {})
			if size >= minBytes {
				// Enough: take only what is there already.
				next, stop = context.WithTimeout(wctx, time.Millisecond)
			}
			var err error
			r, err = a.share.Next(next)
			stop()
			if err != nil {
				if ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
					return answer(http.StatusInternalServerError, errorf(codeKafkaError, "Kafka error: %v", err))
				}
				break
			}
		}
		rec, n := a.encode(ctx, r)
		if size > 0 && size+n > maxBytes {
			a.held = &r
			break
		}
		out = append(out, rec)
		taken = append(taken, r)
		size += n
	}
	for _, r := range taken {
		a.returned[v2TopicPartition{r.Topic, r.Partition}] = r.Offset
	}
	if a.st.AutoCommit {
		a.share.Ack(taken...)
	}
	return answer(http.StatusOK, out)
}

// encode is a record in the instance's format and its rough size. A key
// or value that is not JSON in the json format is given as a string of
// its text; one that does not decode in a schema format (not in the wire
// format, an unknown schema id, not a value of its schema) as a string
// of its bytes in base64, as the binary format gives it, without a
// schema id: the record is given either way, and the request does not
// fail.
func (a *consumerActor) encode(ctx context.Context, r mesh.Record) (v2ConsumerRecord, int64) {
	rec := v2ConsumerRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}
	enc := func(b []byte) (json.RawMessage, *int) {
		switch {
		case b == nil:
			return json.RawMessage("null"), nil
		case a.st.Format == "json" && json.Valid(b):
			return json.RawMessage(b), nil
		case a.st.Format == "json":
			s, _ := json.Marshal(string(b)) // not JSON: given as a string
			return s, nil
		case a.st.Format != "binary":
			if j, id, ok := a.decode(ctx, b); ok {
				return j, &id
			}
		}
		s, _ := json.Marshal(base64.StdEncoding.EncodeToString(b))
		return s, nil
	}
	rec.Key, rec.KeySchemaID = enc(r.Key)
	rec.Value, rec.ValueSchemaID = enc(r.Value)
	return rec, int64(len(rec.Key) + len(rec.Value) + len(r.Topic) + 64)
}

// decode is b, a key or value in the wire format, as JSON, and the id of
// its schema; false: it does not decode with a schema of the instance's
// format (counted in meshka_http_values_undecodable_total).
func (a *consumerActor) decode(ctx context.Context, b []byte) (json.RawMessage, int, bool) {
	src := a.env.mesh.Schemas()
	if src != nil && len(b) >= wire.HeaderSize && b[0] == wire.Magic {
		id := int(binary.BigEndian.Uint32(b[1:5]))
		if sc, _, err := src.ByID(ctx, id); err == nil && sc.Type() == v2SchemaTypes[a.st.Format] {
			if j, err := convert.ToJSON(ctx, src, b); err == nil {
				return j, id, true
			}
		}
	}
	if a.env.undecodable != nil {
		a.env.undecodable.Inc()
	}
	return nil, 0, false
}

func (a *consumerActor) commit(ctx context.Context, offsets []v2TopicPartitionOffset) ([]byte, error) {
	if a.share == nil {
		return answer(http.StatusConflict, errorf(codeIllegalState, "Illegal state: Consumer is not subscribed to any topics or assigned any partitions"))
	}
	var done []mesh.Record
	if len(offsets) == 0 {
		for tp, off := range a.returned {
			done = append(done, mesh.Record{Topic: tp.Topic, Partition: tp.Partition, Offset: off})
		}
	}
	for _, o := range offsets {
		// The REST Proxy commits the offset after the one named.
		done = append(done, mesh.Record{Topic: o.Topic, Partition: o.Partition, Offset: o.Offset})
	}
	a.share.Ack(done...)
	if err := a.share.Commit(ctx); err != nil {
		return answer(http.StatusInternalServerError, errorf(codeKafkaError, "Kafka error: %v", err))
	}
	return answer(http.StatusOK, []v2TopicPartitionOffset{})
}

func (a *consumerActor) committed(ctx context.Context, parts []v2TopicPartition) ([]byte, error) {
	if len(parts) == 0 {
		return answer(http.StatusNotFound, errorf(codePartitionNotFound, "Partition not found."))
	}
	want := map[string][]int32{}
	for _, p := range parts {
		want[p.Topic] = append(want[p.Topic], p.Partition)
	}
	got, err := a.env.mesh.GroupOffsets(ctx, a.st.Group, want)
	if err != nil {
		return answer(http.StatusInternalServerError, errorf(codeKafkaError, "Kafka error: %v", err))
	}
	out := []v2TopicPartitionOffset{}
	empty := ""
	for _, p := range parts {
		if off := got[p.Topic][p.Partition]; off >= 0 {
			out = append(out, v2TopicPartitionOffset{Topic: p.Topic, Partition: p.Partition, Offset: off, Metadata: &empty})
		}
	}
	return answer(http.StatusOK, map[string]any{"offsets": out})
}

// answer encodes the actor's answer of status with body (nil: none).
func answer(status int, body any) ([]byte, error) {
	a := consumerAnswer{Status: status}
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		a.Body = b
	}
	return json.Marshal(a)
}
