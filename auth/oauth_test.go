package auth_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/twmb/franz-go/pkg/sasl/oauth"

	"github.com/meshka/meshka/auth"
	"github.com/meshka/meshka/config"
)

// signer is a test issuer's key.
type signer struct {
	kid    string
	key    crypto.Signer
	method jwt.SigningMethod
}

func rsaSigner(t testing.TB, kid string) signer {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return signer{kid, k, jwt.SigningMethodRS256}
}

func ecSigner(t testing.TB, kid string) signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signer{kid, k, jwt.SigningMethodES256}
}

// jwks is the public key set of signers.
func jwks(t testing.TB, signers ...signer) []byte {
	t.Helper()
	var set jwkset.JWKSMarshal
	for _, s := range signers {
		k, err := jwkset.NewJWKFromKey(s.key.Public(), jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{
			KID: s.kid, ALG: jwkset.ALG(s.method.Alg()), USE: jwkset.UseSig}})
		if err != nil {
			t.Fatal(err)
		}
		set.Keys = append(set.Keys, k.Marshal())
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const (
	issuer   = "https://idp.test"
	audience = "meshka"
)

// claims are a good token's: alice's, valid for a minute.
func claims(mod ...func(jwt.MapClaims)) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{"iss": issuer, "aud": audience, "sub": "alice", "iat": now.Unix(), "nbf": now.Unix(),
		"exp": now.Add(time.Minute).Unix()}
	for _, m := range mod {
		m(c)
	}
	return c
}

