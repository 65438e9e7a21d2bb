package acl

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/meshka/meshka/config"
)

var (
	local = netip.MustParseAddr("127.0.0.1")
	other = netip.MustParseAddr("10.0.0.9")
)

func policy(t *testing.T, allowIfNoMatch bool, rules ...config.ACLRule) *Policy {
	t.Helper()
	c := config.Default()
	c.Security.SuperUsers = []string{"User:admin"}
	c.Security.ACLs = config.ACLs{Enabled: true, AllowIfNoMatch: allowIfNoMatch, Rules: rules}
	if errs := c.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	p, err := FromConfig(c.Security)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func rule(principal, resource, name, pattern, permission, host string, ops ...string) config.ACLRule {
	return config.ACLRule{Principal: principal, Resource: resource, Name: name, Pattern: pattern, Operations: ops, Permission: permission, Host: host}
}

type check struct {
	principal string
	host      netip.Addr
	op        Operation
	rt        ResourceType
	name      string
	want      bool
}

func run(t *testing.T, p *Policy, checks []check) {
	t.Helper()
	for _, c := range checks {
		if got := p.Authorize(c.principal, c.host, c.op, c.rt, c.name); got != c.want {
			t.Errorf("%s from %s: %s %s %q: got %v, want %v", c.principal, c.host, c.op, c.rt, c.name, got, c.want)
		}
	}
}

func TestLiteralAndImplied(t *testing.T) {
	p := policy(t, false,
		rule("User:alice", "topic", "a", "", "allow", "", "write"),
		rule("User:alice", "group", "g", "literal", "allow", "*", "read"),
		rule("User:alice", "topic", "cfg", "", "", "", "alter_configs"),
	)
	run(t, p, []check{
		{"User:alice", local, Write, Topic, "a", true},
		{"User:alice", local, Describe, Topic, "a", true}, // write implies describe
		{"User:alice", local, Read, Topic, "a", false},    // but not read
		{"User:alice", local, Write, Topic, "b", false},
		{"User:alice", local, Write, Topic, "ab", false}, // literal: the whole name
		{"User:bob", local, Write, Topic, "a", false},
		{"User:alice", local, Read, Group, "g", true},
		{"User:alice", local, Describe, Group, "g", true},
		{"User:alice", local, Read, Group, "h", false},
		{"User:alice", local, Read, Topic, "g", false}, // another resource type
		{"User:alice", local, DescribeConfigs, Topic, "cfg", true},
		{"User:alice", local, AlterConfigs, Topic, "cfg", true},
		{"User:alice", local, Describe, Topic, "cfg", false},
		{"User:admin", local, Delete, Cluster, ClusterName, true}, // super user
		{"User:ANONYMOUS", local, Describe, Cluster, ClusterName, false},
	})
}

func TestDenyWins(t *testing.T) {
	p := policy(t, false,
		rule("User:*", "topic", "*", "", "allow", "", "all"),
		rule("User:alice", "topic", "secret", "", "deny", "", "read"),
		rule("User:bob", "topic", "orders-", "prefixed", "deny", "", "all"),
		rule("User:admin", "topic", "*", "", "deny", "", "all"), // super users are not bound
	)
	run(t, p, []check{
		{"User:alice", local, Read, Topic, "secret", false},
		{"User:alice", local, Describe, Topic, "secret", true}, // denying read denies only read
		{"User:alice", local, Write, Topic, "secret", true},
		{"User:carol", local, Read, Topic, "secret", true},
		{"User:bob", local, Describe, Topic, "orders-eu", false}, // deny all denies every operation
		{"User:bob", local, Write, Topic, "orders", true},
		{"User:admin", local, Read, Topic, "secret", true},
	})
}

func TestPrefixedAndWildcards(t *testing.T) {
	p := policy(t, false,
		rule("User:alice", "topic", "orders-", "prefixed", "allow", "", "write"),
		rule("User:alice", "topic", "orders-eu-", "prefixed", "allow", "", "read"),
		rule("User:*", "group", "*", "", "allow", "", "read"),
		rule("User:alice", "transactional_id", "tx-", "prefixed", "allow", "", "write"),
		rule("User:alice", "cluster", "", "", "allow", "", "idempotent_write"),
	)
	run(t, p, []check{
		{"User:alice", local, Write, Topic, "orders-", true},
		{"User:alice", local, Write, Topic, "orders-us", true},
		{"User:alice", local, Write, Topic, "orders", false},
		{"User:alice", local, Read, Topic, "orders-us", false},
		{"User:alice", local, Read, Topic, "orders-eu-1", true},
		{"User:alice", local, Write, Topic, "orders-eu-1", true},
		{"User:bob", local, Read, Group, "anything", true},
		{"User:bob", local, Delete, Group, "anything", false},
		{"User:alice", local, Write, TransactionalID, "tx-1", true},
		{"User:alice", local, Describe, TransactionalID, "tx-1", true},
		{"User:alice", local, Write, TransactionalID, "t", false},
		{"User:alice", local, IdempotentWrite, Cluster, ClusterName, true},
		{"User:alice", local, Describe, Cluster, ClusterName, false},
	})
}

func TestHost(t *testing.T) {
	p := policy(t, false,
		rule("User:alice", "topic", "a", "", "allow", "127.0.0.1", "read"),
		rule("User:*", "topic", "b", "", "allow", "", "read"),
		rule("User:*", "topic", "b", "", "deny", "10.0.0.9", "read"),
	)
	run(t, p, []check{
		{"User:alice", local, Read, Topic, "a", true},
		{"User:alice", other, Read, Topic, "a", false},
		{"User:alice", netip.MustParseAddr("::ffff:127.0.0.1").Unmap(), Read, Topic, "a", true},
		{"User:alice", netip.Addr{}, Read, Topic, "a", false}, // no address: only * rules
		{"User:alice", local, Read, Topic, "b", true},
		{"User:alice", other, Read, Topic, "b", false},
	})
}

// With allow_if_no_match, a resource no rule names (for anyone) is open;
// one that some rule names is closed to everyone else.
func TestAllowIfNoMatch(t *testing.T) {
	rules := []config.ACLRule{rule("User:alice", "topic", "a", "", "allow", "", "read")}
	open := policy(t, true, rules...)
	run(t, open, []check{
		{"User:bob", local, Write, Topic, "b", true},
		{"User:bob", local, Read, Topic, "a", false},
		{"User:alice", local, Write, Topic, "a", false},
		{"User:alice", local, Read, Group, "g", true},
	})
	closed := policy(t, false, rules...)
	run(t, closed, []check{
		{"User:bob", local, Write, Topic, "b", false},
		{"User:alice", local, Read, Group, "g", false},
	})
}

func TestDisabledAllowsEverything(t *testing.T) {
	var nilAuth *Authorizer
	if !nilAuth.Authorize("User:x", local, Delete, Cluster, ClusterName) {
		t.Error("a nil authorizer refused")
	}
	p, err := FromConfig(config.Security{ACLs: config.ACLs{Rules: []config.ACLRule{rule("User:x", "topic", "a", "", "deny", "", "all")}}})
	if err != nil {
		t.Fatal(err)
	}
	if !New(p).Authorize("User:x", local, Read, Topic, "a") {
		t.Error("rules were enforced with acls.enabled false")
	}
}

func TestAuthorizeAny(t *testing.T) {
	p := policy(t, false,
		rule("User:alice", "topic", "a", "", "allow", "", "write"),
		rule("User:bob", "topic", "b", "", "allow", "", "write"),
		rule("User:bob", "topic", "*", "", "deny", "", "write"),
		rule("User:carol", "topic", "c-", "prefixed", "allow", "", "write"),
		rule("User:carol", "topic", "c", "prefixed", "deny", "", "write"),
	)
	for _, c := range []struct {
		principal string
		want      bool
	}{{"User:alice", true}, {"User:bob", false}, {"User:carol", false}, {"User:dave", false}, {"User:admin", true}} {
		if got := p.AuthorizeAny(c.principal, local, Write, Topic); got != c.want {
			t.Errorf("%s: write on some topic: got %v, want %v", c.principal, got, c.want)
		}
	}
}

// Replace swaps the whole policy: a check sees the new rules at once.
func TestReplace(t *testing.T) {
	a := New(policy(t, false, rule("User:alice", "topic", "a", "", "allow", "", "write")))
	if a.Authorize("User:alice", local, Write, Topic, "b") {
		t.Fatal("b allowed before the reload")
	}
	a.Replace(policy(t, false, rule("User:alice", "topic", "a", "", "allow", "", "write"), rule("User:alice", "topic", "b", "", "allow", "", "write")))
	if !a.Authorize("User:alice", local, Write, Topic, "b") {
		t.Fatal("b refused after the reload")
	}
	a.Replace(policy(t, false))
	if a.Authorize("User:alice", local, Write, Topic, "a") {
		t.Fatal("a allowed after its rule was removed")
	}
}

// The configuration's names are the authorizer's.
func TestConfigNames(t *testing.T) {
	for _, op := range config.ACLOperations {
		if _, ok := Operations[op]; !ok {
			t.Errorf("config operation %q unknown to acl", op)
		}
	}
	for name := range Operations {
		if !slices.Contains(config.ACLOperations, name) {
			t.Errorf("acl operation %q not in config.ACLOperations", name)
		}
	}
	for _, rt := range config.ACLResources {
		if _, ok := ResourceTypes[rt]; !ok {
			t.Errorf("config resource %q unknown to acl", rt)
		}
	}
	if len(ResourceTypes) != len(config.ACLResources) {
		t.Error("resource types differ")
	}
}

func TestValidate(t *testing.T) {
	c := config.Default()
	c.Security.SuperUsers = []string{"admin"}
	c.Security.ACLs.Rules = []config.ACLRule{
		{Principal: "alice", Resource: "queue", Name: "", Pattern: "regex", Operations: []string{"fly"}, Permission: "maybe", Host: "example.com"},
		{Principal: "User:a", Resource: "topic", Name: "*", Pattern: "prefixed", Operations: nil},
		{Principal: "User:a", Resource: "cluster", Name: "other", Operations: []string{"describe"}},
	}
	want := []string{"security.super_users[0]", "security.acls.rules[0].principal", "security.acls.rules[0].resource",
		"security.acls.rules[0].pattern", "security.acls.rules[0].name", "security.acls.rules[0].operations[0]",
		"security.acls.rules[0].permission", "security.acls.rules[0].host", "security.acls.rules[1].name",
		"security.acls.rules[1].operations", "security.acls.rules[2].name"}
	var got []string
	for _, e := range c.Validate() {
		got = append(got, e.Path)
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("no error at %s; got %v", w, got)
		}
	}
}
