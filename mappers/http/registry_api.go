package httpmap

// Confluent's Schema Registry REST API (v1) over the node's replica and
// the cluster's writer (registry.go). Reads answer from this node's
// replica; a change is asked of the writer and answered once this node's
// replica shows it. ACLs, when enabled: a change needs ALTER on the
// cluster; any authenticated principal may read.

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/meshka/meshka/acl"
	"github.com/meshka/meshka/schema"
	"github.com/meshka/meshka/schema/registry"
)

// registryContentType is the API's media type.
const registryContentType = "application/vnd.schemaregistry.v1+json"

// Confluent's codes for a bad request body and for a missing route.
const (
	codeRegistryBadRequest = 40001 // no JSON, or not the expected shape
	codeRegistryForbidden  = 40301
	codeRegistryNotFound   = 404
	codeRegistryBadMedia   = 415
)

// registryMux is the API's routes.
func (s *Server) registryMux() *http.ServeMux {
	mux := http.NewServeMux()
	route := func(path string, methods map[string]http.HandlerFunc) {
		for m, h := range methods {
			mux.HandleFunc(m+" "+path, h)
		}
		var allow []string
		for m := range methods {
			allow = append(allow, m)
		}
		slices.Sort(allow)
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			registryFail(w, &registry.Error{Code: 405, Message: "HTTP 405 Method Not Allowed"})
		})
	}
	route("/schemas/types", map[string]http.HandlerFunc{http.MethodGet: s.srTypes})
	route("/schemas", map[string]http.HandlerFunc{http.MethodGet: s.srSchemas})
	route("/schemas/ids/{id}", map[string]http.HandlerFunc{http.MethodGet: s.srByID("")})
	route("/schemas/ids/{id}/schema", map[string]http.HandlerFunc{http.MethodGet: s.srByID("schema")})
	route("/schemas/ids/{id}/subjects", map[string]http.HandlerFunc{http.MethodGet: s.srByID("subjects")})
	route("/schemas/ids/{id}/versions", map[string]http.HandlerFunc{http.MethodGet: s.srByID("versions")})
	route("/subjects", map[string]http.HandlerFunc{http.MethodGet: s.srSubjects})
	route("/subjects/{subject}", map[string]http.HandlerFunc{http.MethodPost: s.srLookup, http.MethodDelete: s.srDeleteSubject})
	route("/subjects/{subject}/versions", map[string]http.HandlerFunc{http.MethodGet: s.srVersions, http.MethodPost: s.srRegister})
	route("/subjects/{subject}/versions/{version}", map[string]http.HandlerFunc{http.MethodGet: s.srVersion(""), http.MethodDelete: s.srDeleteVersion})
	route("/subjects/{subject}/versions/{version}/schema", map[string]http.HandlerFunc{http.MethodGet: s.srVersion("schema")})
	route("/subjects/{subject}/versions/{version}/referencedby", map[string]http.HandlerFunc{http.MethodGet: s.srVersion("referencedby")})
	for _, p := range []string{"/config", "/config/{subject}"} {
		route(p, map[string]http.HandlerFunc{http.MethodGet: s.srGetConfig, http.MethodPut: s.srSetConfig, http.MethodDelete: s.srDeleteConfig})
	}
	for _, p := range []string{"/mode", "/mode/{subject}"} {
		route(p, map[string]http.HandlerFunc{http.MethodGet: s.srGetMode, http.MethodPut: s.srSetMode, http.MethodDelete: s.srDeleteMode})
	}
	route("/compatibility/subjects/{subject}/versions", map[string]http.HandlerFunc{http.MethodPost: s.srCompatibility})
	route("/compatibility/subjects/{subject}/versions/{version}", map[string]http.HandlerFunc{http.MethodPost: s.srCompatibility})
	route("/contexts", map[string]http.HandlerFunc{http.MethodGet: func(w http.ResponseWriter, r *http.Request) {
		registryWrite(w, http.StatusOK, []string{"."})
	}})
	for _, p := range []string{"/subjects/", "/schemas/", "/config/", "/mode/", "/compatibility/"} {
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			registryFail(w, &registry.Error{Code: codeRegistryNotFound, Message: "HTTP 404 Not Found"})
		})
	}
	return mux
}

