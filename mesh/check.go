package mesh

import (
	"context"
	"errors"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/meshka/meshka/schema/validate"
)

// RecordChecker says why a record produced to topic is refused, nil when
// it is not: the node's topics rules (docs/schemas.md).
// *validate.Validator is one.
type RecordChecker interface {
	Check(topic string, key, value []byte) error
}

// InvalidRecordError is a record the node's checks refused. It matches
// Err and kerr.InvalidRecord with errors.Is and errors.As, so what answers
// Kafka's INVALID_RECORD answers it too.
type InvalidRecordError struct {
	Topic string
	Err   error // why, e.g. "value (schema id 7): avro payload: …"
}

func (e *InvalidRecordError) Error() string {
	return "topic " + e.Topic + ": invalid record: " + e.Err.Error()
}

func (e *InvalidRecordError) Unwrap() []error { return []error{e.Err, kerr.InvalidRecord} }

// UncheckedError is a record the node's checks could not judge now: its
// schemas' registry could not be read (Err is a *validate.UnavailableError).
// The record is not at fault; it was not written, and may be sent again.
// It matches Err and kerr.NotEnoughReplicas, the retriable code the Kafka
// listener answers such a batch with (docs/schemas.md), so what answers
// a retriable Kafka error answers it too.
type UncheckedError struct {
	Topic string
	Err   error
}

func (e *UncheckedError) Error() string {
	return "topic " + e.Topic + ": the record could not be checked, retry later: " + e.Err.Error()
}

func (e *UncheckedError) Unwrap() []error { return []error{e.Err, kerr.NotEnoughReplicas} }

// checkerBox holds a RecordChecker in an atomic.Pointer.
type checkerBox struct{ c RecordChecker }

// SetChecker gives the Mesh the node's checks, when they could not be in
// Config (the node's checks read the HTTP mapper's registry, which is
// built on the Mesh). A node calls it before it starts its bindings; nil
// takes the checks away.
func (m *Mesh) SetChecker(c RecordChecker) {
	if c == nil {
		m.checker.Store(nil)
		return
	}
	m.checker.Store(&checkerBox{c})
}

// Check says why the node's topics rules refuse rec (an
// *InvalidRecordError, or an *UncheckedError when its schemas cannot be
// read now), nil when it passes, when no rule checks its topic,
// or when the node has no rules. Mappers call it before they produce a
// record they took from a client; Producer does not check. It may wait,
// just after the node started, until the node has read its schemas
// (at most 10 s).
func (m *Mesh) Check(rec Record) error {
	b := m.checker.Load()
	if b == nil {
		return nil
	}
	if err := b.c.Check(rec.Topic, rec.Key, rec.Value); err != nil {
		if validate.Unavailable(err) {
			return &UncheckedError{Topic: rec.Topic, Err: err}
		}
		return &InvalidRecordError{Topic: rec.Topic, Err: err}
	}
	return nil
}

// Schemas finds the schemas records name by id in the Confluent wire
// format, and a subject's versions: the node's schema registry, built in
// or external (docs/schemas.md). *validate.Validator's sources are ones.
type Schemas = validate.Source

// schemasBox holds a Schemas in an atomic.Pointer.
type schemasBox struct{ s Schemas }

// SetSchemas gives the Mesh the node's schema registry; a node calls it
// before it starts its bindings; nil takes it away.
func (m *Mesh) SetSchemas(s Schemas) {
	if s == nil {
		m.schemas.Store(nil)
		return
	}
	m.schemas.Store(&schemasBox{s})
}

// Schemas is the node's schema registry, nil when it has none. Bindings
// converting values (a topic's Avro or Protobuf presented as JSON) read
// schemas through it; lookups are served from memory once a schema was
// read.
func (m *Mesh) Schemas() Schemas {
	if b := m.schemas.Load(); b != nil {
		return b.s
	}
	return nil
}

// FetchChecker is a RecordChecker that also says which records read from
// a topic subscriptions skip (the topics rules' validate_fetch).
// *validate.Validator is one.
type FetchChecker interface {
	ChecksFetch(topic string) bool
	CheckFetched(topic string, key, value []byte) error
}

// fetchCheck is what a subscription of topic checks each record with, nil
// when the node's rules check nothing read from it.
func (m *Mesh) fetchCheck(topic string) func(key, value []byte) bool {
	b := m.checker.Load()
	if b == nil {
		return nil
	}
	fc, ok := b.c.(FetchChecker)
	if !ok || !fc.ChecksFetch(topic) {
		return nil
	}
	return func(key, value []byte) bool {
		if err := fc.CheckFetched(topic, key, value); err != nil {
			if _, ok := errors.AsType[*validate.UnavailableError](err); ok {
				// Not judged: the record is in the log already, and a
				// registry outage does not hide it from subscribers.
				return true
			}
			m.skipped.Add(1)
			if m.log.Enabled(context.Background(), slog.LevelDebug) {
				m.log.Debug("record skipped for subscribers: the topics rules refuse it", "topic", topic, "err", err)
			}
			return false
		}
		return true
	}
}

// SkippedInvalid counts the records subscriptions skipped because the
// topics rules' validate_fetch refused them, each counted once however
// many subscribers it was skipped for.
func (m *Mesh) SkippedInvalid() int64 { return m.skipped.Load() }
