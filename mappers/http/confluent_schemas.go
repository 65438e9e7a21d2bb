package httpmap

// The Confluent API's schema formats (avro, jsonschema and protobuf in
// v2, AVRO, JSONSCHEMA and PROTOBUF in v3): a key or value given as JSON
// is encoded with a schema of the node's registry (mesh.Mesh.Schemas) in
// Confluent's wire format, and v2 consumers decode records back to JSON.
// A schema is named by id, by a subject's version (the latest when none
// is named), or given as text: text is looked up under its subject in the
// built-in registry and registered there when it is not yet, through the
// registry's one writer, as POST /subjects/{s}/versions registers.

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/meshka/meshka/acl"
	"github.com/meshka/meshka/schema"
	"github.com/meshka/meshka/schema/convert"
	"github.com/meshka/meshka/schema/format"
	"github.com/meshka/meshka/schema/registry"
	"github.com/meshka/meshka/schema/validate"
)

// The REST Proxy's codes for schemas and conversions.
const (
	codeKeySchemaMissing   = 42201 // v2: keys given without a key schema
	codeValueSchemaMissing = 42202 // v2: values given without a value schema
	codeConversion         = 42203 // v2: a key or value does not fit its schema
	codeInvalidSchema      = 42205 // v2: a schema that does not compile, or of another type
	codeSchemaNotFound     = 40403 // v2: an id, subject or version the registry does not have
	codeSchemaRegistration = 40801 // a schema given as text that cannot be looked up or registered
)

// schemaSpec is how a request names the schema of its keys or values.
type schemaSpec struct {
	format  schema.Type // the type asked for; "" (v3 without a type): the schema's
	id      int         // > 0: this id
	version int         // > 0: this version of the subject
	text    string      // != "": this schema, under the subject
	subject string      // the subject; "": the topic's (<topic>-key, <topic>-value)
	// mayRegister: the request's principal may register a text not
	// registered yet (ALTER on the cluster, as the registry's API asks).
	mayRegister bool
}

// resolvedSchema is a schema found: compiled, with its id and, when
// known, its subject and version there.
type resolvedSchema struct {
	sc      schema.Schema
	id      int
	subject string
	version int // 0: not known
}

// schemaFailure says why a schema could not be found; v2 and v3 answer
// it with their own codes.
type schemaFailure struct {
	kind int // one of the fail constants
	msg  string
}

const (
	failInvalid      = iota // the text does not compile, or the schema is of another type
	failNotFound            // the registry has no such id, subject or version
	failRegistration        // the text can be neither found nor registered
	failUnavailable         // the registry did not answer
	failNoRegistry          // the node has no schema registry
	failForbidden           // the principal may not register the text
)

func (f *schemaFailure) Error() string { return f.msg }