// registryWrite answers v as JSON in the API's media type.
func registryWrite(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", registryContentType)
	w.WriteHeader(status)
	e := json.NewEncoder(w)
	e.SetEscapeHTML(false)
	e.Encode(v)
}

// registryFail answers an error as {"error_code", "message"}.
func registryFail(w http.ResponseWriter, err error) {
	var re *registry.Error
	if !errors.As(err, &re) {
		re = &registry.Error{Code: 50001, Message: err.Error()}
	}
	msg := re.Message
	if len(re.Reasons) > 0 {
		msg += ", details: " + strings.Join(re.Reasons, "; ")
	}
	registryWrite(w, re.Status(), map[string]any{"error_code": re.Code, "message": msg})
}

// srSchemaJSON is a schema as the API gives and takes it.
type srSchemaJSON struct {
	Subject    string               `json:"subject,omitempty"`
	Version    int                  `json:"version,omitempty"`
	ID         int                  `json:"id,omitempty"`
	SchemaType string               `json:"schemaType,omitempty"` // absent for Avro
	References []registry.Reference `json:"references,omitempty"`
	Schema     string               `json:"schema"`
}

func schemaType(t schema.Type) string {
	if t == schema.Avro || t == "" {
		return ""
	}
	return string(t)
}

func versionJSON(v registry.Version) srSchemaJSON {
	return srSchemaJSON{Subject: v.Subject, Version: v.Version, ID: v.ID, SchemaType: schemaType(v.Type),
		References: v.References, Schema: v.Schema}
}

func boolParam(r *http.Request, name string) bool {
	b, _ := strconv.ParseBool(r.URL.Query().Get(name))
	return b
}

// mayChange says whether the request's principal may change the
// registry (ALTER on the cluster), answering 403 when it may not.
func (s *Server) mayChange(w http.ResponseWriter, r *http.Request) bool {
	if s.allowed(r, acl.Alter, acl.Cluster, acl.ClusterName) {
		return true
	}
	principal, _ := r.Context().Value(principalKey{}).(string)
	registryFail(w, &registry.Error{Code: codeRegistryForbidden, Message: principal + " may not alter the cluster, which changing the schema registry needs"})
	return false
}

// srBody decodes the request's JSON body into v; false: answered.
func (s *Server) srBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		switch {
		case err != nil:
		case mt == registryContentType, mt == "application/vnd.schemaregistry+json", mt == "application/json",
			mt == "application/octet-stream":
		default:
			registryFail(w, &registry.Error{Code: codeRegistryBadMedia, Message: "HTTP 415 Unsupported Media Type: " + mt})
			return false
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(s.cfg.MaxBodyBytes)))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			registryFail(w, &registry.Error{Code: 413, Message: "the body is larger than http.max_body_bytes"})
			return false
		}
		registryFail(w, &registry.Error{Code: codeRegistryBadRequest, Message: "reading the body: " + err.Error()})
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil || dec.More() {
		msg := "more than one JSON value in the body"
		if err != nil {
			msg = err.Error()
		}
		registryFail(w, &registry.Error{Code: codeRegistryBadRequest, Message: "Unrecognized JSON body: " + msg})
		return false
	}
	return true
}

// srSchemaBody is a register, lookup or compatibility body.
type srSchemaBody struct {
	Schema     string               `json:"schema"`
	SchemaType string               `json:"schemaType"`
	References []registry.Reference `json:"references"`
	ID         int                  `json:"id"`
	Version    int                  `json:"version"`
}

func (b srSchemaBody) schema() (registry.Schema, error) {
	t := schema.Avro
	if b.SchemaType != "" {
		var err error
		if t, err = schema.ParseType(b.SchemaType); err != nil {
			return registry.Schema{}, &registry.Error{Code: registry.CodeInvalidSchema, Message: "Invalid schema type " + b.SchemaType}
		}
	}
	if b.Schema == "" {
		return registry.Schema{}, &registry.Error{Code: registry.CodeInvalidSchema, Message: "Empty schema"}
	}
	return registry.Schema{Type: t, Schema: b.Schema, References: b.References}, nil
}

func (s *Server) srTypes(w http.ResponseWriter, r *http.Request) {
	registryWrite(w, http.StatusOK, []string{"JSON", "PROTOBUF", "AVRO"})
}

