package httpmap

import (
	"context"

	"github.com/meshka/meshka/schema"
	"github.com/meshka/meshka/schema/validate"
)

// SchemaSource is the built-in registry as produce validation reads it:
// this node's replica of the registry's topic, waited for (at most 10 s)
// until it has read the topic as far as it reached when the replica
// started, so a node just started does not refuse records whose schema
// it has not read yet; past that wait, records are not judged (a
// *validate.UnavailableError). Nil when http.schema_registry is off.
func (s *Server) SchemaSource() validate.Source {
	if s.replica == nil {
		return nil
	}
	return &replicaSource{r: s.replica, src: validate.NewStateSource(s.replica.state, &s.replica.mu)}
}

type replicaSource struct {
	r   *schemaReplica
	src *validate.StateSource
}

// loaded waits for the replica; a replica still loading is a registry
// that cannot be read now, which is not a record's fault.
func (rs *replicaSource) loaded(ctx context.Context) error {
	if err := rs.r.whenLoaded(ctx); err != nil {
		return &validate.UnavailableError{Err: err}
	}
	return nil
}

func (rs *replicaSource) ByID(ctx context.Context, id int) (schema.Schema, schema.Type, error) {
	if err := rs.loaded(ctx); err != nil {
		return nil, "", err
	}
	return rs.src.ByID(ctx, id)
}

func (rs *replicaSource) VersionID(ctx context.Context, subject string, version int) (int, error) {
	if err := rs.loaded(ctx); err != nil {
		return 0, err
	}
	return rs.src.VersionID(ctx, subject, version)
}

func (rs *replicaSource) SubjectHasID(ctx context.Context, subject string, id int) (bool, error) {
	if err := rs.loaded(ctx); err != nil {
		return false, err
	}
	return rs.src.SubjectHasID(ctx, subject, id)
}
