package httpmap

// The Confluent REST Proxy's v2 consumer API on the HTTP edge: each
// request is decoded and checked here (ACLs: READ on the group, and on
// the topics subscribed), then asked of the instance's actor, wherever
// it runs (consumer.go), whose answer is written as it comes.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/meshka/meshka/acl"
	"github.com/meshka/meshka/mesh"
)

// consumerQueue bounds the requests waiting for one instance.
const consumerQueue = 16

// startConsumers serves the consumer instances' actor kind on this node
// and creates their topic when asked to.
func (s *Server) startConsumers(ctx context.Context) error {
	c := s.cfg.Consumers
	env := &consumerEnv{mesh: s.env.Mesh, table: s.env.Mesh.Table(c.Topic), timeout: c.InstanceTimeout.D(),
		maxBytes: int64(c.MaxBytes), undecodable: s.m.undecodable,
		mayRead: func(principal string, host netip.Addr, topic string) bool {
			az := s.env.ACL
			return az == nil || !az.Enabled() || az.Authorize(principal, host, acl.Read, acl.Topic, topic)
		}}
	kind, err := s.env.Mesh.Actors(mesh.ActorsOptions{Kind: consumerKind, New: env.newActor,
		Queue: consumerQueue, IdleAfter: c.InstanceTimeout.D(), MaxActive: c.MaxInstances})
	if err != nil {
		return fmt.Errorf("http: consumer instances: %w", err)
	}
	s.consumers = kind
	if c.Create {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		errs, err := s.env.Mesh.CreateTopics(cctx, mesh.TopicSpec{Name: c.Topic, Partitions: 1, Replication: c.Replication,
			Configs: map[string]string{"cleanup.policy": "compact"}})
		if err == nil {
			err = errs[c.Topic]
		}
		if err != nil {
			s.log.Warn("the consumer instances' topic was not created", "topic", c.Topic, "err", err)
		}
	}
	return nil
}

func (s *Server) v2ConsumerRoutes(mux *http.ServeMux) {
	ct := v2ContentType
	const inst = "/consumers/{group}/instances/{instance}"
	confluentRoutes(mux, ct, "/consumers/{group}", map[string]http.HandlerFunc{http.MethodPost: s.v2CreateConsumer})
	confluentRoutes(mux, ct, inst, map[string]http.HandlerFunc{http.MethodDelete: s.v2Consumer("delete")})
	confluentRoutes(mux, ct, inst+"/subscription", map[string]http.HandlerFunc{
		http.MethodPost: s.v2Subscribe, http.MethodGet: s.v2Consumer("subscription"), http.MethodDelete: s.v2Consumer("unsubscribe")})
	confluentRoutes(mux, ct, inst+"/records", map[string]http.HandlerFunc{http.MethodGet: s.v2Records})
	confluentRoutes(mux, ct, inst+"/offsets", map[string]http.HandlerFunc{http.MethodPost: s.v2Commit, http.MethodGet: s.v2Committed})
	confluentRoutes(mux, ct, inst+"/assignments", map[string]http.HandlerFunc{http.MethodGet: s.v2Consumer("assignments"), http.MethodPost: v2NoSeek})
	for _, p := range []string{"/positions", "/positions/beginning", "/positions/end"} {
		confluentRoutes(mux, ct, inst+p, map[string]http.HandlerFunc{http.MethodPost: v2NoSeek})
	}
	mux.HandleFunc("/consumers/", func(w http.ResponseWriter, r *http.Request) {
		v2Fail(w, errorf(http.StatusNotFound, "HTTP 404 Not Found: %s", r.URL.Path))
	})
}

// v2NoSeek answers manual assignment and seeking, which instances do not
// do: their partitions are the group's to assign, and they read on from
// the group's commits.
func v2NoSeek(w http.ResponseWriter, r *http.Request) {
	v2Fail(w, errorf(http.StatusNotImplemented,
		"meshka's consumer instances read the partitions their group assigns, from its committed offsets: manual assignment and seeking are not served"))
}

// consumerInstanceConfig is POST /consumers/{group}'s body. The REST
// Proxy takes its values as strings or numbers.
type consumerInstanceConfig struct {
	Name           *string     `json:"name"`
	ID             *string     `json:"id"` // the name's older spelling
	Format         *string     `json:"format"`
	OffsetReset    *string     `json:"auto.offset.reset"`
	AutoCommit     stringOrAny `json:"auto.commit.enable"`
	FetchMinBytes  stringOrAny `json:"fetch.min.bytes"`
	RequestTimeout stringOrAny `json:"consumer.request.timeout.ms"`
}

// stringOrAny is a JSON string, number or boolean as its text ("" when
// absent or null).
type stringOrAny string

