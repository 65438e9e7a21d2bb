// Package httpmap is meshka's HTTP mapper (directory mappers/http):
// configured routes that produce HTTP bodies as records, fetch a topic
// as a JSON array with an ETag of its position, and stream it as
// Server-Sent Events whose ids resume exactly, on any node. It uses the
// public mesh API only.
package httpmap

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshka/meshka/acl"
	"github.com/meshka/meshka/auth"
	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/mesh"
	"github.com/meshka/meshka/netguard"
	"github.com/meshka/meshka/records"
	"github.com/meshka/meshka/schema/registry"
)

// Env is what the node gives the mapper.
type Env struct {
	Mesh  *mesh.Mesh
	Users *auth.Users // Basic credentials are checked against them
	// Bearer checks Bearer tokens (security.oauthbearer); nil: a Bearer
	// token is refused.
	Bearer *auth.OAuthBearer
	// ACL authorizes each request's principal on the route's topics;
	// nil or disabled: everything is allowed.
	ACL *acl.Authorizer
	TLS *tls.Config // nil: plain HTTP
	// Metrics, when set, registers the mapper's figures.
	Metrics prometheus.Registerer
	Logger  *slog.Logger
}

// Server is the HTTP listener of one node.
type Server struct {
	cfg    config.HTTP
	env    Env
	log    *slog.Logger
	routes atomic.Pointer[[]*route] // replaced whole by SetRoutes (a reload)
	m      *metrics

	confluent *http.ServeMux // the Confluent REST Proxy API; nil unless http.confluent
	consumers *mesh.Actors   // its v2 consumer instances; nil unless http.confluent

	srMux    *http.ServeMux // the Schema Registry API; nil unless http.schema_registry.enabled
	registry *schemaService // its replica and writer, from Start
	replica  *schemaReplica // this node's copy of the registry, made at New when it is on

	producers map[mesh.Acks]*mesh.Producer
	replies   replies
	idem      *mesh.Actors // the idempotency keys' shards
	srv       *http.Server
	ln        net.Listener
	srSrv     *http.Server // the registry's own listener (http.schema_registry.listen); nil without
	srLn      net.Listener

	ctx    context.Context // ends at Stop: streams, long polls and WebSockets end
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex            // guards sockets, and orders trackSocket before Stop's wait
	sockets map[net.Conn]struct{} // the WebSockets' connections, which the http.Server no longer tracks
	sockWG  sync.WaitGroup        // their handlers
}

// New builds the mapper from a validated configuration.
func New(cfg config.HTTP, env Env) (*Server, error) {
	if err := checkValueFormats(cfg, env.Mesh != nil && env.Mesh.Schemas() != nil); err != nil {
		return nil, err
	}
	if env.Mesh == nil {
		return nil, errors.New("http: no mesh")
	}
	log := env.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Server{cfg: cfg, env: env, log: log.With("component", "http"),
		sockets: map[net.Conn]struct{}{}, m: newMetrics(env.Metrics)}
	s.SetRoutes(cfg.Routes)
	s.replies.s = s
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if cfg.Confluent {
		s.confluent = s.newConfluent()
	}
	if cfg.SchemaRegistry.Enabled {
		s.replica = newSchemaReplica(env.Mesh, cfg.SchemaRegistry.Topic, s.log)
		s.srMux = s.registryMux()
	}
	return s, nil
}

var _ mesh.Binding = (*Server)(nil)

