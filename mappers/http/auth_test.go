package httpmap_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/meshka/meshka/auth"
	"github.com/meshka/meshka/config"
)

// Basic credentials are checked against security.users, a Bearer token
// against security.oauthbearer's issuer; without anonymous access a
// request without either is 401; ACLs answer 403 per topic and
// operation.
func TestAuthenticationAndACLs(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwk, err := jwkset.NewJWKFromKey(key.Public(), jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: "k1", ALG: jwkset.AlgES256, USE: jwkset.UseSig}})
	if err != nil {
		t.Fatal(err)
	}
	set, _ := json.Marshal(jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{jwk.Marshal()}})
	jwksFile := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(jwksFile, set, 0o600); err != nil {
		t.Fatal(err)
	}
	cred, err := auth.NewCredential(auth.ScramSHA256, "alice", "a-secret", 4096)
	if err != nil {
		t.Fatal(err)
	}
	_, base := start(t, func(cfg *config.Config) {
		cfg.HTTP.Confluent = true
		cfg.HTTP.Routes = slices.Concat(cfg.HTTP.Routes, wsRoutes)
		cfg.HTTP.AllowAnonymous = false
		cfg.Security.Users = []config.User{{Name: "alice", ScramSHA256: cred}}
		o := config.DefaultOAuthBearer()
		o.JWKSFile, o.Issuer, o.Audience = jwksFile, "https://idp.test", config.StringList{"meshka"}
		cfg.Security.OAuthBearer = &o
		cfg.Security.ACLs = config.ACLs{Enabled: true, Rules: []config.ACLRule{
			{Principal: "User:alice", Resource: "topic", Name: "events", Operations: []string{"write"}},
			{Principal: "User:bob", Resource: "topic", Name: "events", Operations: []string{"read"}},
			{Principal: "User:bob", Resource: "group", Name: "bobs", Operations: []string{"read"}},
		}}
	})
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": "https://idp.test", "aud": "meshka", "sub": "bob",
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix()})
	tok.Header["kid"] = "k1"
	bearer, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	basic := func(user, password string) map[string]string {
		return map[string]string{"Authorization": "Basic " + basicAuth(user, password)}
	}
	for _, c := range []struct {
		name, method, path string
		header             map[string]string
		want               int
	}{
		{"anonymous", "GET", "/events", nil, 401},
		{"wrong password", "POST", "/events/1", basic("alice", "nope"), 401},
		{"alice writes", "POST", "/events/1", basic("alice", "a-secret"), 201},
		{"alice may not read", "GET", "/events", basic("alice", "a-secret"), 403},
		{"bob reads with a token", "GET", "/events", map[string]string{"Authorization": "Bearer " + bearer}, 200},
		{"bob may not write", "POST", "/events/2", map[string]string{"Authorization": "Bearer " + bearer}, 403},
		{"a bad token", "GET", "/events", map[string]string{"Authorization": "Bearer x.y.z"}, 401},
		{"bob may not produce through v2", "POST", "/topics/events", map[string]string{"Authorization": "Bearer " + bearer,
			"Content-Type": "application/vnd.kafka.json.v2+json"}, 403},
		{"alice produces through v2", "POST", "/topics/events", map[string]string{"Authorization": "Basic " + basicAuth("alice", "a-secret"),
			"Content-Type": "application/vnd.kafka.json.v2+json"}, 200},
	} {
		payload := "{}"
		if strings.HasPrefix(c.path, "/topics/") {
			payload = `{"records":[{"value":{"n":1}}]}`
		}
		if resp, body := do(t, c.method, base+c.path, payload, c.header); resp.StatusCode != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, resp.StatusCode, body, c.want)
		}
	}

	// The Confluent API lists and describes only what the principal may
	// describe; its consumer instances need READ on the group and on each
	// topic subscribed.
	bob := map[string]string{"Authorization": "Bearer " + bearer, "Content-Type": "application/vnd.kafka.v2+json"}
	if resp, body := do(t, "GET", base+"/topics", "", bob); resp.StatusCode != 200 || strings.TrimSpace(body) != `["events"]` {
		t.Errorf("bob's topics: %d %s", resp.StatusCode, body)
	}
	if resp, body := do(t, "GET", base+"/v3/clusters/"+clusterID+"/topics", "", bob); resp.StatusCode != 200 ||
		!strings.Contains(body, `"topic_name":"events"`) || strings.Contains(body, `"topic_name":"items"`) {
		t.Errorf("bob's v3 topics: %d %s", resp.StatusCode, body)
	}
	for _, c := range []struct {
		name, method, path, body string
		want                     int
	}{
		{"bob may not describe items", "GET", "/topics/items", "", 403},
		{"bob may not describe items in v3", "GET", "/v3/clusters/" + clusterID + "/topics/items/partitions", "", 403},
		{"bob may not join group g", "POST", "/consumers/g", `{"name":"b1"}`, 403},
		{"bob joins group bobs", "POST", "/consumers/bobs", `{"name":"b1"}`, 200},
		{"bob may not subscribe to items", "POST", "/consumers/bobs/instances/b1/subscription", `{"topics":["items"]}`, 403},
		{"bob subscribes to events", "POST", "/consumers/bobs/instances/b1/subscription", `{"topics":["events"]}`, 204},
	} {
		if resp, body := do(t, c.method, base+c.path, c.body, bob); resp.StatusCode != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, resp.StatusCode, body, c.want)
		}
	}

	// bob may read over a WebSocket, and is closed with 1008 when he writes
	ws := dialWS(t, "ws"+strings.TrimPrefix(base, "http")+"/ws", &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + bearer}}})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"x":1}`)); err != nil {
		t.Fatal(err)
	}
	_, _, err = ws.Read(ctx)
	if code := websocket.CloseStatus(err); code != websocket.StatusPolicyViolation {
		t.Fatalf("bob's frame: %v (code %d), want 1008", err, code)
	}
}