// GET /schemas: every version of every subject (?subjectPrefix,
// ?deleted, ?latestOnly).
func (s *Server) srSchemas(w http.ResponseWriter, r *http.Request) {
	prefix, deleted, latest := r.URL.Query().Get("subjectPrefix"), boolParam(r, "deleted"), boolParam(r, "latestOnly")
	out := []srSchemaJSON{}
	err := s.registry.replica.read(r.Context(), func(st *registry.State) error {
		for _, subj := range st.Subjects(deleted) {
			if !strings.HasPrefix(subj, prefix) {
				continue
			}
			vs, err := st.Versions(subj, deleted)
			if err != nil {
				continue
			}
			if latest {
				vs = vs[len(vs)-1:]
			}
			for _, n := range vs {
				if v, err := st.GetVersion(subj, n, deleted); err == nil {
					out = append(out, versionJSON(v))
				}
			}
		}
		return nil
	})
	if err != nil {
		registryFail(w, err)
		return
	}
	registryWrite(w, http.StatusOK, out)
}

func parseID(r *http.Request) (int, error) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil || id < 1 {
		return 0, &registry.Error{Code: registry.CodeSchemaNotFound, Message: "Schema " + r.PathValue("id") + " not found"}
	}
	return id, nil
}

// GET /schemas/ids/{id}[/schema|/subjects|/versions].
func (s *Server) srByID(what string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := parseID(r)
		if err != nil {
			registryFail(w, err)
			return
		}
		deleted := boolParam(r, "deleted")
		var out any
		var raw string
		err = s.registry.replica.read(r.Context(), func(st *registry.State) error {
			sc, err := st.ByID(id)
			if err != nil {
				return err
			}
			svs, err := st.IDVersions(id, deleted || what == "")
			if err != nil {
				return err
			}
			switch what {
			case "":
				if subj := r.URL.Query().Get("subject"); subj != "" && !slices.ContainsFunc(svs, func(sv registry.SubjectVersion) bool { return sv.Subject == subj }) {
					return &registry.Error{Code: registry.CodeSchemaNotFound, Message: "Schema " + strconv.Itoa(id) + " not found"}
				}
				out = srSchemaJSON{SchemaType: schemaType(sc.Type), References: sc.References, Schema: sc.Schema}
			case "schema":
				raw = sc.Schema
			case "subjects":
				subjects := []string{}
				for _, sv := range svs {
					if !slices.Contains(subjects, sv.Subject) {
						subjects = append(subjects, sv.Subject)
					}
				}
				out = subjects
			case "versions":
				type subjectVersion struct {
					Subject string `json:"subject"`
					Version int    `json:"version"`
				}
				list := []subjectVersion{}
				for _, sv := range svs {
					list = append(list, subjectVersion{sv.Subject, sv.Version})
				}
				out = list
			}
			return nil
		})
		if err != nil {
			registryFail(w, err)
			return
		}
		if what == "schema" {
			w.Header().Set("Content-Type", registryContentType)
			io.WriteString(w, raw)
			return
		}
		registryWrite(w, http.StatusOK, out)
	}
}

// GET /subjects (?deleted, ?subjectPrefix).
func (s *Server) srSubjects(w http.ResponseWriter, r *http.Request) {
	prefix := r.URL.Query().Get("subjectPrefix")
	out := []string{}
	err := s.registry.replica.read(r.Context(), func(st *registry.State) error {
		for _, subj := range st.Subjects(boolParam(r, "deleted")) {
			if strings.HasPrefix(subj, prefix) {
				out = append(out, subj)
			}
		}
		return nil
	})
	if err != nil {
		registryFail(w, err)
		return
	}
	registryWrite(w, http.StatusOK, out)
}

// GET /subjects/{subject}/versions (?deleted).
func (s *Server) srVersions(w http.ResponseWriter, r *http.Request) {
	out, err := readReplica(r.Context(), s.registry.replica, func(st *registry.State) ([]int, error) {
		return st.Versions(r.PathValue("subject"), boolParam(r, "deleted"))
	})
	if err != nil {
		registryFail(w, err)
		return
	}
	registryWrite(w, http.StatusOK, out)
}

