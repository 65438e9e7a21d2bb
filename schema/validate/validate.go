// Package validate checks the records produced to a topic against the
// formats its rule names: a schema of the registry (Avro, Protobuf, JSON
// Schema, carried in Confluent's wire format) or one of Kafka's plain
// serializations (UTF-8 strings, big-endian int32 and int64, bytes).
//
// A Validator is built once from the rules and a Source of schemas, and is
// safe for concurrent use. A topic no rule matches costs one map lookup and
// a scan of the prefixes; its records are not decoded.
package validate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/meshka/meshka/records"
	"github.com/meshka/meshka/schema"
	"github.com/meshka/meshka/schema/wire"
)

// Format is how a record's key or value is serialized.
type Format string

// The formats a rule may name. Avro, Protobuf and JSON carry Confluent's
// wire format: a magic byte 0, the big-endian schema id, for Protobuf the
// message-index path, then the payload.
const (
	Avro     Format = "avro"
	Protobuf Format = "protobuf"
	JSON     Format = "json"
	String   Format = "string"
	Int32    Format = "int32"
	Int64    Format = "int64"
	Bytes    Format = "bytes"
)

// Formats are the formats a rule may name, in the order the docs list them.
func Formats() []Format { return []Format{Avro, Protobuf, JSON, String, Int32, Int64, Bytes} }

// SchemaType is the registry type a format's ids must stand for; empty
// for the formats without a schema.
func (f Format) SchemaType() schema.Type {
	switch f {
	case Avro:
		return schema.Avro
	case Protobuf:
		return schema.Protobuf
	case JSON:
		return schema.JSON
	}
	return ""
}

// The versions a Spec may pin besides a version number.
const (
	// AnyVersion accepts an id that any live version of the subject carries.
	AnyVersion = 0
	// Latest accepts only the id of the subject's latest live version.
	Latest = -1
)

// Spec is what a key or a value must be.
type Spec struct {
	Format Format
	// Subject, when set (schema formats only), is the subject the
	// record's schema id must belong to; Version pins which of its
	// versions (AnyVersion, Latest or a number). Without a subject, any
	// id the registry knows whose type is the format's is accepted.
	Subject string
	Version int
}

// Rule is what the records of one topic, or of the topics under a prefix,
// must be. Exactly one of Topic and Prefix is set.
type Rule struct {
	Topic  string
	Prefix string
	// Key and Value are nil when that part is not checked.
	Key, Value *Spec
	// ValidateProduce turns the checks on for records produced to the
	// topic. A rule with it off still matches, so a topic rule can exempt
	// one topic from a prefix rule.
	ValidateProduce bool
	// ValidateFetch has subscriptions of the records API (the MQTT and
	// HTTP mappers' subscribers) skip records read from the topic that
	// the checks refuse; Kafka fetches are served as they are.
	ValidateFetch bool
}

// Source gives the schemas records name by id. Its methods are called for
// every checked record, so they should be cheap: cache what never changes.
type Source interface {
	// ByID is the compiled schema an id stands for, and its type.
	ByID(ctx context.Context, id int) (schema.Schema, schema.Type, error)
	// VersionID is the id a subject's version carries (Latest: its latest
	// live version).
	VersionID(ctx context.Context, subject string, version int) (int, error)
	// SubjectHasID says whether a live version of subject carries id.
	SubjectHasID(ctx context.Context, subject string, id int) (bool, error)
}

// Error says why a record's key or value was refused.
type Error struct {
	Part     string // "key" or "value"
	SchemaID int    // the id the record named; 0 when none was read
	Reason   string
}

func (e *Error) Error() string {
	if e.SchemaID != 0 {
		return fmt.Sprintf("%s (schema id %d): %s", e.Part, e.SchemaID, e.Reason)
	}
	return e.Part + ": " + e.Reason
}

// UnavailableError is a Source's answer meaning it could not answer now:
// an external registry that cannot be reached, timed out or failed (5xx).
// The record is not at fault and is not judged: Check returns the error
// as it is, and CheckBatch stops at it, so a producer is told to retry
// rather than that its data is bad. A Source returns it (or an error
// wrapping it) for such failures only; "no such id or subject" is an
// ordinary error, and the record is refused.
type UnavailableError struct {
	Err error
}

