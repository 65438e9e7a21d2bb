// Package admin is a node's admin listener: Prometheus metrics, the
// liveness and readiness probes, the live status page and its JSON (the
// whole mesh's, each peer asked over its own admin listener), and the
// reload endpoint.
package admin

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/meshka/meshka/auth"
)

// Deps are what the admin listener reports on and acts through; the node
// fills them.
type Deps struct {
	// Gatherer is the node's metrics registry.
	Gatherer prometheus.Gatherer
	// Ready names what keeps the node from serving (nothing: ready); it
	// bounds its own cost (the node reuses a check for a second).
	Ready func(ctx context.Context) []string
	// Local is this node's own status.
	Local func(ctx context.Context) NodeStatus
	// Peers are the other live nodes, with their admin addresses.
	Peers func() []Peer
	// Reload reads the configuration again and applies it (POST
	// /api/reload); nil: the endpoint answers 501.
	Reload func() (ReloadReport, error)
	// Users check Basic credentials when AllowAnonymous is off;
	// SuperUser says whether a principal may reload.
	Users     *auth.Users
	SuperUser func(principal string) bool
	Logger    *slog.Logger
}

// Config is the listener's own part of admin.*.
type Config struct {
	AllowAnonymous bool
	// TLS serves HTTPS; PeerTLS is how this node dials the others'
	// admin listeners (nil: plain HTTP).
	TLS     *tls.Config
	PeerTLS *tls.Config
}

// Server serves the admin endpoints on one listener.
type Server struct {
	cfg   Config
	deps  Deps
	log   *slog.Logger
	srv   *http.Server
	peers *http.Client
}

// New builds the server; Serve starts it.
func New(cfg Config, deps Deps) *Server {
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, deps: deps, log: deps.Logger}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.guard(promhttp.HandlerFor(deps.Gatherer, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(deps.Logger.Handler(), slog.LevelWarn), ErrorHandling: promhttp.ContinueOnError,
	})))
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /api/status", s.guard(http.HandlerFunc(s.status)))
	mux.Handle("POST /api/reload", s.guard(http.HandlerFunc(s.reload)))
	mux.Handle("GET /{$}", s.guard(http.HandlerFunc(page)))
	s.srv = &http.Server{
		Handler:           mux,
		TLSConfig:         cfg.TLS,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(deps.Logger.Handler(), slog.LevelDebug),
	}
	s.peers = &http.Client{Timeout: peerTimeout, Transport: &http.Transport{
		TLSClientConfig: cfg.PeerTLS, MaxIdleConnsPerHost: 2, IdleConnTimeout: time.Minute,
	}}
	return s
}

// Serve answers on ln until Shutdown; it returns nil then.
func (s *Server) Serve(ln net.Listener) error {
	var err error
	if s.cfg.TLS != nil {
		err = s.srv.ServeTLS(ln, "", "")
	} else {
		err = s.srv.Serve(ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops the listener and waits, within ctx, for the answers
// being written.
func (s *Server) Shutdown(ctx context.Context) error {
	s.peers.CloseIdleConnections()
	if err := s.srv.Shutdown(ctx); err != nil {
		return s.srv.Close()
	}
	return nil
}

// guard asks for Basic credentials of a known user unless
// admin.allow_anonymous; the probes are never guarded.
func (s *Server) guard(h http.Handler) http.Handler {
	if s.cfg.AllowAnonymous {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, password, ok := r.BasicAuth()
		if !ok || s.deps.Users == nil || s.deps.Users.CheckPassword(user, password) != nil {
			if ok {
				s.log.Info("admin: authentication failed", "remote", r.RemoteAddr, "user", user)
			}
			w.Header().Set("WWW-Authenticate", `Basic realm="meshka admin"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "credentials of a user of security.users required"})
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	reasons := s.deps.Ready(r.Context())
	if len(reasons) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false, "reasons": reasons})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ready": true})
}

func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	if !s.cfg.AllowAnonymous {
		user, _, _ := r.BasicAuth()
		if s.deps.SuperUser == nil || !s.deps.SuperUser(auth.UserPrincipal(user)) {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "only a user of security.super_users may reload"})
			return
		}
	}
	if s.deps.Reload == nil {
		writeJSON(w, http.StatusNotImplemented, map[string]string{"error": "this node was started without a configuration file; there is nothing to reload"})
		return
	}
	rep, err := s.deps.Reload()
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"applied": false, "error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// ReloadReport says what a reload changed and what waits for a restart.
type ReloadReport struct {
	Applied bool     `json:"applied"`
	File    string   `json:"file"`
	Changed []string `json:"changed"`
	// Restart names the keys whose new values take a restart.
	Restart []string `json:"restart"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// sortedKeys is m's keys in order, for stable output.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
