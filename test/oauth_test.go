package test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"

	"github.com/meshka/meshka/config"
)

// testIssuer is an OAuth issuer for tests: an EC key that signs tokens,
// its public key set served over HTTPS by a server whose certificate
// the node trusts through jwks_ca_file.
type testIssuer struct {
	srv    *httptest.Server
	key    *ecdsa.PrivateKey
	caFile string
	url    string
}

const (
	testIssuerName = "https://issuer.meshka.test"
	testAudience   = "meshka-edge"
)

func newTestIssuer(t *testing.T) *testIssuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwk, err := jwkset.NewJWKFromKey(&key.PublicKey, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{
		KID: "test-1", ALG: jwkset.AlgES256, USE: jwkset.UseSig}})
	if err != nil {
		t.Fatal(err)
	}
	set, err := json.Marshal(jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{jwk.Marshal()}})
	if err != nil {
		t.Fatal(err)
	}
	is := &testIssuer{key: key}
	is.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(set)
	}))
	t.Cleanup(is.srv.Close)
	is.url = is.srv.URL + "/.well-known/jwks.json"
	is.caFile = filepath.Join(t.TempDir(), "issuer-ca.pem")
	if err := os.WriteFile(is.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: is.srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return is
}

// configure sets security.oauthbearer to check the issuer's tokens.
func (is *testIssuer) configure(cfg *config.Config) {
	o := config.DefaultOAuthBearer()
	o.JWKSURL, o.JWKSCAFile = is.url, is.caFile
	o.Issuer, o.Audience = testIssuerName, config.StringList{testAudience}
	cfg.Security.OAuthBearer = &o
}

// token is a token for sub, for aud, valid for valid from now (negative:
// expired that long ago).
func (is *testIssuer) token(t testing.TB, sub, aud string, valid time.Duration) string {
	t.Helper()
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": testIssuerName, "aud": aud, "sub": sub, "iat": now.Add(-time.Minute).Unix(), "exp": now.Add(valid).Unix()})
	tok.Header["kid"] = "test-1"
	s, err := tok.SignedString(is.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// mechanism is franz-go's OAUTHBEARER with a new token for alice at each
// authentication, valid for valid; calls counts them.
func (is *testIssuer) mechanism(t testing.TB, valid time.Duration, calls *atomic.Int32) sasl.Mechanism {
	return oauth.Oauth(func(context.Context) (oauth.Auth, error) {
		if calls != nil {
			calls.Add(1)
		}
		return oauth.Auth{Token: is.token(t, "alice", testAudience, valid)}, nil
	})
}

// An expired token and a token for another audience are refused with
// SASL_AUTHENTICATION_FAILED; a client of the same node with a good
// token keeps working throughout.
func TestOAuthBearerRefused(t *testing.T) {
	s := startSecured(t)
	ctx := timeout(t, 2*time.Minute)
	createTopic(t, ctx, s.env.DirectClient(t), "oauth-refused", 1, nil)
	good := s.client(t, "sasl", kgo.SASL(s.issuer.mechanism(t, time.Hour, nil)))
	produce := func(what string) {
		t.Helper()
		if err := good.ProduceSync(ctx, &kgo.Record{Topic: "oauth-refused", Value: []byte(what)}).FirstErr(); err != nil {
			t.Fatalf("the good client, %s: %v", what, err)
		}
	}
	produce("before")
	for _, tc := range []struct {
		name, listener, token string
	}{
		{"expired", "sasl", s.issuer.token(t, "alice", testAudience, -5*time.Minute)},
		{"wrong audience", "sasl", s.issuer.token(t, "alice", "someone-else", time.Hour)},
		{"expired over TLS", "sasl_ssl", s.issuer.token(t, "alice", testAudience, -time.Hour)},
		{"not a JWT", "sasl", "not-a-jwt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := []kgo.Opt{kgo.SASL(oauth.Auth{Token: tc.token}.AsMechanism())}
			if tc.listener == "sasl_ssl" {
				opts = append(opts, kgo.DialTLSConfig(s.tls()))
			}
			err := refusedWith(t, ctx, s.client(t, tc.listener, opts...), kerr.SaslAuthenticationFailed)
			t.Logf("refused: %v", err)
			produce("after " + tc.name)
		})
	}
}

// A token bounds the session (KIP-368) even with no
// security.sasl.session_lifetime: SaslAuthenticate answers the token's
// remaining validity, a connection that does not authenticate again is
// closed at its first request after exp, and franz-go, which
// authenticates again with a fresh token, keeps producing across several
// tokens' lifetimes.
func TestOAuthBearerTokenBoundsTheSession(t *testing.T) {
	s := startSecured(t)
	ctx := timeout(t, 2*time.Minute)
	createTopic(t, ctx, s.env.DirectClient(t), "oauth-expiry", 1, nil)

	const valid = 2 * time.Second
	token := []byte("n,,\x01auth=Bearer " + s.issuer.token(t, "alice", testAudience, valid) + "\x01\x01")
	c, left := rawAuthenticated(t, s.addr(t, "sasl"), "OAUTHBEARER", token, valid)
	closedAfter(t, c, left)

	var tokens atomic.Int32
	const lifetime = 3 * time.Second
	cl := s.client(t, "sasl", kgo.SASL(s.issuer.mechanism(t, lifetime, &tokens)))
	end := time.Now().Add(2*lifetime + lifetime/2)
	n := 0
	for time.Now().Before(end) {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "oauth-expiry", Value: []byte(fmt.Sprint(n))}).FirstErr(); err != nil {
			t.Fatalf("record %d, token %d: %v", n, tokens.Load(), err)
		}
		n++
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%d records produced across %s with %d tokens", n, 2*lifetime+lifetime/2, tokens.Load())
}