// GET /subjects/{subject}/versions/{version}[/schema|/referencedby].
func (s *Server) srVersion(what string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		subj := r.PathValue("subject")
		n, err := registry.ParseVersion(r.PathValue("version"))
		if err != nil {
			registryFail(w, err)
			return
		}
		var v registry.Version
		var refs []int
		err = s.registry.replica.read(r.Context(), func(st *registry.State) error {
			var err error
			if v, err = st.GetVersion(subj, n, boolParam(r, "deleted")); err != nil {
				return err
			}
			if what == "referencedby" {
				refs, err = st.ReferencedBy(subj, v.Version)
			}
			return err
		})
		switch {
		case err != nil:
			registryFail(w, err)
		case what == "schema":
			w.Header().Set("Content-Type", registryContentType)
			io.WriteString(w, v.Schema)
		case what == "referencedby":
			if refs == nil {
				refs = []int{}
			}
			registryWrite(w, http.StatusOK, refs)
		default:
			registryWrite(w, http.StatusOK, versionJSON(v))
		}
	}
}

// POST /subjects/{subject}/versions (?normalize): {"id": N}.
func (s *Server) srRegister(w http.ResponseWriter, r *http.Request) {
	if !s.mayChange(w, r) {
		return
	}
	var b srSchemaBody
	if !s.srBody(w, r, &b) {
		return
	}
	sc, err := b.schema()
	if err != nil {
		registryFail(w, err)
		return
	}
	res, err := s.registry.write(r.Context(), writerCall{Op: "register", Subject: r.PathValue("subject"), Schema: &sc,
		Normalize: boolParam(r, "normalize"), ID: max(b.ID, 0), Version: max(b.Version, 0)})
	if err != nil {
		registryFail(w, err)
		return
	}
	registryWrite(w, http.StatusOK, map[string]int{"id": res.ID})
}

// POST /subjects/{subject} (?deleted): the version holding the schema.
func (s *Server) srLookup(w http.ResponseWriter, r *http.Request) {
	var b srSchemaBody
	if !s.srBody(w, r, &b) {
		return
	}
	sc, err := b.schema()
	if err != nil {
		registryFail(w, err)
		return
	}
	v, err := readReplica(r.Context(), s.registry.replica, func(st *registry.State) (registry.Version, error) {
		return st.Lookup(r.PathValue("subject"), sc, boolParam(r, "deleted"))
	})
	if err != nil {
		registryFail(w, err)
		return
	}
	registryWrite(w, http.StatusOK, versionJSON(v))
}

// DELETE /subjects/{subject} (?permanent): the versions deleted.
func (s *Server) srDeleteSubject(w http.ResponseWriter, r *http.Request) {
	if !s.mayChange(w, r) {
		return
	}
	res, err := s.registry.write(r.Context(), writerCall{Op: "delete_subject", Subject: r.PathValue("subject"), Permanent: boolParam(r, "permanent")})
	if err != nil {
		registryFail(w, err)
		return
	}
	if res.Versions == nil {
		res.Versions = []int{}
	}
	registryWrite(w, http.StatusOK, res.Versions)
}

// DELETE /subjects/{subject}/versions/{version} (?permanent): the version
// deleted.
func (s *Server) srDeleteVersion(w http.ResponseWriter, r *http.Request) {
	if !s.mayChange(w, r) {
		return
	}
	n, err := registry.ParseVersion(r.PathValue("version"))
	if err != nil {
		registryFail(w, err)
		return
	}
	res, err := s.registry.write(r.Context(), writerCall{Op: "delete_version", Subject: r.PathValue("subject"), Version: n, Permanent: boolParam(r, "permanent")})
	if err != nil {
		registryFail(w, err)
		return
	}
	registryWrite(w, http.StatusOK, res.Version)
}

// configJSON is a config as GET and DELETE answer it.
func configJSON(c registry.Config) map[string]any {
	out := map[string]any{"compatibilityLevel": c.Compatibility}
	if c.Normalize != nil {
		out["normalize"] = *c.Normalize
	}
	return out
}

// GET /config[/{subject}] (?defaultToGlobal).
func (s *Server) srGetConfig(w http.ResponseWriter, r *http.Request) {
	c, err := readReplica(r.Context(), s.registry.replica, func(st *registry.State) (registry.Config, error) {
		return st.Config(r.PathValue("subject"), boolParam(r, "defaultToGlobal"))
	})
	if err != nil {
		registryFail(w, err)
		return
	}
	registryWrite(w, http.StatusOK, configJSON(c))
}

