package acl

import (
	"fmt"
	"testing"

	"github.com/meshka/meshka/config"
)

// BenchmarkAuthorize is the check Produce and Fetch make per topic, with
// a policy of a few hundred rules: literal, prefixed and wildcard.
func BenchmarkAuthorize(b *testing.B) {
	var rules []config.ACLRule
	for i := 0; i < 100; i++ {
		rules = append(rules,
			rule(fmt.Sprintf("User:u%d", i), "topic", fmt.Sprintf("t%d", i), "", "allow", "", "write", "read"),
			rule(fmt.Sprintf("User:u%d", i), "topic", fmt.Sprintf("p%d-", i), "prefixed", "allow", "", "read"),
			rule(fmt.Sprintf("User:u%d", i), "group", fmt.Sprintf("g%d", i), "", "allow", "", "read"))
	}
	rules = append(rules, rule("User:*", "topic", "*", "", "deny", "10.0.0.9", "all"))
	c := config.Security{ACLs: config.ACLs{Enabled: true, Rules: rules}}
	p, err := FromConfig(c)
	if err != nil {
		b.Fatal(err)
	}
	a := New(p)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if !a.Authorize("User:u42", local, Write, Topic, "t42") {
			b.Fatal("refused")
		}
	}
}

// BenchmarkAuthorizeDisabled is the whole cost with acls.enabled false.
func BenchmarkAuthorizeDisabled(b *testing.B) {
	a := New(nil)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if !a.Authorize("User:u42", local, Write, Topic, "t42") {
			b.Fatal("refused")
		}
	}
}
