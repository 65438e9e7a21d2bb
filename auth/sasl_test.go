package auth_test

import (
	"context"
	"crypto/x509/pkix"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/meshka/meshka/auth"
	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/internal/testcert"
)

func users(t testing.TB) *auth.Users {
	t.Helper()
	var cfg []config.User
	for _, u := range []struct{ name, password string }{{"alice", "alice-secret"}, {"bob", "bob-secret"}} {
		s256, err := auth.NewCredential(auth.ScramSHA256, u.name, u.password, 4096)
		if err != nil {
			t.Fatal(err)
		}
		s512, err := auth.NewCredential(auth.ScramSHA512, u.name, u.password, 4096)
		if err != nil {
			t.Fatal(err)
		}
		cfg = append(cfg, config.User{Name: u.name, ScramSHA256: s256, ScramSHA512: s512})
	}
	us, err := auth.NewUsers(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return us
}

// converse runs franz-go's client side of mech against a server session,
// as a Kafka client's SaslAuthenticate requests would.
func converse(t *testing.T, server auth.Session, mech sasl.Mechanism) error {
	t.Helper()
	session, first, err := mech.Authenticate(context.Background(), "meshka:9092")
	if err != nil {
		t.Fatal(err)
	}
	in := first
	for {
		out, err := server.Step(in)
		if err != nil {
			return err
		}
		done, next, err := session.Challenge(out)
		if err != nil {
			return err
		}
		if done {
			if !server.Done() {
				t.Fatal("the client is done and the server is not")
			}
			return nil
		}
		in = next
	}
}

func TestMechanismsWithFranzGosClients(t *testing.T) {
	us := users(t)
	all := config.SASLMechanisms
	for _, tc := range []struct {
		name, mech string
		client     sasl.Mechanism
		ok         bool
	}{
		{"PLAIN", auth.Plain, plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism(), true},
		{"PLAIN wrong password", auth.Plain, plain.Auth{User: "alice", Pass: "nope"}.AsMechanism(), false},
		{"PLAIN unknown user", auth.Plain, plain.Auth{User: "carol", Pass: "alice-secret"}.AsMechanism(), false},
		{"PLAIN acting as another", auth.Plain, plain.Auth{Zid: "bob", User: "alice", Pass: "alice-secret"}.AsMechanism(), false},
		{"SCRAM-SHA-256", auth.ScramSHA256, scram.Auth{User: "bob", Pass: "bob-secret"}.AsSha256Mechanism(), true},
		{"SCRAM-SHA-512", auth.ScramSHA512, scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha512Mechanism(), true},
		{"SCRAM-SHA-512 wrong password", auth.ScramSHA512, scram.Auth{User: "alice", Pass: "bob-secret"}.AsSha512Mechanism(), false},
		{"SCRAM-SHA-256 unknown user", auth.ScramSHA256, scram.Auth{User: "carol", Pass: "x"}.AsSha256Mechanism(), false},
		{"SCRAM-SHA-512 acting as another", auth.ScramSHA512, scram.Auth{Zid: "bob", User: "alice", Pass: "alice-secret"}.AsSha512Mechanism(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := us.Start(tc.mech, all)
			if err != nil {
				t.Fatal(err)
			}
			err = converse(t, s, tc.client)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				if s.User() == "" {
					t.Fatal("authenticated as no one")
				}
				return
			}
			if err == nil {
				t.Fatalf("authenticated as %q", s.User())
			}
			if !auth.IsFailed(err) && !errors.Is(err, auth.ErrFailed) {
				// The client may give up first (a SCRAM server-first it
				// cannot use); the server must not have authenticated.
				if s.Done() {
					t.Fatalf("the server authenticated %q: %v", s.User(), err)
				}
			}
		})
	}
	if _, err := us.Start("GSSAPI", all); err == nil {
		t.Fatal("GSSAPI started")
	}
	if _, err := us.Start(auth.Plain, []string{auth.ScramSHA512}); err == nil {
		t.Fatal("PLAIN started where only SCRAM-SHA-512 is offered")
	}
}

func TestPrincipalMapping(t *testing.T) {
	dir := t.TempDir()
	ca, err := testcert.NewCA(dir, "ca")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.Client("alice", pkix.Name{CommonName: "Alice", OrganizationalUnit: []string{"apps"}, Organization: []string{"Example"}})
	if err != nil {
		t.Fatal(err)
	}
	rule := func(s string) config.PrincipalRule {
		r, err := config.ParsePrincipalRule(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, tc := range []struct {
		rules []config.PrincipalRule
		want  string
	}{
		{nil, "User:CN=Alice,OU=apps,O=Example"},
		{[]config.PrincipalRule{rule("RULE:^CN=(.*?),OU=(.*?),.*$/$1@$2/L")}, "User:alice@apps"},
		{[]config.PrincipalRule{rule("RULE:^CN=(.*?),OU=ops,.*$/$1/"), rule("DEFAULT")}, "User:CN=Alice,OU=apps,O=Example"},
		{[]config.PrincipalRule{rule("RULE:^CN=([^,]*).*$/$1/U")}, "User:ALICE"},
		{[]config.PrincipalRule{rule("RULE:^O=x\\/y$/z/")}, ""},
	} {
		got, err := auth.CertPrincipal(pair.Cert, tc.rules)
		if tc.want == "" {
			if err == nil {
				t.Errorf("no rule should match, got %q", got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("got %q, %v; want %q", got, err, tc.want)
		}
	}
	for _, bad := range []string{"RULE:x", "RULE:a/b/X", "RULE:(/b/", "CUSTOM"} {
		if _, err := config.ParsePrincipalRule(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
