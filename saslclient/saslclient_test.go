package saslclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sasl"

	"github.com/meshka/meshka/config"
)

// first is the mechanism's first message to the broker.
func first(t *testing.T, m sasl.Mechanism) string {
	t.Helper()
	_, msg, err := m.Authenticate(context.Background(), "broker:9092")
	if err != nil {
		t.Fatalf("%s: %v", m.Name(), err)
	}
	return string(msg)
}

// A password file is read at each authentication, so a rotated password
// is used by the next connection; a file that cannot be read fails New.
func TestPasswordFileReadAtEachAuthentication(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "password")
	if err := os.WriteFile(path, []byte("first\r\nignored\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := New(config.SASL{Mechanism: config.SASLPlain, Username: "u", PasswordFile: path}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Name() != "PLAIN" {
		t.Fatalf("name %q", m.Name())
	}
	if got := first(t, m); got != "\x00u\x00first" {
		t.Fatalf("first message %q", got)
	}
	if err := os.WriteFile(path, []byte("second"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := first(t, m); got != "\x00u\x00second" {
		t.Fatalf("after rotation: first message %q", got)
	}

	for _, mech := range []string{config.SASLScramSHA256, config.SASLScramSHA512} {
		m, err := New(config.SASL{Mechanism: mech, Username: "u", PasswordFile: path}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if m.Name() != mech || !strings.HasPrefix(first(t, m), "n,,n=u,r=") {
			t.Errorf("%s: name %q", mech, m.Name())
		}
	}

	if _, err := New(config.SASL{Mechanism: config.SASLScramSHA256, Username: "u", PasswordFile: filepath.Join(dir, "nope")}, Options{}); err == nil ||
		!strings.Contains(err.Error(), "password file") {
		t.Errorf("missing file: %v", err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\nsecret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(config.SASL{Mechanism: config.SASLPlain, Username: "u", PasswordFile: empty}, Options{}); err == nil ||
		!strings.Contains(err.Error(), "first line is empty") {
		t.Errorf("empty first line: %v", err)
	}
}

// A static token, inline or from a file, goes in OAUTHBEARER's first
// message with the extensions.
func TestStaticToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ext := map[string]string{"logicalCluster": "lkc-1", "identityPoolId": "pool-2"}
	for token, s := range map[string]config.SASL{
		"inline":    {Mechanism: config.SASLOAuthBearer, Token: "inline", Extensions: ext},
		"from-file": {Mechanism: config.SASLOAuthBearer, TokenFile: path, Extensions: ext},
	} {
		m, err := New(s, Options{})
		if err != nil {
			t.Fatal(err)
		}
		want := "n,,\x01auth=Bearer " + token + "\x01identityPoolId=pool-2\x01logicalCluster=lkc-1\x01\x01"
		if got := first(t, m); got != want || m.Name() != "OAUTHBEARER" {
			t.Errorf("%s: %s %q, want %q", token, m.Name(), got, want)
		}
	}
}

// tokenServer is an OAuth token endpoint over TLS that hands out tok-1,
// tok-2, ... with the client-credentials grant.
type tokenServer struct {
	*httptest.Server
	asked     atomic.Int32
	expiresIn int
	refuse    atomic.Bool

	mu   sync.Mutex
	errs []string
}

func startTokenServer(t *testing.T, expiresIn int) *tokenServer {
	s := &tokenServer{expiresIn: expiresIn}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, e := range s.errs {
			t.Error("token endpoint:", e)
		}
	})
	return s
}

func (s *tokenServer) fail(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, msg)
}

func (s *tokenServer) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.Method != http.MethodPost {
		s.fail("bad request")
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if r.PostForm.Get("grant_type") != "client_credentials" || r.PostForm.Get("scope") != "kafka read" {
		s.fail("grant_type or scope is wrong: " + r.PostForm.Encode())
	}
	w.Header().Set("Content-Type", "application/json")
	if s.refuse.Load() || id != "meshka" || secret != "s3cret" {
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client", "error_description": "unknown client"})
		return
	}
	n := s.asked.Add(1)
	answer := map[string]any{"access_token": fmt.Sprintf("tok-%d", n), "token_type": "bearer"}
	if s.expiresIn > 0 {
		answer["expires_in"] = s.expiresIn
	}
	_ = json.NewEncoder(w).Encode(answer)
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func bearer(msg string) string {
	_, rest, _ := strings.Cut(msg, "auth=Bearer ")
	tok, _, _ := strings.Cut(rest, "\x01")
	return tok
}

// The client-credentials flow asks the endpoint once, reuses the token
// for every authentication until four fifths of its lifetime, then asks
// for a new one; the endpoint's refusal is the authentication's error,
// naming the endpoint and its reason.
func TestClientCredentials(t *testing.T) {
	srv := startTokenServer(t, 100)
	clk := &clock{now: time.Unix(1e9, 0)}
	s := config.SASL{Mechanism: config.SASLOAuthBearer, TokenURL: srv.URL + "/token", ClientID: "meshka", ClientSecret: "s3cret",
		Scopes: []string{"kafka", "read"}, Extensions: map[string]string{"logicalCluster": "lkc-1"}}
	m, err := New(s, Options{HTTPClient: srv.Client(), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if srv.asked.Load() != 0 {
		t.Fatal("New asked the endpoint")
	}
	msg := first(t, m)
	if bearer(msg) != "tok-1" || !strings.Contains(msg, "\x01logicalCluster=lkc-1\x01") {
		t.Fatalf("first message %q", msg)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if got := bearer(first(t, m)); got != "tok-1" {
				t.Errorf("reused token: %q", got)
			}
		})
	}
	wg.Wait()
	clk.advance(70 * time.Second)
	if got := bearer(first(t, m)); got != "tok-1" || srv.asked.Load() != 1 {
		t.Fatalf("at 70%% of its life: token %q after %d asks", got, srv.asked.Load())
	}
	clk.advance(11 * time.Second)
	if got := bearer(first(t, m)); got != "tok-2" || srv.asked.Load() != 2 {
		t.Fatalf("past 80%% of its life: token %q after %d asks", got, srv.asked.Load())
	}

	srv.refuse.Store(true)
	clk.advance(time.Hour)
	_, _, err = m.Authenticate(context.Background(), "broker:9092")
	if err == nil || !strings.Contains(err.Error(), srv.URL+"/token refused: invalid_client unknown client") {
		t.Fatalf("refused: %v", err)
	}
}

// A token without expires_in is asked for at each authentication; an
// endpoint whose certificate is not trusted fails the authentication.
func TestClientCredentialsWithoutLifetime(t *testing.T) {
	srv := startTokenServer(t, 0)
	s := config.SASL{Mechanism: config.SASLOAuthBearer, TokenURL: srv.URL, ClientID: "meshka", ClientSecret: "s3cret", Scopes: []string{"kafka", "read"}}
	m, err := New(s, Options{HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if a, b := bearer(first(t, m)), bearer(first(t, m)); a != "tok-1" || b != "tok-2" {
		t.Fatalf("tokens %q, %q", a, b)
	}

	untrusted, err := New(s, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := untrusted.Authenticate(context.Background(), "broker:9092"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted endpoint: %v", err)
	}
}