// Start binds the listener and serves it.
func (s *Server) Start(ctx context.Context) error {
	s.producers = map[mesh.Acks]*mesh.Producer{}
	for _, a := range []mesh.Acks{mesh.AcksAll, mesh.AcksLeader, mesh.AcksNone} {
		s.producers[a] = s.env.Mesh.NewProducer(mesh.ProducerOptions{Acks: a, Compression: records.CodecNone})
	}
	idem, err := s.env.Mesh.Actors(mesh.ActorsOptions{Kind: idempotencyKind, New: newIdemActor, IdleAfter: 2 * idempotencyTTL})
	if err != nil {
		return fmt.Errorf("http: idempotency keys: %w", err)
	}
	s.idem = idem
	if s.confluent != nil {
		if err := s.startConsumers(ctx); err != nil {
			s.idem.Close(ctx)
			return err
		}
	}
	if s.srMux != nil {
		if err := s.startRegistry(ctx); err != nil {
			s.idem.Close(ctx)
			if s.consumers != nil {
				s.consumers.Close(ctx)
			}
			return err
		}
	}
	raw, err := net.Listen("tcp", s.cfg.Listen)
	var srRaw net.Listener
	if err == nil && s.srMux != nil && s.cfg.SchemaRegistry.Listen != "" {
		if srRaw, err = net.Listen("tcp", s.cfg.SchemaRegistry.Listen); err != nil {
			raw.Close()
			err = fmt.Errorf("http.schema_registry.listen: %w", err)
		}
	} else if err != nil {
		err = fmt.Errorf("http.listen: %w", err)
	}
	if err != nil {
		s.idem.Close(ctx)
		if s.consumers != nil {
			s.consumers.Close(ctx)
		}
		if s.registry != nil {
			s.registry.stop(ctx)
		}
		return err
	}
	s.ln, s.srv = s.serveOn(raw, "http", s)
	s.log.Info("HTTP listener started", "listen", s.ln.Addr().String(), "routes", len(s.routesNow()), "tls", s.env.TLS != nil)
	if srRaw != nil {
		s.srLn, s.srSrv = s.serveOn(srRaw, "schema_registry", http.HandlerFunc(s.serveRegistry))
		s.log.Info("schema registry listener started", "listen", s.srLn.Addr().String(), "tls", s.env.TLS != nil)
	}
	return nil
}

// serveOn serves h on raw, bounded as every listener is (netguard),
// until Stop; name labels its connection metrics.
func (s *Server) serveOn(raw net.Listener, name string, h http.Handler) (net.Listener, *http.Server) {
	gl := netguard.Listen(raw, name, netguard.Limits{MaxConns: netguard.MaxConnsFromFileLimit()}, s.log)
	gl.Register(s.env.Metrics, "http", name)
	ln := gl.NetListener(s.m.received, s.m.sent)
	var tc *tls.Config
	if s.env.TLS != nil {
		tc = s.env.TLS.Clone() // each server sets its own ALPN protocols in it
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: s.cfg.ReadHeaderTimeout.D(), IdleTimeout: s.cfg.IdleTimeout.D(),
		MaxHeaderBytes: 64 << 10, TLSConfig: tc, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext: func(net.Listener) context.Context { return s.ctx },
		ConnContext: func(ctx context.Context, c net.Conn) context.Context { return context.WithValue(ctx, connKey{}, c) }}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		var err error
		if s.env.TLS != nil {
			err = srv.ServeTLS(ln, "", "")
		} else {
			err = srv.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Warn("HTTP listener ended", "listener", name, "err", err)
		}
	}()
	return ln, srv
}

// serveRegistry serves the registry's own listener: the HTTP listener's
// CORS and authentication, then the registry's API alone.
func (s *Server) serveRegistry(w http.ResponseWriter, r *http.Request) {
	rec := &statusRecorder{ResponseWriter: w}
	start := time.Now()
	defer func() {
		code := rec.code
		if code == 0 {
			code = http.StatusOK
		}
		s.m.done("schema_registry", code, start)
	}()
	if s.cors(rec, r) {
		return
	}
	principal, ok := s.authenticate(rec, r)
	if !ok {
		return
	}
	if _, pattern := s.srMux.Handler(r); pattern == "" {
		registryFail(rec, &registry.Error{Code: codeRegistryNotFound, Message: "HTTP 404 Not Found"})
		return
	}
	s.srMux.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), principalKey{}, principal)))
}

// SetRoutes puts routes (validated) in force for the requests that
// arrive from now on; requests and streams under way keep their route.
func (s *Server) SetRoutes(routes []config.HTTPRoute) {
	rs := compile(routes)
	s.routes.Store(&rs)
}

func (s *Server) routesNow() []*route { return *s.routes.Load() }

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// RegistryAddr is the address of the registry's own listener
// (http.schema_registry.listen); nil when it has none.
func (s *Server) RegistryAddr() net.Addr {
	if s.srLn == nil {
		return nil
	}
	return s.srLn.Addr()
}