// PUT /config[/{subject}] with {"compatibility", "normalize"}: the
// request's settings.
func (s *Server) srSetConfig(w http.ResponseWriter, r *http.Request) {
	if !s.mayChange(w, r) {
		return
	}
	var b struct {
		Compatibility string `json:"compatibility"`
		Normalize     *bool  `json:"normalize"`
	}
	if !s.srBody(w, r, &b) {
		return
	}
	c := registry.Config{Compatibility: registry.Level(strings.ToUpper(b.Compatibility)), Normalize: b.Normalize}
	res, err := s.registry.write(r.Context(), writerCall{Op: "set_config", Subject: r.PathValue("subject"), Config: &c})
	if err != nil {
		registryFail(w, err)
		return
	}
	out := map[string]any{"compatibility": res.Config.Compatibility}
	if b.Normalize != nil {
		out["normalize"] = *b.Normalize
	}
	registryWrite(w, http.StatusOK, out)
}

// DELETE /config[/{subject}]: the config deleted.
func (s *Server) srDeleteConfig(w http.ResponseWriter, r *http.Request) {
	if !s.mayChange(w, r) {
		return
	}
	res, err := s.registry.write(r.Context(), writerCall{Op: "delete_config", Subject: r.PathValue("subject")})
	if err != nil {
		registryFail(w, err)
		return
	}
	registryWrite(w, http.StatusOK, configJSON(res.Config))
}

// GET /mode[/{subject}] (?defaultToGlobal).
func (s *Server) srGetMode(w http.ResponseWriter, r *http.Request) {
	m, err := readReplica(r.Context(), s.registry.replica, func(st *registry.State) (registry.Mode, error) {
		return st.Mode(r.PathValue("subject"), boolParam(r, "defaultToGlobal"))
	})
	if err != nil {
		registryFail(w, err)
		return
	}
	registryWrite(w, http.StatusOK, map[string]registry.Mode{"mode": m})
}

// PUT /mode[/{subject}] with {"mode"} (?force).
func (s *Server) srSetMode(w http.ResponseWriter, r *http.Request) {
	if !s.mayChange(w, r) {
		return
	}
	var b struct {
		Mode string `json:"mode"`
	}
	if !s.srBody(w, r, &b) {
		return
	}
	res, err := s.registry.write(r.Context(), writerCall{Op: "set_mode", Subject: r.PathValue("subject"),
		Mode: registry.Mode(strings.ToUpper(b.Mode)), Force: boolParam(r, "force")})
	if err != nil {
		registryFail(w, err)
		return
	}
	registryWrite(w, http.StatusOK, map[string]registry.Mode{"mode": res.Mode})
}

// DELETE /mode[/{subject}]: the mode deleted.
func (s *Server) srDeleteMode(w http.ResponseWriter, r *http.Request) {
	if !s.mayChange(w, r) {
		return
	}
	res, err := s.registry.write(r.Context(), writerCall{Op: "delete_mode", Subject: r.PathValue("subject")})
	if err != nil {
		registryFail(w, err)
		return
	}
	registryWrite(w, http.StatusOK, map[string]registry.Mode{"mode": res.Mode})
}

// POST /compatibility/subjects/{subject}/versions[/{version}]
// (?verbose): {"is_compatible"}, with "messages" when verbose.
func (s *Server) srCompatibility(w http.ResponseWriter, r *http.Request) {
	n := 0
	if v := r.PathValue("version"); v != "" {
		var err error
		if n, err = registry.ParseVersion(v); err != nil {
			registryFail(w, err)
			return
		}
	}
	var b srSchemaBody
	if !s.srBody(w, r, &b) {
		return
	}
	sc, err := b.schema()
	if err != nil {
		registryFail(w, err)
		return
	}
	var ok bool
	var reasons []string
	err = s.registry.replica.read(r.Context(), func(st *registry.State) error {
		var err error
		ok, reasons, err = st.CheckCompatibility(r.PathValue("subject"), n, sc)
		return err
	})
	if err != nil {
		registryFail(w, err)
		return
	}
	out := map[string]any{"is_compatible": ok}
	if boolParam(r, "verbose") {
		if reasons == nil {
			reasons = []string{}
		}
		out["messages"] = reasons
	}
	registryWrite(w, http.StatusOK, out)
}
