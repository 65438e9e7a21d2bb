package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// A security.oauthbearer section starts from the defaults; audience is a
// string or a list; a list in the file replaces the default one.
func TestOAuthBearerDecodes(t *testing.T) {
	cfg, err := Parse("m.yaml", []byte(`
security:
  oauthbearer:
    jwks_url: "https://idp.example.com/keys"
    issuer: "https://idp.example.com"
    audience: meshka
`))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultOAuthBearer()
	want.JWKSURL, want.Issuer, want.Audience = "https://idp.example.com/keys", "https://idp.example.com", StringList{"meshka"}
	if got := cfg.Security.OAuthBearer; got == nil || !reflect.DeepEqual(*got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}

	cfg, err = Parse("m.yaml", []byte(`
security:
  oauthbearer:
    jwks_file: /etc/meshka/jwks.json
    issuer: idp
    audience: [a, b]
    clock_skew: 0s
    jwks_refresh: 1m
    principal_claim: client_id
    allowed_algorithms: [ES384]
`))
	if err != nil {
		t.Fatal(err)
	}
	o := cfg.Security.OAuthBearer
	if !slices.Equal(o.Audience, []string{"a", "b"}) || o.ClockSkew != 0 || o.JWKSRefresh.D() != time.Minute ||
		o.PrincipalClaim != "client_id" || !slices.Equal(o.AllowedAlgorithms, []string{"ES384"}) {
		t.Fatalf("got %+v", o)
	}

	_, err = Parse("m.yaml", []byte("security:\n  oauthbearer:\n    jwks_file: k\n    issuer: i\n    audience: {a: b}\n"))
	if err == nil || !strings.Contains(err.Error(), "security.oauthbearer.audience: expected a string or a list of strings") {
		t.Fatalf("audience as a mapping: %v", err)
	}
}

func TestOAuthBearerValidate(t *testing.T) {
	good := func() *OAuthBearer {
		o := DefaultOAuthBearer()
		o.JWKSURL, o.Issuer, o.Audience = "https://idp.example.com/keys", "https://idp.example.com", StringList{"meshka"}
		return &o
	}
	const p = "security.oauthbearer"
	for _, tc := range []struct {
		name   string
		modify func(*OAuthBearer)
		path   string // "" means valid
		msg    string
	}{
		{"good", func(*OAuthBearer) {}, "", ""},
		{"file", func(o *OAuthBearer) { o.JWKSURL, o.JWKSFile = "", "/etc/jwks.json" }, "", ""},
		{"no keys", func(o *OAuthBearer) { o.JWKSURL = "" }, p, "jwks_file or jwks_url is required"},
		{"both", func(o *OAuthBearer) { o.JWKSFile = "k.json" }, p, "set jwks_file or jwks_url, not both"},
		{"http", func(o *OAuthBearer) { o.JWKSURL = "http://idp/keys" }, p + ".jwks_url", "must be an https:// URL"},
		{"ca without url", func(o *OAuthBearer) { o.JWKSURL, o.JWKSFile, o.JWKSCAFile = "", "k", "ca.pem" }, p + ".jwks_ca_file", "is for jwks_url"},
		{"refresh too often", func(o *OAuthBearer) { o.JWKSRefresh = Duration(time.Second) }, p + ".jwks_refresh", "between 10s and 24h"},
		{"no issuer", func(o *OAuthBearer) { o.Issuer = "" }, p + ".issuer", "must not be empty"},
		{"no audience", func(o *OAuthBearer) { o.Audience = nil }, p + ".audience", "at least one audience"},
		{"empty audience", func(o *OAuthBearer) { o.Audience = StringList{"a", ""} }, p + ".audience[1]", "must not be empty"},
		{"skew", func(o *OAuthBearer) { o.ClockSkew = Duration(time.Hour) }, p + ".clock_skew", "between 0s and 10m"},
		{"no claim", func(o *OAuthBearer) { o.PrincipalClaim = "" }, p + ".principal_claim", "must not be empty"},
		{"no algorithms", func(o *OAuthBearer) { o.AllowedAlgorithms = nil }, p + ".allowed_algorithms", "at least one"},
		{"none", func(o *OAuthBearer) { o.AllowedAlgorithms = []string{"RS256", "none"} }, p + ".allowed_algorithms[1]", "never accepted"},
		{"hmac", func(o *OAuthBearer) { o.AllowedAlgorithms = []string{"HS256"} }, p + ".allowed_algorithms[0]", "HMAC needs a shared secret"},
		{"unknown", func(o *OAuthBearer) { o.AllowedAlgorithms = []string{"rs256"} }, p + ".allowed_algorithms[0]", "want one of RS256"},
		{"twice", func(o *OAuthBearer) { o.AllowedAlgorithms = []string{"ES256", "ES256"} }, p + ".allowed_algorithms[1]", "named twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			c.Security.OAuthBearer = good()
			tc.modify(c.Security.OAuthBearer)
			checkOne(t, c.Validate(), tc.path, tc.msg)
		})
	}
}