// Stop ends streams and long polls, closes WebSockets with 1001, lets
// requests in progress finish within ctx, and closes the listener.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	s.cancel()
	s.mu.Unlock()
	var err error
	for _, srv := range []*http.Server{s.srv, s.srSrv} {
		if srv == nil {
			continue
		}
		if serr := srv.Shutdown(ctx); serr != nil {
			srv.Close()
			if err == nil {
				err = serr
			}
		}
	}
	if werr := s.waitSockets(ctx); err == nil {
		err = werr
	}
	s.wg.Wait()
	cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if s.consumers != nil {
		s.consumers.Close(cctx)
	}
	if s.registry != nil {
		s.registry.stop(cctx)
	}
	if s.idem != nil {
		s.idem.Close(cctx)
	}
	for _, p := range s.producers {
		p.Close(cctx)
	}
	return err
}

// Health reports whether the listener serves.
func (s *Server) Health() mesh.Health {
	return mesh.Health{OK: s.ctx.Err() == nil, Detail: fmt.Sprintf("%d routes", len(s.routesNow()))}
}

// ServeHTTP routes a request, counting it by what served it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &statusRecorder{ResponseWriter: w}
	start, served := time.Now(), "none"
	defer func() {
		code := rec.code
		if code == 0 {
			code = http.StatusOK
		}
		s.m.done(served, code, start)
	}()
	s.serve(rec, r, &served)
}

// serve routes a request; served is set to what serves it.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, served *string) {
	if s.cors(w, r) {
		return
	}
	principal, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	rt, params, allowed := find(s.routesNow(), r.Method, r.URL.Path)
	if rt == nil && r.Method == http.MethodGet && r.URL.Path == openAPIPath {
		*served = "openapi"
		s.serveOpenAPI(w)
		return
	}
	if rt == nil && r.Method == http.MethodGet {
		if art, id, ok := s.asyncRoute(r.URL.Path); ok {
			*served = "async_reply"
			s.asyncReply(w, r, art, id)
			return
		}
	}
	if rt == nil && s.srMux != nil && s.registry != nil && s.cfg.SchemaRegistry.Listen == "" {
		if _, pattern := s.srMux.Handler(r); pattern != "" {
			*served = "schema_registry"
			s.srMux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, principal)))
			return
		}
	}
	if rt == nil {
		if s.confluent != nil {
			// Handler only asks; ServeHTTP matches again and sets the
			// path's values.
			if _, pattern := s.confluent.Handler(r); pattern != "" {
				*served = "confluent"
				s.confluent.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, principal)))
				return
			}
		}
		if len(allowed) > 0 {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			problem(w, http.StatusMethodNotAllowed, "%s is not served on %s; allowed: %s", r.Method, r.URL.Path, strings.Join(allowed, ", "))
			return
		}
		problem(w, http.StatusNotFound, "no route serves %s %s", r.Method, r.URL.Path)
		return
	}
	*served = rt.cfg.Capability
	if !s.authorize(w, r, principal, rt) {
		return
	}
	switch rt.cfg.Capability {
	case config.CapProduce:
		s.produce(w, r, rt, params)
	case config.CapFetch:
		s.fetch(w, r, rt, params)
	case config.CapStream:
		s.stream(w, r, rt, params)
	case config.CapItem:
		s.item(w, r, rt, params)
	case config.CapRequest:
		s.request(w, r, rt, params)
	case config.CapWebSocket:
		s.m.ws.Inc()
		defer s.m.ws.Dec()
		s.websocket(w, r, rt, params)
	default:
		problem(w, http.StatusNotImplemented, "the %s capability is not served by this version of meshka", rt.cfg.Capability)
	}
}

// asyncRoute finds the async request route whose replies path holds:
// the route's path, then the correlation id.
func (s *Server) asyncRoute(path string) (*route, string, bool) {
	i := strings.LastIndexByte(path, '/')
	if i <= 0 || i == len(path)-1 {
		return nil, "", false
	}
	for _, rt := range s.routesNow() {
		if rt.cfg.Capability != config.CapRequest || !rt.cfg.Async {
			continue
		}
		if _, ok := rt.match(path[:i]); ok {
			return rt, path[i+1:], true
		}
	}
	return nil, "", false
}

// cors answers a preflight and sets the allowed origin; true: answered.
func (s *Server) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || len(s.cfg.CORSOrigins) == 0 {
		return false
	}
	if !slices.Contains(s.cfg.CORSOrigins, "*") && !slices.Contains(s.cfg.CORSOrigins, origin) {
		return false
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	h.Set("Access-Control-Expose-Headers", "ETag, Location")
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, PATCH")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Idempotency-Key, If-None-Match, If-Match, Last-Event-ID, Prefer")
		h.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	return false
}