func (v *stringOrAny) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*v = stringOrAny(s)
		return nil
	}
	var raw any
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	switch raw.(type) {
	case nil:
		*v = ""
	case float64, bool:
		*v = stringOrAny(strings.TrimSpace(string(b)))
	default:
		return fmt.Errorf("want a string, number or boolean, got %s", brief(b))
	}
	return nil
}

// validInstanceName bounds what a name may be: it goes in URLs and logs.
var validInstanceName = regexp.MustCompile(`^[A-Za-z0-9._\-]{1,249}$`)

// POST /consumers/{group}: a new instance in the group; 200 with its id
// and base URI, 409 when the name is taken.
func (s *Server) v2CreateConsumer(w http.ResponseWriter, r *http.Request) {
	group := r.PathValue("group")
	if !s.mayGroup(w, r, group) {
		return
	}
	var cfg consumerInstanceConfig
	if !s.v2Body(w, r, &cfg, true) {
		return
	}
	st, e := newConsumerInstance(group, cfg, s.cfg.MaxWait.D(), s.env.Mesh.Schemas() != nil)
	if e != nil {
		v2Fail(w, e)
		return
	}
	base := s.confluentBase(r) + "/consumers/" + url.PathEscape(group) + "/instances/" + url.PathEscape(st.Name)
	ans, ok := s.askConsumer(w, r, group, st.Name, consumerCall{Op: "create", Create: st})
	if !ok {
		return
	}
	if ans.Status != http.StatusOK {
		writeAnswer(w, v2ContentType, ans)
		return
	}
	writeConfluent(w, v2ContentType, http.StatusOK, map[string]string{"instance_id": st.Name, "base_uri": base})
}

// newConsumerInstance is the instance of group that cfg asks for, or
// why it cannot be; maxWait bounds its request timeout (http.max_wait);
// the schema formats need a schema registry (schemas).
func newConsumerInstance(group string, cfg consumerInstanceConfig, maxWait time.Duration, schemas bool) (*consumerInstance, *confluentError) {
	st := &consumerInstance{Group: group, Format: "binary", AutoOffsetReset: "latest", AutoCommit: true,
		FetchMinBytes: -1, RequestTimeout: 1000}
	bad := func(format string, args ...any) (*consumerInstance, *confluentError) {
		return nil, errorf(codeInvalidConsumer, "Invalid consumer configuration: "+format, args...)
	}
	switch {
	case cfg.Name != nil:
		st.Name = *cfg.Name
	case cfg.ID != nil:
		st.Name = *cfg.ID
	default:
		var b [8]byte
		rand.Read(b[:])
		st.Name = "rest-consumer-" + hex.EncodeToString(b[:])
	}
	if !validInstanceName.MatchString(st.Name) {
		return bad("name %q: want 1 to 249 letters, digits, '.', '_' or '-'", st.Name)
	}
	if cfg.Format != nil {
		switch f := strings.ToLower(*cfg.Format); f {
		case "binary", "json":
			st.Format = f
		case "avro", "jsonschema", "protobuf":
			if !schemas {
				return bad("format %s needs a schema registry, which this node does not have (http.schema_registry.enabled); binary and json are served", f)
			}
			st.Format = f
		default:
			return bad("format %q: want binary, json, avro, jsonschema or protobuf", *cfg.Format)
		}
	}
	if cfg.OffsetReset != nil {
		switch v := strings.ToLower(*cfg.OffsetReset); v {
		case "earliest", "latest":
			st.AutoOffsetReset = v
		case "smallest":
			st.AutoOffsetReset = "earliest"
		case "largest":
			st.AutoOffsetReset = "latest"
		default:
			return bad("auto.offset.reset %q: want earliest or latest", *cfg.OffsetReset)
		}
	}
	if v := string(cfg.AutoCommit); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return bad("auto.commit.enable %q: want true or false", v)
		}
		st.AutoCommit = b
	}
	if v := string(cfg.FetchMinBytes); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < -1 {
			return bad("fetch.min.bytes %q: want -1 or more", v)
		}
		st.FetchMinBytes = n
	}
	if v := string(cfg.RequestTimeout); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || n > maxWait.Milliseconds() {
			return bad("consumer.request.timeout.ms %q: want 0 to %d (http.max_wait)", v, maxWait.Milliseconds())
		}
		st.RequestTimeout = n
	}
	return st, nil
}

// v2Consumer serves the calls that need nothing but the instance.
func (s *Server) v2Consumer(op string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		group := r.PathValue("group")
		if !s.mayGroup(w, r, group) {
			return
		}
		if ans, ok := s.askConsumer(w, r, group, r.PathValue("instance"), consumerCall{Op: op}); ok {
			writeAnswer(w, v2ContentType, ans)
		}
	}
}