func checkOne(t *testing.T, errs Errors, path, msg string) {
	t.Helper()
	if path == "" {
		if len(errs) != 0 {
			t.Fatalf("unexpected errors:\n%v", errs)
		}
		return
	}
	if len(errs) != 1 || errs[0].Path != path || !strings.Contains(errs[0].Msg, msg) {
		t.Fatalf("got errors:\n%v\nwant one at %s containing %q", errs, path, msg)
	}
}

// What a SASL listener offers by default is what the security section
// configures, and a mechanism named needs what it checks against.
func TestListenerMechanisms(t *testing.T) {
	user := User{Name: "alice", ScramSHA512: &ScramCredential{Salt: "c2FsdA==", Iterations: 4096, StoredKey: "a2V5", ServerKey: "a2V5"}}
	ob := DefaultOAuthBearer()
	ob.JWKSFile, ob.Issuer, ob.Audience = "k.json", "i", StringList{"a"}
	users := Security{Users: []User{user}}
	tokens := Security{OAuthBearer: &ob}
	both := Security{Users: []User{user}, OAuthBearer: &ob}
	for _, tc := range []struct {
		name string
		sec  Security
		mech []string
		want []string
		path string
		msg  string
	}{
		{"users: all of theirs", users, nil, []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}, "", ""},
		{"tokens only", tokens, nil, []string{"OAUTHBEARER"}, "", ""},
		{"both", both, nil, SASLMechanisms, "", ""},
		{"named", both, []string{"OAUTHBEARER", "PLAIN"}, []string{"OAUTHBEARER", "PLAIN"}, "", ""},
		{"neither", Security{}, nil, nil, "kafka.listeners[0].security_protocol", "needs users to check (security.users) or tokens to check (security.oauthbearer)"},
		{"OAUTHBEARER without oauthbearer", users, []string{"SCRAM-SHA-512", "OAUTHBEARER"}, nil, "kafka.listeners[0].sasl_mechanisms[1]", "OAUTHBEARER needs security.oauthbearer"},
		{"PLAIN without users", tokens, []string{"PLAIN"}, nil, "kafka.listeners[0].sasl_mechanisms[0]", "PLAIN needs users"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			c.Security = tc.sec
			l := Listener{Name: "sasl", Listen: "127.0.0.1:0", SecurityProtocol: SASLPlaintext, SASLMechanisms: tc.mech}
			c.Kafka.Listeners = []Listener{l}
			checkOne(t, c.Validate(), tc.path, tc.msg)
			if tc.path == "" && !slices.Equal(l.Mechanisms(c.Security), tc.want) {
				t.Fatalf("offers %v, want %v", l.Mechanisms(c.Security), tc.want)
			}
		})
	}
}