func (e *UnavailableError) Error() string {
	return "the schema registry cannot be read now: " + e.Err.Error()
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// Unavailable says whether err (from Check, or a RecordError's Err) means
// the record could not be checked now rather than that it is invalid.
func Unavailable(err error) bool {
	_, ok := errors.AsType[*UnavailableError](err)
	return ok
}

// RecordError names a refused record of a batch.
type RecordError struct {
	// Index is the record's index among the records of the partition's
	// produce data, as Kafka's produce response counts batch_index; -1
	// when the batch itself could not be read.
	Index int
	Err   error
}

// Validator checks records against the rules. It is immutable.
type Validator struct {
	src      Source
	topics   map[string]*Rule
	prefixes []*Rule // longest first
}

// ErrNoSource is returned by New when a rule names a schema format and
// there is no Source to find schemas in.
var ErrNoSource = errors.New("validate: a rule names a schema format and there is no schema source")

// New builds a Validator. The rules must be valid (config checks them);
// New reports what it cannot use. A later rule for the same topic or
// prefix replaces an earlier one.
func New(rules []Rule, src Source) (*Validator, error) {
	v := &Validator{src: src, topics: map[string]*Rule{}}
	byPrefix := map[string]*Rule{}
	for i := range rules {
		r := rules[i]
		for _, sp := range []*Spec{r.Key, r.Value} {
			if sp == nil {
				continue
			}
			if !slices.Contains(Formats(), sp.Format) {
				return nil, fmt.Errorf("validate: unknown format %q", sp.Format)
			}
			if sp.Format.SchemaType() != "" && src == nil {
				return nil, ErrNoSource
			}
		}
		switch {
		case r.Topic != "" && r.Prefix == "":
			v.topics[r.Topic] = &r
		case r.Prefix != "" && r.Topic == "":
			byPrefix[r.Prefix] = &r
		default:
			return nil, errors.New("validate: a rule needs exactly one of a topic and a prefix")
		}
	}
	for _, r := range byPrefix {
		v.prefixes = append(v.prefixes, r)
	}
	slices.SortFunc(v.prefixes, func(a, b *Rule) int {
		if d := len(b.Prefix) - len(a.Prefix); d != 0 {
			return d
		}
		return strings.Compare(a.Prefix, b.Prefix)
	})
	return v, nil
}

// Rule is the rule that applies to topic: its own, else the one of the
// longest prefix it starts with; nil when none does.
func (v *Validator) Rule(topic string) *Rule {
	if v == nil {
		return nil
	}
	if r := v.topics[topic]; r != nil {
		return r
	}
	for _, r := range v.prefixes {
		if strings.HasPrefix(topic, r.Prefix) {
			return r
		}
	}
	return nil
}

// Validates says whether records produced to topic are checked.
func (v *Validator) Validates(topic string) bool {
	r := v.Rule(topic)
	return r != nil && r.ValidateProduce && (r.Key != nil || r.Value != nil)
}

// Check says why a record produced to topic is refused, nil when it is
// not. A nil key or value (Kafka's null: no key, a tombstone) is accepted
// whatever the format.
func (v *Validator) Check(topic string, key, value []byte) error {
	r := v.Rule(topic)
	if r == nil || !r.ValidateProduce {
		return nil
	}
	return v.check(context.Background(), r, key, value, nil)
}

// ChecksFetch says whether records read from topic are checked (the
// rule's ValidateFetch).
func (v *Validator) ChecksFetch(topic string) bool {
	r := v.Rule(topic)
	return r != nil && r.ValidateFetch && (r.Key != nil || r.Value != nil)
}

// CheckFetched says why a record read from topic is to be skipped, nil
// when it is not: Check's checks, under the rule's ValidateFetch.
func (v *Validator) CheckFetched(topic string, key, value []byte) error {
	r := v.Rule(topic)
	if r == nil || !r.ValidateFetch {
		return nil
	}
	return v.check(context.Background(), r, key, value, nil)
}

// seen remembers, for one batch, the last subject lookup of each part: a
// batch's records mostly carry one schema id, and a subject's versions
// do not change within a request.
type seen struct {
	key, value subjectAnswer
}

type subjectAnswer struct {
	set bool
	id  int   // the record's schema id asked about
	err error // what the subject said of it: nil, it belongs
}

func (v *Validator) check(ctx context.Context, r *Rule, key, value []byte, memo *seen) error {
	var km, vm *subjectAnswer
	if memo != nil {
		km, vm = &memo.key, &memo.value
	}
	if err := v.checkPart(ctx, "key", r.Key, key, km); err != nil {
		return err
	}
	return v.checkPart(ctx, "value", r.Value, value, vm)
}

// CheckBatch checks every record of a partition's produce data (one or
// more record batches, as a Produce request carries them) and returns the
// refused ones in order; nil when all pass or no rule checks the topic.
// Data that does not split or decode, or batches in the old message
// formats (magic 0 and 1), are refused whole with Index -1. When the
// source cannot answer (an *UnavailableError), checking stops there: the
// answer is the records refused before it, if any (the batch is refused
// for them whatever the rest holds), else that one error, at the record
// it was met at.
func (v *Validator) CheckBatch(topic string, batch []byte) []RecordError {
	r := v.Rule(topic)
	if r == nil || !r.ValidateProduce || (r.Key == nil && r.Value == nil) {
		return nil
	}
	ctx := context.Background()
	var splitBuf [1]records.Batch
	batches, rest, err := records.Split(batch, splitBuf[:0])
	switch {
	case err != nil:
		return []RecordError{{Index: -1, Err: fmt.Errorf("the record batch does not read: %w", err)}}
	case len(rest) > 0:
		return []RecordError{{Index: -1, Err: fmt.Errorf("the record batch is truncated: %d bytes left over", len(rest))}}
	}
	var errs []RecordError
	var recs []records.Record
	var memo seen
	// Compressed records are read from a pooled buffer, only while this
	// call checks them.
	scratch := scratchPool.Get().(*[]byte)
	defer putScratch(scratch)
	index := 0
	for _, b := range batches {
		if b.Magic < 2 {
			return []RecordError{{Index: -1, Err: fmt.Errorf("message format v%d cannot be validated; the topic needs record batches (magic 2)", b.Magic)}}
		}
		if recs, err = records.DecodeProduced(b.Data, recs[:0], scratch); err != nil {
			return []RecordError{{Index: -1, Err: err}}
		}
		for i := range recs {
			if err := v.check(ctx, r, recs[i].Key, recs[i].Value, &memo); err != nil {
				if Unavailable(err) {
					if len(errs) > 0 {
						return errs // refused for the records known bad
					}
					return []RecordError{{Index: index, Err: err}}
				}
				errs = append(errs, RecordError{Index: index, Err: err})
			}
			index++
		}
	}
	return errs
}

// scratchPool holds the buffers CheckBatch decompresses batches into.
var scratchPool = sync.Pool{New: func() any { return new([]byte) }}

// maxScratch bounds a pooled buffer: a rare huge batch's is let go.
const maxScratch = 4 << 20

func putScratch(p *[]byte) {
	if cap(*p) > maxScratch {
		*p = nil
	}
	scratchPool.Put(p)
}

func (v *Validator) checkPart(ctx context.Context, part string, sp *Spec, b []byte, memo *subjectAnswer) error {
	if sp == nil || b == nil {
		return nil
	}
	fail := func(id int, format string, args ...any) error {
		return &Error{Part: part, SchemaID: id, Reason: fmt.Sprintf(format, args...)}
	}
	switch sp.Format {
	case Bytes:
		return nil
	case String:
		if !utf8.Valid(b) {
			return fail(0, "not valid UTF-8 (at byte %d)", invalidUTF8At(b))
		}
		return nil
	case Int32:
		if len(b) != 4 {
			return fail(0, "an int32 is 4 bytes, got %d", len(b))
		}
		return nil
	case Int64:
		if len(b) != 8 {
			return fail(0, "an int64 is 8 bytes, got %d", len(b))
		}
		return nil
	}
	want := sp.Format.SchemaType()
	uid, indexes, payload, err := wire.Decode(b, sp.Format == Protobuf)
	if err != nil {
		return fail(0, "not in the schema registry's wire format: %s", strings.TrimPrefix(err.Error(), "schema wire: "))
	}
	id := int(uid)
	if uid > 1<<31-1 {
		return fail(id, "no such schema id")
	}
	s, typ, err := v.src.ByID(ctx, id)
	if err != nil {
		if Unavailable(err) {
			return err
		}
		return fail(id, "%v", err)
	}
	if typ != want {
		return fail(id, "the schema is %s, the topic wants %s", typ, want)
	}
	if sp.Subject != "" {
		var err error
		if memo != nil && memo.set && memo.id == id {
			err = memo.err // the subject was asked about this id in this batch
		} else {
			err = v.subjectHas(ctx, sp, id, fail)
			if memo != nil {
				*memo = subjectAnswer{set: true, id: id, err: err}
			}
		}
		if err != nil {
			return err
		}
	}
	if err := s.Validate(payload, indexes); err != nil {
		return fail(id, "%v", err)
	}
	return nil
}

// subjectHas checks the rule's subject pin: the record's id must be one
// of the subject's live versions, or the version the rule names.
func (v *Validator) subjectHas(ctx context.Context, sp *Spec, id int, fail func(int, string, ...any) error) error {
	switch {
	case sp.Subject == "":
	case sp.Version == AnyVersion:
		ok, err := v.src.SubjectHasID(ctx, sp.Subject, id)
		if Unavailable(err) {
			return err
		}
		if err != nil {
			return fail(id, "subject %s: %v", sp.Subject, err)
		}
		if !ok {
			return fail(id, "not a schema of subject %s", sp.Subject)
		}
	default:
		want, err := v.src.VersionID(ctx, sp.Subject, sp.Version)
		if Unavailable(err) {
			return err
		}
		if err != nil {
			return fail(id, "subject %s: %v", sp.Subject, err)
		}
		if want != id {
			return fail(id, "subject %s version %s is schema id %d", sp.Subject, versionName(sp.Version), want)
		}
	}
	return nil
}

func versionName(v int) string {
	if v == Latest {
		return "latest"
	}
	return fmt.Sprint(v)
}

// invalidUTF8At is the offset of the first byte that is not valid UTF-8.
func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}