// POST …/subscription: {"topics": [...]} or {"topic_pattern": "..."};
// a pattern is matched against upstream's topics now, and again by the
// instance every patternRefresh (with the subscriber's ACLs).
func (s *Server) v2Subscribe(w http.ResponseWriter, r *http.Request) {
	group := r.PathValue("group")
	if !s.mayGroup(w, r, group) {
		return
	}
	var req struct {
		Topics       []string `json:"topics"`
		TopicPattern string   `json:"topic_pattern"`
	}
	if !s.v2Body(w, r, &req, false) {
		return
	}
	topics := req.Topics
	switch {
	case len(req.Topics) > 0 && req.TopicPattern != "":
		v2Fail(w, errorf(http.StatusUnprocessableEntity, "give topics or topic_pattern, not both"))
		return
	case req.TopicPattern != "":
		re, err := regexp.Compile("^(?:" + req.TopicPattern + ")$")
		if err != nil {
			v2Fail(w, errorf(http.StatusUnprocessableEntity, "topic_pattern: %v", err))
			return
		}
		all, err := s.env.Mesh.Topics(r.Context())
		if err != nil {
			v2Fail(w, upstreamError("", err))
			return
		}
		topics = nil
		for _, t := range all {
			if !t.Internal && re.MatchString(t.Name) && s.allowed(r, acl.Read, acl.Topic, t.Name) {
				topics = append(topics, t.Name)
			}
		}
	case len(req.Topics) == 0:
		v2Fail(w, errorf(http.StatusUnprocessableEntity, "topics: must not be empty (or give topic_pattern)"))
		return
	default:
		for _, t := range topics {
			if !s.mayTopic(w, r, v2ContentType, acl.Read, t) {
				return
			}
		}
	}
	if ans, ok := s.askConsumer(w, r, group, r.PathValue("instance"),
		s.subscribeCall(r, topics, req.TopicPattern)); ok {
		writeAnswer(w, v2ContentType, ans)
	}
}

// GET …/records?timeout=&max_bytes=, in the format the Accept header
// names (the instance's when it names none).
func (s *Server) v2Records(w http.ResponseWriter, r *http.Request) {
	group := r.PathValue("group")
	if !s.mayGroup(w, r, group) {
		return
	}
	format := ""
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if f, ok := strings.CutPrefix(mt, "application/vnd.kafka."); ok {
			if f, ok = strings.CutSuffix(f, ".v2+json"); ok {
				format = f
				break
			}
		}
	}
	c := consumerCall{Op: "records", Format: format}
	q := r.URL.Query()
	for name, into := range map[string]*int64{"timeout": &c.TimeoutMs, "max_bytes": &c.MaxBytes} {
		if v := q.Get(name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				v2Fail(w, errorf(http.StatusBadRequest, "%s %q: want a number", name, v))
				return
			}
			*into = n
		}
	}
	ans, ok := s.askConsumer(w, r, group, r.PathValue("instance"), c)
	if !ok {
		return
	}
	ct := v2ContentType
	if ans.Status == http.StatusOK {
		// The format asked for, which is the instance's; none asked for:
		// the records say it only by their shape, so the generic type.
		ct = v2ContentType
		if format != "" {
			ct = "application/vnd.kafka." + format + ".v2+json"
		}
	}
	writeAnswer(w, ct, ans)
}

// POST …/offsets: commit the offsets given (each the last record done;
// the next one is committed), or with no body every record returned.
func (s *Server) v2Commit(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Offsets []v2TopicPartitionOffset `json:"offsets"`
	}
	s.v2ConsumerBody(w, r, &req, func() consumerCall { return consumerCall{Op: "commit", Offsets: req.Offsets} })
}

// GET …/offsets with {"partitions": [...]}: the group's committed
// offsets of those partitions.
func (s *Server) v2Committed(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Partitions []v2TopicPartition `json:"partitions"`
	}
	s.v2ConsumerBody(w, r, &req, func() consumerCall { return consumerCall{Op: "committed", Partitions: req.Partitions} })
}

// v2ConsumerBody serves a call whose body (optional) decodes into req:
// call builds it once req is decoded.
func (s *Server) v2ConsumerBody(w http.ResponseWriter, r *http.Request, req any, call func() consumerCall) {
	group := r.PathValue("group")
	if !s.mayGroup(w, r, group) || !s.v2Body(w, r, req, true) {
		return
	}
	if ans, ok := s.askConsumer(w, r, group, r.PathValue("instance"), call()); ok {
		writeAnswer(w, v2ContentType, ans)
	}
}

