package auth_test

import (
	"strings"
	"testing"

	"github.com/meshka/meshka/auth"
	"github.com/meshka/meshka/config"
)

// A PLAIN token of any bytes is parsed or refused, never a panic.
func FuzzParsePlain(f *testing.F) {
	f.Add([]byte("\x00alice\x00secret"))
	f.Add([]byte("alice\x00alice\x00secret"))
	f.Add([]byte("\x00\x00"))
	f.Fuzz(func(t *testing.T, in []byte) {
		user, password, err := auth.ParsePlain(in)
		if err == nil && (user == "" || password == "") {
			t.Fatalf("accepted %q with user %q password %q", in, user, password)
		}
	})
}

// A SCRAM conversation fed any client-first and client-final messages
// ends refused (they are not a real client's proof), never a panic, and
// never authenticates.
func FuzzScramServer(f *testing.F) {
	us := users(f)
	f.Add([]byte("n,,n=alice,r=abcdef"), []byte("c=biws,r=abcdefXYZ,p=AAAA"))
	f.Add([]byte("n,a=bob,n=alice,r=x"), []byte(""))
	f.Add([]byte("y,,n=al=2Cice,r=1"), []byte("c=eSws,r=1,p=="))
	f.Add([]byte("p=tls-unique,,n=alice,r=1"), []byte("c=,r=,p="))
	f.Fuzz(func(t *testing.T, first, final []byte) {
		for _, mech := range []string{auth.ScramSHA256, auth.ScramSHA512} {
			s, err := us.Start(mech, config.SASLMechanisms)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Step(first); err != nil {
				continue
			}
			_, _ = s.Step(final)
			if s.Done() {
				t.Fatalf("%s authenticated %q from fuzzed messages", mech, s.User())
			}
		}
	})
}

// An OAUTHBEARER client message of any bytes is parsed or refused, never
// a panic; one parsed has a token, and holds no 0x01 in what it returns.
func FuzzParseOAuthBearer(f *testing.F) {
	f.Add([]byte("n,,\x01auth=Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln\x01\x01"))
	f.Add([]byte("n,a=alice,\x01auth=Bearer t\x01logicalCluster=lkc-1\x01identityPoolId=pool\x01\x01"))
	f.Add([]byte("n,a=a=2Cb=3D,\x01auth=bearer   t==\x01\x01"))
	f.Add([]byte("y,,\x01\x01"))
	f.Add([]byte("n,,\x01auth=Bearer t\x01x=\x7f\x01\x01"))
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := auth.ParseOAuthBearer(in)
		if err != nil {
			if !auth.IsFailed(err) {
				t.Fatalf("%q: an error not wrapping ErrFailed: %v", in, err)
			}
			return
		}
		if m.Token == "" {
			t.Fatalf("%q parsed without a token", in)
		}
		for k, v := range m.Extensions {
			if k == "" || v == "" || strings.ContainsRune(k+v, 1) || k == "auth" {
				t.Fatalf("%q: extension %q=%q", in, k, v)
			}
		}
		if strings.ContainsRune(m.Token+m.Authzid, 1) {
			t.Fatalf("%q: 0x01 in token %q or authzid %q", in, m.Token, m.Authzid)
		}
	})
}