func schemaFail(kind int, format string, args ...any) *schemaFailure {
	return &schemaFailure{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// v2Error is f as v2 answers it.
func (f *schemaFailure) v2Error() *confluentError {
	switch f.kind {
	case failInvalid:
		return errorf(codeInvalidSchema, "Invalid schema: %s", f.msg)
	case failNotFound:
		return errorf(codeSchemaNotFound, "%s", f.msg)
	case failRegistration:
		return errorf(codeSchemaRegistration, "Error when registering schema: %s", f.msg)
	case failNoRegistry:
		return errorf(http.StatusUnsupportedMediaType, "HTTP 415 Unsupported Media Type: %s", f.msg)
	case failForbidden:
		return errorf(codeAuthorization, "%s", f.msg)
	}
	return errorf(codeKafkaRetriable, "%s", f.msg)
}

// v3Error is f as v3 answers it.
func (f *schemaFailure) v3Error() *confluentError {
	switch f.kind {
	case failInvalid, failNoRegistry:
		return errorf(http.StatusBadRequest, "Bad Request: %s", f.msg)
	case failNotFound:
		return errorf(http.StatusNotFound, "Not Found: %s", f.msg)
	case failRegistration:
		return errorf(codeSchemaRegistration, "Error when registering schema: %s", f.msg)
	case failForbidden:
		return errorf(codeAuthorization, "%s", f.msg)
	}
	return errorf(codeKafkaRetriable, "%s", f.msg)
}

// mayRegister says whether r's principal may register schemas: ALTER on
// the cluster, what POST /subjects/{subject}/versions asks.
func (s *Server) mayRegister(r *http.Request) bool {
	return s.allowed(r, acl.Alter, acl.Cluster, acl.ClusterName)
}

// subjectOf is the subject of spec's keys or values on topic: the one
// named, else TopicNameStrategy's.
func subjectOf(topic string, isKey bool, spec schemaSpec) string {
	if spec.subject != "" {
		return spec.subject
	}
	if isKey {
		return topic + "-key"
	}
	return topic + "-value"
}

// typeName is a schema type as the v3 API names it.
func typeName(t schema.Type) string {
	if t == schema.JSON {
		return "JSONSCHEMA"
	}
	return string(t)
}

// resolveSchema finds the schema spec names for topic's keys (isKey) or
// values.
func (s *Server) resolveSchema(ctx context.Context, topic string, isKey bool, spec schemaSpec) (resolvedSchema, *schemaFailure) {
	src := s.env.Mesh.Schemas()
	if src == nil {
		return resolvedSchema{}, schemaFail(failNoRegistry,
			"the schema formats need a schema registry, which this node does not have (http.schema_registry.enabled)")
	}
	subject := subjectOf(topic, isKey, spec)
	var out resolvedSchema
	switch {
	case spec.id > 0:
		out.id = spec.id
	case spec.text != "":
		return s.registerText(ctx, src, subject, spec)
	default:
		version := validate.Latest
		if spec.version > 0 {
			version = spec.version
		}
		id, err := src.VersionID(ctx, subject, version)
		if err != nil {
			what := "the latest version"
			if spec.version > 0 {
				what = fmt.Sprintf("version %d", spec.version)
			}
			return resolvedSchema{}, lookupFailure(err, "%s of subject %s", what, subject)
		}
		out.id, out.subject, out.version = id, subject, spec.version
	}
	sc, _, err := src.ByID(ctx, out.id)
	if err != nil {
		return resolvedSchema{}, lookupFailure(err, "schema id %d", out.id)
	}
	if spec.format != "" && sc.Type() != spec.format {
		return resolvedSchema{}, schemaFail(failInvalid, "schema id %d is a %s schema, not %s", out.id, typeName(sc.Type()), typeName(spec.format))
	}
	out.sc = sc
	if out.version == 0 {
		out.subject, out.version = s.builtinVersion(ctx, subject, out.id)
	}
	return out, nil
}

// lookupFailure is a registry's error for what was looked up: not found,
// or not answered.
func lookupFailure(err error, format string, args ...any) *schemaFailure {
	what := fmt.Sprintf(format, args...)
	var re *registry.Error
	if errors.As(err, &re) && re.Status() == http.StatusNotFound {
		return schemaFail(failNotFound, "%s: %s (error code %d)", what, re.Message, re.Code)
	}
	return schemaFail(failUnavailable, "%s: the schema registry did not answer: %v", what, err)
}

// builtinVersion is the version of subject holding id in the built-in
// registry, when that is the node's registry and has it; else "" and 0.
func (s *Server) builtinVersion(ctx context.Context, subject string, id int) (string, int) {
	if _, ok := s.env.Mesh.Schemas().(*replicaSource); !ok || s.registry == nil {
		return "", 0
	}
	svs, err := readReplica(ctx, s.registry.replica, func(st *registry.State) ([]registry.SubjectVersion, error) {
		return st.IDVersions(id, false)
	})
	if err != nil {
		return "", 0
	}
	for _, sv := range svs {
		if sv.Subject == subject {
			return sv.Subject, sv.Version
		}
	}
	return "", 0
}

// registerText compiles spec's text, finds it under subject in the
// built-in registry, and registers it there when it is not yet. A node
// whose registry is another one cannot register: failRegistration.
func (s *Server) registerText(ctx context.Context, src validate.Source, subject string, spec schemaSpec) (resolvedSchema, *schemaFailure) {
	t := spec.format
	if t == "" {
		t = schema.Avro
	}
	sc, err := format.Parse(t, spec.text, nil)
	if err != nil {
		return resolvedSchema{}, schemaFail(failInvalid, "not a %s schema: %v", typeName(t), err)
	}
	if _, builtin := src.(*replicaSource); !builtin || s.registry == nil {
		return resolvedSchema{}, schemaFail(failRegistration,
			"this node reads schemas from a registry it cannot register in (only the built-in one takes schemas given as text); register the schema there and give its id")
	}
	text := registry.Schema{Type: t, Schema: spec.text}
	v, err := readReplica(ctx, s.registry.replica, func(st *registry.State) (registry.Version, error) {
		return st.Lookup(subject, text, false)
	})
	if err == nil {
		return resolvedSchema{sc: sc, id: v.ID, subject: subject, version: v.Version}, nil
	}
	if !spec.mayRegister {
		return resolvedSchema{}, schemaFail(failForbidden,
			"the schema is not registered under subject %s, and registering it needs ALTER on the cluster, which the principal does not have", subject)
	}
	res, err := s.registry.write(ctx, writerCall{Op: "register", Subject: subject, Schema: &text})
	if err != nil {
		msg := err.Error()
		var re *registry.Error
		if errors.As(err, &re) {
			msg = fmt.Sprintf("%s (error code %d)", re.Message, re.Code)
		}
		return resolvedSchema{}, schemaFail(failRegistration, "format = %s, subject = %s: %s", typeName(t), subject, msg)
	}
	return resolvedSchema{sc: sc, id: res.ID, subject: subject, version: res.Version}, nil
}

// encode is doc, a JSON document, in the wire format of rs; the error
// says why doc is not a value of the schema.
func (rs resolvedSchema) encode(doc []byte) ([]byte, error) {
	out, err := convert.FromJSON(rs.sc, rs.id, nil, doc)
	var ce *convert.Error
	if err != nil && !errors.As(err, &ce) {
		return nil, &convert.Error{SchemaID: rs.id, Reason: err.Error()}
	}
	return out, err
}