// v2Body decodes the request's JSON body into v; an empty body is
// allowed when optional. False: answered.
func (s *Server) v2Body(w http.ResponseWriter, r *http.Request, v any, optional bool) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(s.cfg.MaxBodyBytes)))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			v2Fail(w, errorf(http.StatusRequestEntityTooLarge, "the body is larger than http.max_body_bytes (%d bytes)", tooLarge.Limit))
			return false
		}
		v2Fail(w, errorf(http.StatusBadRequest, "reading the body: %v", err))
		return false
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if optional {
			return true
		}
		v2Fail(w, errorf(http.StatusUnprocessableEntity, "the request needs a JSON body"))
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		v2Fail(w, errorf(http.StatusBadRequest, "Error processing JSON: %v", err))
		return false
	}
	if dec.More() {
		v2Fail(w, errorf(http.StatusBadRequest, "Error processing JSON: more than one value in the body"))
		return false
	}
	return true
}

// askConsumer asks the instance's actor, wherever it is. False: the ask
// failed, and was answered.
func (s *Server) askConsumer(w http.ResponseWriter, r *http.Request, group, instance string, c consumerCall) (consumerAnswer, bool) {
	if s.consumers == nil {
		v2Fail(w, errorf(http.StatusServiceUnavailable, "consumer instances are not served: the listener is stopping"))
		return consumerAnswer{}, false
	}
	body, err := json.Marshal(c)
	if err != nil {
		v2Fail(w, errorf(http.StatusInternalServerError, "%v", err))
		return consumerAnswer{}, false
	}
	wait := 30 * time.Second
	if c.Op == "records" {
		wait += s.cfg.MaxWait.D()
	}
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	out, err := s.consumers.Call(ctx, consumerID(group, instance), body)
	if err != nil {
		switch {
		case errors.Is(err, mesh.ErrActorBusy):
			w.Header().Set("Retry-After", "1")
			v2Fail(w, errorf(http.StatusTooManyRequests, "too many requests wait for consumer instance %s", instance))
		case errors.Is(err, mesh.ErrTooManyActors):
			w.Header().Set("Retry-After", "10")
			v2Fail(w, errorf(http.StatusTooManyRequests, "the node that owns consumer instance %s runs as many instances as it may (http.consumers.max_instances); delete idle instances or wait for them to time out", instance))
		case errors.Is(err, mesh.ErrNoActors):
			v2Fail(w, errorf(http.StatusServiceUnavailable, "the node that owns consumer instance %s does not serve consumer instances (http.confluent is off there)", instance))
		case errors.Is(err, mesh.ErrClosed):
			v2Fail(w, errorf(http.StatusServiceUnavailable, "meshka is stopping"))
		default:
			v2Fail(w, errorf(codeKafkaRetriable, "consumer instance %s: %v", instance, err))
		}
		return consumerAnswer{}, false
	}
	var ans consumerAnswer
	if err := json.Unmarshal(out, &ans); err != nil {
		v2Fail(w, errorf(http.StatusInternalServerError, "consumer instance %s answered: %v", instance, err))
		return consumerAnswer{}, false
	}
	return ans, true
}

// writeAnswer writes an actor's answer.
func writeAnswer(w http.ResponseWriter, contentType string, ans consumerAnswer) {
	if ans.Status == http.StatusNoContent || len(ans.Body) == 0 {
		w.WriteHeader(ans.Status)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(ans.Status)
	w.Write(ans.Body)
	w.Write([]byte("\n"))
}

// mayGroup says whether the request's principal may READ group (a
// consumer group's members must), answering 403 when it may not.
func (s *Server) mayGroup(w http.ResponseWriter, r *http.Request, group string) bool {
	if s.allowed(r, acl.Read, acl.Group, group) {
		return true
	}
	principal, _ := r.Context().Value(principalKey{}).(string)
	v2Fail(w, errorf(codeAuthorization, "%s may not read group %s", principal, group))
	return false
}

// subscribeCall is the subscribe call of r: with a pattern, the
// principal and its address, whose ACLs the instance checks the topics
// that come to match it with.
func (s *Server) subscribeCall(r *http.Request, topics []string, pattern string) consumerCall {
	c := consumerCall{Op: "subscribe", Topics: topics, TopicPattern: pattern}
	if pattern != "" {
		c.Subscriber, _ = r.Context().Value(principalKey{}).(string)
		if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
			c.SubscriberHost = ap.Addr().Unmap().String()
		}
	}
	return c
}

// allowed says whether the request's principal may do op on the
// resource.
func (s *Server) allowed(r *http.Request, op acl.Operation, rt acl.ResourceType, name string) bool {
	az := s.env.ACL
	if az == nil || !az.Enabled() {
		return true
	}
	principal, _ := r.Context().Value(principalKey{}).(string)
	var host netip.Addr
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		host = ap.Addr().Unmap()
	}
	return az.Authorize(principal, host, op, rt, name)
}
