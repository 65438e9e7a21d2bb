package mqtt

// Routes with value_format json: a publish's payload, a JSON document, is
// written to the route's Kafka topic in the format of its value_schema (a
// subject's version in the node's registry, Confluent's wire format), and
// subscribers get the records of such a topic as JSON, each decoded by the
// schema id in it (docs/schemas.md "Conversion"). Retained messages are
// kept as they were published, so they are sent as they are.

import (
	"context"
	"errors"
	"fmt"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/mesh"
	"github.com/meshka/meshka/schema/convert"
	"github.com/meshka/meshka/schema/validate"
)

// encodeValue replaces rec's value, a JSON document, with its encoding in
// vs's schema. The error is a *mesh.InvalidRecordError when the document
// does not fit the schema (the publish is refused as invalid), another
// when the schema cannot be read now.
func (b *Broker) encodeValue(ctx context.Context, vs *config.HTTPValueSchema, rec *mesh.Record) error {
	src := b.m.Schemas()
	if src == nil {
		return errors.New("the node has no schema registry")
	}
	id, err := src.VersionID(ctx, vs.Subject, vs.Pinned())
	if err != nil {
		return unreadable(rec.Topic, fmt.Errorf("the route's value schema (subject %s): %w", vs.Subject, err))
	}
	sc, _, err := src.ByID(ctx, id)
	if err != nil {
		return unreadable(rec.Topic, fmt.Errorf("the route's value schema (subject %s, id %d): %w", vs.Subject, id, err))
	}
	v, err := convert.FromJSON(sc, id, nil, rec.Value)
	if err != nil {
		if ce, ok := errors.AsType[*convert.Error](err); ok {
			return &mesh.InvalidRecordError{Topic: rec.Topic, Err: fmt.Errorf("the payload is not a JSON document of the route's value schema: %w", ce)}
		}
		return err
	}
	rec.Value = v
	return nil
}

// decodeValue replaces rec's value with its JSON, for a subscriber of a
// converting route's topic; false: it does not decode (not in the wire
// format, an unknown id, not a value of its schema), and is skipped and
// counted. A tombstone stays one.
func (b *Broker) decodeValue(ctx context.Context, rec *mesh.Record) bool {
	if rec.Value == nil {
		return true
	}
	src := b.m.Schemas()
	if src == nil {
		b.metrics.undecodable.Inc()
		return false
	}
	j, err := convert.ToJSON(ctx, src, rec.Value)
	if err != nil {
		b.metrics.undecodable.Inc()
		return false
	}
	rec.Value = j
	return true
}

// unreadable is err, the route's schema not found: a *mesh.UncheckedError
// when the registry could not be read now (the publish may be sent
// again), err itself otherwise.
func unreadable(topic string, err error) error {
	if _, ok := errors.AsType[*validate.UnavailableError](err); ok {
		return &mesh.UncheckedError{Topic: topic, Err: err}
	}
	return err
}