// authenticate checks Basic credentials or a Bearer token and returns
// the request's principal; false: answered 401.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (string, bool) {
	refuse := func(detail string) (string, bool) {
		w.Header().Set("WWW-Authenticate", `Basic realm="meshka"`)
		if s.env.Bearer != nil {
			w.Header().Add("WWW-Authenticate", `Bearer realm="meshka"`)
		}
		problem(w, http.StatusUnauthorized, "%s", detail)
		return "", false
	}
	if token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		if s.env.Bearer == nil {
			return refuse("Bearer tokens are not accepted here (no security.oauthbearer)")
		}
		claims, err := s.env.Bearer.Check(strings.TrimSpace(token))
		if err != nil {
			s.log.Info("HTTP authentication failed", "remote", r.RemoteAddr, "err", err)
			return refuse("the token is not valid")
		}
		return auth.UserPrincipal(claims.Principal), true
	}
	user, password, ok := r.BasicAuth()
	if !ok {
		if s.cfg.AllowAnonymous {
			return "User:ANONYMOUS", true
		}
		return refuse("credentials required")
	}
	if err := s.env.Users.CheckPassword(user, password); err != nil {
		s.log.Info("HTTP authentication failed", "remote", r.RemoteAddr, "user", user)
		return refuse("bad username or password")
	}
	return auth.UserPrincipal(user), true
}

// authorize checks the principal may do what the route does (WRITE to
// produce, READ to fetch, stream and get items, WRITE to change them;
// a request WRITE to its topic and READ of its replies); false:
// answered 403.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, principal string, rt *route) bool {
	az := s.env.ACL
	if az == nil || !az.Enabled() {
		return true
	}
	var host netip.Addr
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		host = ap.Addr().Unmap()
	}
	type need struct {
		op    acl.Operation
		topic string
	}
	var needs []need
	switch rt.cfg.Capability {
	case config.CapProduce:
		needs = []need{{acl.Write, rt.cfg.Topic}}
	case config.CapItem:
		if r.Method == http.MethodGet {
			needs = []need{{acl.Read, rt.cfg.Topic}}
		} else {
			needs = []need{{acl.Write, rt.cfg.Topic}}
		}
	case config.CapRequest:
		needs = []need{{acl.Write, rt.cfg.Topic}, {acl.Read, rt.cfg.ReplyTo}}
	case config.CapWebSocket:
		// Reading is checked at the upgrade (unless the socket only
		// publishes); writing at the socket's first frame.
		if r.URL.Query().Get("subscribe") != "false" {
			needs = []need{{acl.Read, rt.cfg.Topic}}
		}
		if !az.Authorize(principal, host, acl.Write, acl.Topic, rt.cfg.Topic) {
			*r = *r.WithContext(context.WithValue(r.Context(), noWriteKey{}, principal))
		}
	default:
		needs = []need{{acl.Read, rt.cfg.Topic}}
	}
	for _, n := range needs {
		if !az.Authorize(principal, host, n.op, acl.Topic, n.topic) {
			problem(w, http.StatusForbidden, "%s may not %s topic %s", principal, opName(n.op), n.topic)
			return false
		}
	}
	return true
}

// principalKey holds a request's principal for the Confluent API's
// handlers, which check ACLs per topic themselves.
type principalKey struct{}

// mayTopic says whether the request's principal may do op on topic,
// and answers 403 in the Confluent API's shape when it may not.
func (s *Server) mayTopic(w http.ResponseWriter, r *http.Request, contentType string, op acl.Operation, topic string) bool {
	if s.allowed(r, op, acl.Topic, topic) {
		return true
	}
	principal, _ := r.Context().Value(principalKey{}).(string)
	writeConfluent(w, contentType, http.StatusForbidden, errorf(codeAuthorization, "%s may not %s topic %s", principal, opName(op), topic))
	return false
}

// noWriteKey marks a WebSocket request whose principal may not write to
// the route's topic; its value is the principal.
type noWriteKey struct{}

func opName(op acl.Operation) string {
	switch op {
	case acl.Write:
		return "write to"
	case acl.Describe:
		return "describe"
	}
	return "read"
}

// problem answers an error as RFC 9457 problem details.
func problem(w http.ResponseWriter, status int, format string, args ...any) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"status": status, "title": http.StatusText(status), "detail": fmt.Sprintf(format, args...)})
}
