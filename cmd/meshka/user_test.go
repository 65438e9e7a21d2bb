package main

import (
	"bytes"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/meshka/meshka/auth"
	"github.com/meshka/meshka/config"
)

// The entry user add prints is a security.users entry that PLAIN (and so
// the SCRAM credential it checks against) accepts the password for, and
// no other.
func TestUserAdd(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := userCmd([]string{"add", "bob", "--mechanism", "SCRAM-SHA-512", "--iterations", "4096"},
		strings.NewReader("bob-secret\n"), &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if strings.Contains(out.String(), "bob-secret") {
		t.Fatal("the password is in the entry")
	}
	var entries []config.User
	if err := yaml.Unmarshal(out.Bytes(), &entries); err != nil {
		t.Fatalf("%v:\n%s", err, out.String())
	}
	if len(entries) != 1 || entries[0].Name != "bob" || entries[0].ScramSHA512 == nil || entries[0].ScramSHA256 != nil ||
		entries[0].ScramSHA512.Iterations != 4096 {
		t.Fatalf("entry: %+v", entries)
	}
	users, err := auth.NewUsers(entries)
	if err != nil {
		t.Fatal(err)
	}
	for pw, ok := range map[string]bool{"bob-secret": true, "bob-secret2": false} {
		s, err := users.Start(auth.Plain, config.SASLMechanisms)
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Step([]byte("\x00bob\x00" + pw))
		if (err == nil) != ok {
			t.Errorf("password %q: %v", pw, err)
		}
	}
	for _, bad := range [][]string{{"add"}, {"add", "x", "--iterations", "10"}, {"add", "x", "--mechanism", "MD5"}, {"remove"}} {
		if code := userCmd(bad, strings.NewReader("pw\n"), &out, &errOut); code == 0 {
			t.Errorf("%v: exit 0", bad)
		}
	}
	if code := userCmd([]string{"add", "x"}, strings.NewReader(""), &out, &errOut); code == 0 {
		t.Error("an empty password: exit 0")
	}
}
