package httpmap

// Routes with value_format json: produce and websocket encode incoming
// JSON with the schema of the route's value_schema (a subject's version
// in the built-in registry); fetch, stream and websocket decode each
// record's value by the schema id in its header. The schemas come from
// the node's registry (mesh.Mesh.Schemas: this mapper's replica of the
// built-in one, unless the node has another, such as an external
// registry).

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/schema/convert"
)

// checkValueFormats refuses routes converting values when the node has
// no registry to read their schemas from: neither the built-in one nor
// another the node gave the Mesh (an external registry, or a program's).
func checkValueFormats(cfg config.HTTP, external bool) error {
	for i, r := range cfg.Routes {
		if r.ValueFormat != "" && !cfg.SchemaRegistry.Enabled && !external {
			return fmt.Errorf("http.routes[%d] (%s %s): value_format %s needs a schema registry (http.schema_registry.enabled or schema.registry.url)",
				i, r.Method, r.Path, r.ValueFormat)
		}
	}
	return nil
}

// encodeValue is doc, a JSON document, in the wire format of the route's
// value schema. The error is a *convert.Error when doc does not fit the
// schema, another when the schema cannot be found.
func (s *Server) encodeValue(ctx context.Context, rt *route, doc []byte) ([]byte, error) {
	vs := rt.cfg.ValueSchema
	src := s.env.Mesh.Schemas()
	if src == nil || vs == nil {
		return nil, errors.New("the route has no value schema")
	}
	id, err := src.VersionID(ctx, vs.Subject, vs.Pinned())
	if err != nil {
		return nil, fmt.Errorf("the route's value schema (subject %s, version %s): %w", vs.Subject, orLatest(vs.Version), err)
	}
	sc, _, err := src.ByID(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("the route's value schema (subject %s, id %d): %w", vs.Subject, id, err)
	}
	return convert.FromJSON(sc, id, nil, doc)
}

func orLatest(v string) string {
	if v == "" {
		return "latest"
	}
	return v
}

// encodeBody answers a produce's body converted; false: answered, 400
// with the reason when the body does not fit the schema, 503 when the
// schema cannot be found.
func (s *Server) encodeBody(w http.ResponseWriter, r *http.Request, rt *route, body []byte) ([]byte, bool) {
	v, err := s.encodeValue(r.Context(), rt, body)
	if err == nil {
		return v, true
	}
	var ce *convert.Error
	if errors.As(err, &ce) {
		problem(w, http.StatusBadRequest, "the body is not a value of subject %s: %v", rt.cfg.ValueSchema.Subject, err)
	} else if r.Context().Err() == nil {
		problem(w, http.StatusServiceUnavailable, "%v", err)
	}
	return nil, false
}

// decodeValue is a record's value as JSON; false: it does not decode (not
// in the wire format, an unknown id, not a value of its schema), and it is
// counted in meshka_http_values_undecodable_total and left out.
func (s *Server) decodeValue(ctx context.Context, v []byte) ([]byte, bool) {
	src := s.env.Mesh.Schemas()
	if src == nil {
		return nil, false
	}
	j, err := convert.ToJSON(ctx, src, v)
	if err != nil {
		s.m.undecodable.Inc()
		return nil, false
	}
	return j, true
}