func (s signer) sign(t testing.TB, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(s.method, c)
	tok.Header["kid"] = s.kid
	out, err := tok.SignedString(s.key)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func oauthConfig(mod ...func(*config.OAuthBearer)) config.OAuthBearer {
	o := config.DefaultOAuthBearer()
	o.Issuer, o.Audience = issuer, config.StringList{"other", audience}
	for _, m := range mod {
		m(&o)
	}
	return o
}

// fromFile is a checker whose key set is a file holding signers' keys.
func fromFile(t *testing.T, cfg config.OAuthBearer, signers ...signer) *auth.OAuthBearer {
	t.Helper()
	cfg.JWKSFile = filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(cfg.JWKSFile, jwks(t, signers...), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := auth.NewOAuthBearer(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(o.Close)
	return o
}

func TestOAuthBearerCheck(t *testing.T) {
	rs, ec := rsaSigner(t, "rsa-1"), ecSigner(t, "ec-1")
	stranger := rsaSigner(t, "rsa-1") // the same key id, another key
	o := fromFile(t, oauthConfig(), rs, ec)
	claimsOnly := fromFile(t, oauthConfig(func(c *config.OAuthBearer) { c.PrincipalClaim = "client_id" }), rs)
	ago := func(d time.Duration) int64 { return time.Now().Add(-d).Unix() }
	for _, tc := range []struct {
		name  string
		o     *auth.OAuthBearer
		token string
		want  string // the principal; "" for refused
	}{
		{"RS256", o, rs.sign(t, claims()), "alice"},
		{"ES256", o, ec.sign(t, claims()), "alice"},
		{"aud as a list holding one accepted", o, rs.sign(t, claims(func(c jwt.MapClaims) { c["aud"] = []string{"x", audience} })), "alice"},
		{"expired within the clock skew", o, rs.sign(t, claims(func(c jwt.MapClaims) { c["exp"] = ago(10 * time.Second) })), "alice"},
		{"expired", o, rs.sign(t, claims(func(c jwt.MapClaims) { c["exp"] = ago(time.Minute) })), ""},
		{"no exp", o, rs.sign(t, claims(func(c jwt.MapClaims) { delete(c, "exp") })), ""},
		{"not yet valid", o, rs.sign(t, claims(func(c jwt.MapClaims) { c["nbf"] = ago(-2 * time.Minute) })), ""},
		{"issued in the future", o, rs.sign(t, claims(func(c jwt.MapClaims) { c["iat"] = ago(-2 * time.Minute) })), ""},
		{"wrong issuer", o, rs.sign(t, claims(func(c jwt.MapClaims) { c["iss"] = "https://evil.test" })), ""},
		{"wrong audience", o, rs.sign(t, claims(func(c jwt.MapClaims) { c["aud"] = "kafka" })), ""},
		{"no audience", o, rs.sign(t, claims(func(c jwt.MapClaims) { delete(c, "aud") })), ""},
		{"wrong key", o, stranger.sign(t, claims()), ""},
		{"unknown key id", o, rsaSigner(t, "rsa-2").sign(t, claims()), ""},
		{"no principal", o, rs.sign(t, claims(func(c jwt.MapClaims) { delete(c, "sub") })), ""},
		{"principal not a string", o, rs.sign(t, claims(func(c jwt.MapClaims) { c["sub"] = 7 })), ""},
		{"principal from another claim", claimsOnly, rs.sign(t, claims(func(c jwt.MapClaims) { c["client_id"] = "app-1" })), "app-1"},
		{"that claim missing", claimsOnly, rs.sign(t, claims()), ""},
		{"alg none", o, unsigned(t, claims()), ""},
		{"HS256 with the public key's bytes", o, hmacSigned(t, rs, claims()), ""},
		{"RS384, not allowed", o, signer{rs.kid, rs.key, jwt.SigningMethodRS384}.sign(t, claims()), ""},
		{"garbage", o, "a.b.c", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.o.Check(tc.token)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("accepted as %q", got.Principal)
				}
				if !auth.IsFailed(err) {
					t.Fatalf("refused with %v, not wrapping ErrFailed", err)
				}
				t.Logf("refused: %v", err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Principal != tc.want || got.Expiry.IsZero() {
				t.Fatalf("got %+v, want principal %q and an expiry", got, tc.want)
			}
		})
	}
}

func unsigned(t *testing.T, c jwt.MapClaims) string {
	tok := jwt.NewWithClaims(jwt.SigningMethodNone, c)
	tok.Header["kid"] = "rsa-1"
	s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// hmacSigned signs with HS256 keyed by the RSA public key's PEM, the
// classic confusion of an asymmetric key for a shared secret.
func hmacSigned(t *testing.T, s signer, c jwt.MapClaims) string {
	pub := s.key.Public().(*rsa.PublicKey)
	secret := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: pub.N.Bytes()})
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	tok.Header["kid"] = s.kid
	out, err := tok.SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A key set file that is not one, holds no usable key, or is too large
// keeps the checker from being built.
func TestOAuthBearerBadKeyFile(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string][]byte{
		"not json":  []byte("{"),
		"no keys":   []byte(`{"keys":[]}`),
		"only oct":  []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"s"}]}`),
		"too large": []byte(`{"keys":[],"pad":"` + strings.Repeat("x", 1<<20) + `"}`),
	} {
		cfg := oauthConfig()
		cfg.JWKSFile = filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		if err := os.WriteFile(cfg.JWKSFile, content, 0o600); err != nil {
			t.Fatal(err)
		}
		if o, err := auth.NewOAuthBearer(cfg, nil); err == nil {
			o.Close()
			t.Errorf("%s: built", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

// jwksServer serves a key set over HTTPS, counting the requests.
type jwksServer struct {
	*httptest.Server
	mu     sync.Mutex
	set    []byte
	hits   atomic.Int32
	caFile string
}

func newJWKSServer(t *testing.T, set []byte) *jwksServer {
	t.Helper()
	s := &jwksServer{set: set}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write(s.set)
	}))
	t.Cleanup(s.Close)
	s.caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(s.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *jwksServer) serve(set []byte) {
	s.mu.Lock()
	s.set = set
	s.mu.Unlock()
}

// A token naming a key id the set lacks makes the set be fetched again,
// which finds a rotated key; another unknown key id soon after makes no
// fetch (at most one per 10 s).
func TestOAuthBearerUnknownKeyIDRefetch(t *testing.T) {
	old, rotated := ecSigner(t, "2024"), ecSigner(t, "2025")
	srv := newJWKSServer(t, jwks(t, old))
	o, err := auth.NewOAuthBearer(oauthConfig(func(c *config.OAuthBearer) {
		c.JWKSURL, c.JWKSCAFile = srv.URL+"/keys", srv.caFile
	}), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(o.Close)
	if _, err := o.Check(old.sign(t, claims())); err != nil {
		t.Fatal(err)
	}
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("%d fetches at the start", n)
	}
	srv.serve(jwks(t, old, rotated))
	if _, err := o.Check(rotated.sign(t, claims())); err != nil {
		t.Fatalf("the rotated key: %v", err)
	}
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("%d fetches after the rotated key, want 2", n)
	}
	if _, err := o.Check(ecSigner(t, "2026").sign(t, claims())); err == nil {
		t.Fatal("a key in no set was accepted")
	}
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("%d fetches after a second unknown key id within 10 s, want 2", n)
	}
	if _, err := o.Check(old.sign(t, claims())); err != nil {
		t.Fatal(err)
	}
}

// Without jwks_ca_file the test server's certificate is not trusted:
// the checker is built (the issuer may come up later) and refuses
// tokens until a set is loaded.
func TestOAuthBearerUntrustedJWKSServer(t *testing.T) {
	k := ecSigner(t, "k")
	srv := newJWKSServer(t, jwks(t, k))
	o, err := auth.NewOAuthBearer(oauthConfig(func(c *config.OAuthBearer) { c.JWKSURL = srv.URL }), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if _, err := o.Check(k.sign(t, claims())); err == nil {
		t.Fatal("accepted with no key set loaded")
	}
}

// franz-go's OAUTHBEARER client against the server side: a good token
// authenticates; a refused one is answered with the JSON error, the
// client's 0x01 then fails the exchange; an authzid other than the
// token's principal is refused.
func TestOAuthBearerWithFranzGosClient(t *testing.T) {
	k := rsaSigner(t, "k")
	o := fromFile(t, oauthConfig(), k)
	us, err := auth.NewUsers(nil)
	if err != nil {
		t.Fatal(err)
	}
	us.SetOAuthBearer(o)
	for _, tc := range []struct {
		name string
		auth oauth.Auth
		ok   bool
	}{
		{"good", oauth.Auth{Token: k.sign(t, claims()), Extensions: map[string]string{"logicalCluster": "lkc-1"}}, true},
		{"authzid the principal", oauth.Auth{Zid: "alice", Token: k.sign(t, claims())}, true},
		{"authzid another", oauth.Auth{Zid: "bob", Token: k.sign(t, claims())}, false},
		{"wrong audience", oauth.Auth{Token: k.sign(t, claims(func(c jwt.MapClaims) { c["aud"] = "x" }))}, false},
		{"expired", oauth.Auth{Token: k.sign(t, claims(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() }))}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := us.Start(auth.OAuthBearerName, config.SASLMechanisms)
			if err != nil {
				t.Fatal(err)
			}
			err = converse(t, s, tc.auth.AsMechanism())
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				if s.User() != "alice" || s.(auth.Expirer).Expiry().IsZero() {
					t.Fatalf("authenticated as %q, expiry %v", s.User(), s.(auth.Expirer).Expiry())
				}
				return
			}
			if err == nil || s.Done() {
				t.Fatalf("authenticated as %q", s.User())
			}
			if !auth.IsFailed(err) {
				t.Fatalf("refused with %v, not wrapping ErrFailed", err)
			}
		})
	}
	withoutOAuth, _ := auth.NewUsers(nil)
	if _, err := withoutOAuth.Start(auth.OAuthBearerName, config.SASLMechanisms); err == nil {
		t.Fatal("OAUTHBEARER started without security.oauthbearer")
	}
}

func TestParseOAuthBearer(t *testing.T) {
	for _, tc := range []struct {
		in     string
		authz  string
		token  string
		exts   int
		reason string // "" for parsed
	}{
		{in: "n,,\x01auth=Bearer abc.def.ghi\x01\x01", token: "abc.def.ghi"},
		{in: "n,a=al=2Cice,\x01auth=bearer  tok\x01x=1\x01yY=a b\x01\x01", authz: "al,ice", token: "tok", exts: 2},
		{in: "y,,\x01auth=Bearer t\x01\x01", token: "t"},
		{in: "p=tls-unique,,\x01auth=Bearer t\x01\x01", reason: "channel binding"},
		{in: "n,,auth=Bearer t\x01\x01", reason: "no 0x01"},
		{in: "n,,\x01auth=Bearer t\x01", reason: "a key=value pair"},
		{in: "n,,\x01auth=Bearer t", reason: "end with 0x01"},
		{in: "n,,\x01\x01", reason: "no auth"},
		{in: "n,,\x01auth=Basic dXNlcg==\x01\x01", reason: "Bearer"},
		{in: "n,,\x01auth=Bearer a b\x01\x01", reason: "Bearer"},
		{in: "n,,\x01auth=Bearer t\x01auth=Bearer u\x01\x01", reason: "twice"},
		{in: "n,,\x01auth=Bearer t\x01x=1\x01x=2\x01\x01", reason: "twice"},
		{in: "n,,\x01auth=Bearer t\x01x1=1\x01\x01", reason: "letters only"},
		{in: "n,,\x01auth=Bearer t\x01x=\x01\x01", reason: "empty"},
		{in: "n,,\x01auth=Bearer t\x01x\x01\x01", reason: "without '='"},
		{in: "n,a=,\x01auth=Bearer t\x01\x01", reason: "authorization identity"},
		{in: "n,a=a=b,\x01auth=Bearer t\x01\x01", reason: "malformed"},
		{in: "n", reason: "GS2"},
	} {
		m, err := auth.ParseOAuthBearer([]byte(tc.in))
		if tc.reason != "" {
			if err == nil || !strings.Contains(err.Error(), tc.reason) || !auth.IsFailed(err) {
				t.Errorf("%q: got %+v, %v; want an error about %q", tc.in, m, err, tc.reason)
			}
			continue
		}
		if err != nil || m.Authzid != tc.authz || m.Token != tc.token || len(m.Extensions) != tc.exts {
			t.Errorf("%q: got %+v, %v", tc.in, m, err)
		}
	}
}
