package acl

import (
	"fmt"

	"github.com/meshka/meshka/config"
)

// FromConfig compiles security.super_users and security.acls, which
// config.Validate has checked; an error here is one it let through.
func FromConfig(sec config.Security) (*Policy, error) {
	s := Settings{Enabled: sec.ACLs.Enabled, AllowIfNoMatch: sec.ACLs.AllowIfNoMatch, SuperUsers: sec.SuperUsers}
	for i, r := range sec.ACLs.Rules {
		rt, ok := ResourceTypes[r.Resource]
		if !ok {
			return nil, fmt.Errorf("security.acls.rules[%d].resource: %q is not a resource type", i, r.Resource)
		}
		rule := Rule{Principal: r.Principal, Resource: rt, Name: r.Name, Prefixed: r.Pattern == "prefixed",
			Deny: r.Permission == "deny", Host: r.Host}
		if rule.Host == "" {
			rule.Host = Wildcard
		}
		if rt == Cluster && (rule.Name == "" || rule.Name == Wildcard) {
			rule.Name = ClusterName
		}
		for j, name := range r.Operations {
			op, ok := Operations[name]
			if !ok {
				return nil, fmt.Errorf("security.acls.rules[%d].operations[%d]: %q is not an operation", i, j, name)
			}
			rule.Operations = append(rule.Operations, op)
		}
		s.Rules = append(s.Rules, rule)
	}
	p, err := Compile(s)
	if err != nil {
		return nil, fmt.Errorf("security.acls: %w", err)
	}
	return p, nil
}
