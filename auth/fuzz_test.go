package auth_test

import (
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
