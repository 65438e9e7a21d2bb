// Package acl is meshka's authorizer: ACL rules from the configuration,
// compiled once into an immutable policy that a reload swaps whole, and
// checked as Kafka's StandardAuthorizer checks them.
package acl

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
)

// Operation is an ACL operation, numbered as Kafka's AclOperation.
type Operation int8

const (
	All             Operation = 2
	Read            Operation = 3
	Write           Operation = 4
	Create          Operation = 5
	Delete          Operation = 6
	Alter           Operation = 7
	Describe        Operation = 8
	ClusterAction   Operation = 9
	DescribeConfigs Operation = 10
	AlterConfigs    Operation = 11
	IdempotentWrite Operation = 12
)

// ResourceType is what a rule is about, numbered as Kafka's ResourceType.
type ResourceType int8

const (
	Topic           ResourceType = 2
	Group           ResourceType = 3
	Cluster         ResourceType = 4
	TransactionalID ResourceType = 5
)

// ClusterName is the name of the one cluster resource, as Kafka names it.
const ClusterName = "kafka-cluster"

// Wildcard, as a literal rule's name, is every resource of its type; as
// a rule's principal (User:*), every principal.
const (
	Wildcard          = "*"
	WildcardPrincipal = "User:*"
)

// Operations names the operations as the configuration writes them.
var Operations = map[string]Operation{
	"all": All, "read": Read, "write": Write, "create": Create, "delete": Delete, "alter": Alter,
	"describe": Describe, "cluster_action": ClusterAction, "describe_configs": DescribeConfigs,
	"alter_configs": AlterConfigs, "idempotent_write": IdempotentWrite,
}

// ResourceTypes names the resource types as the configuration writes them.
var ResourceTypes = map[string]ResourceType{
	"topic": Topic, "group": Group, "cluster": Cluster, "transactional_id": TransactionalID,
}

func (op Operation) String() string {
	for name, o := range Operations {
		if o == op {
			return name
		}
	}
	return fmt.Sprintf("operation(%d)", int8(op))
}

func (rt ResourceType) String() string {
	for name, t := range ResourceTypes {
		if t == rt {
			return name
		}
	}
	return fmt.Sprintf("resource(%d)", int8(rt))
}

// Rule is one configured rule, its names parsed.
type Rule struct {
	Principal  string // User:<name>, or User:* for everyone
	Resource   ResourceType
	Name       string // a name, "*" (literal: every resource), or a prefix
	Prefixed   bool
	Operations []Operation
	Deny       bool
	Host       string // "*" or an IP address as written
}

// Policy is a compiled set of rules. It is never changed once made, so
// any number of goroutines may read it while a reload makes the next.
type Policy struct {
	enabled        bool
	allowIfNoMatch bool
	super          []string
	rules          []Rule
	byType         [TransactionalID + 1]index
}

// index holds one resource type's rules by how their names match.
type index struct {
	literal  map[string][]entry
	wildcard []entry
	prefixed map[string][]entry
	lens     []int // the prefixes' lengths, distinct, ascending
}

// entry is a rule reduced to what a check compares.
type entry struct {
	principal string     // empty: every principal
	host      netip.Addr // not valid: every host
	allow     opSet      // operations allowed, with those they imply
	deny      opSet      // operations denied
}

type opSet uint16

func (s opSet) has(op Operation) bool { return s&(1<<uint(op)) != 0 }

const allOps opSet = 1<<(IdempotentWrite+1) - 1

// implied are the operations an allowed operation also allows, as in
// Kafka: read, write, delete and alter allow describe; alter_configs
// allows describe_configs. Denying an operation denies only that one.
func implied(op Operation) opSet {
	s := opSet(1) << uint(op)
	switch op {
	case All:
		return allOps
	case Read, Write, Delete, Alter:
		s |= 1 << uint(Describe)
	case AlterConfigs:
		s |= 1 << uint(DescribeConfigs)
	}
	return s
}

// Settings are what a policy is compiled from.
type Settings struct {
	Enabled        bool
	AllowIfNoMatch bool // Kafka's allow.everyone.if.no.acl.found
	SuperUsers     []string
	Rules          []Rule
}

// Compile checks and indexes the rules. The rules are kept as given, for
// DescribeAcls.
func Compile(s Settings) (*Policy, error) {
	p := &Policy{enabled: s.Enabled, allowIfNoMatch: s.AllowIfNoMatch, super: slices.Clone(s.SuperUsers), rules: slices.Clone(s.Rules)}
	for i, r := range s.Rules {
		if r.Resource < Topic || r.Resource > TransactionalID {
			return nil, fmt.Errorf("rule %d: unknown resource type %d", i, r.Resource)
		}
		if !strings.HasPrefix(r.Principal, "User:") || len(r.Principal) == len("User:") {
			return nil, fmt.Errorf("rule %d: principal %q: want User:<name> or User:*", i, r.Principal)
		}
		e := entry{principal: r.Principal}
		if r.Principal == WildcardPrincipal {
			e.principal = ""
		}
		if r.Host != "" && r.Host != Wildcard {
			a, err := netip.ParseAddr(r.Host)
			if err != nil {
				return nil, fmt.Errorf("rule %d: host %q: want * or an IP address", i, r.Host)
			}
			e.host = a.Unmap()
		}
		if len(r.Operations) == 0 {
			return nil, fmt.Errorf("rule %d: no operations", i)
		}
		var ops opSet
		for _, op := range r.Operations {
			if op < All || op > IdempotentWrite {
				return nil, fmt.Errorf("rule %d: unknown operation %d", i, op)
			}
			if r.Deny {
				if op == All {
					ops |= allOps
				} else {
					ops |= 1 << uint(op)
				}
			} else {
				ops |= implied(op)
			}
		}
		if r.Deny {
			e.deny = ops
		} else {
			e.allow = ops
		}
		name := r.Name
		if r.Resource == Cluster && name == "" {
			name = ClusterName
		}
		if name == "" {
			return nil, fmt.Errorf("rule %d: no resource name", i)
		}
		ix := &p.byType[r.Resource]
		switch {
		case r.Prefixed:
			if ix.prefixed == nil {
				ix.prefixed = make(map[string][]entry)
			}
			ix.prefixed[name] = append(ix.prefixed[name], e)
			if !slices.Contains(ix.lens, len(name)) {
				ix.lens = append(ix.lens, len(name))
				slices.Sort(ix.lens)
			}
		case name == Wildcard:
			ix.wildcard = append(ix.wildcard, e)
		default:
			if ix.literal == nil {
				ix.literal = make(map[string][]entry)
			}
			ix.literal[name] = append(ix.literal[name], e)
		}
	}
	return p, nil
}

// Enabled says whether the policy checks anything: a disabled one allows
// every principal everything.
func (p *Policy) Enabled() bool { return p != nil && p.enabled }

// AllowIfNoMatch is Kafka's allow.everyone.if.no.acl.found.
func (p *Policy) AllowIfNoMatch() bool { return p != nil && p.allowIfNoMatch }

// Rules are the policy's rules as configured.
func (p *Policy) Rules() []Rule {
	if p == nil {
		return nil
	}
	return p.rules
}

// SuperUsers are the principals no rule binds.
func (p *Policy) SuperUsers() []string {
	if p == nil {
		return nil
	}
	return p.super
}

// Authorize says whether principal, connected from host, may do op on the
// resource of type rt named name. A super user may do anything. Else a
// matching deny rule refuses, whatever allows; a matching allow rule
// allows; and with no rule for the resource at all (for any principal),
// AllowIfNoMatch decides. It allocates nothing.
func (p *Policy) Authorize(principal string, host netip.Addr, op Operation, rt ResourceType, name string) bool {
	if !p.Enabled() {
		return true
	}
	for _, s := range p.super {
		if s == principal {
			return true
		}
	}
	if rt < Topic || rt > TransactionalID {
		return false
	}
	ix := &p.byType[rt]
	found, allowed := false, false
	check := func(es []entry) bool { // false: denied
		found = found || len(es) > 0
		for i := range es {
			e := &es[i]
			if e.principal != "" && e.principal != principal || e.host.IsValid() && e.host != host {
				continue
			}
			if e.deny.has(op) {
				return false
			}
			allowed = allowed || e.allow.has(op)
		}
		return true
	}
	if !check(ix.literal[name]) || !check(ix.wildcard) {
		return false
	}
	for _, n := range ix.lens {
		if n > len(name) {
			break
		}
		if !check(ix.prefixed[name[:n]]) {
			return false
		}
	}
	if allowed {
		return true
	}
	return !found && p.allowIfNoMatch
}

// AuthorizeAny says whether principal may do op on some resource of type
// rt, as Kafka's authorizeByResourceType: a super user may; else some
// rule must allow it, on a resource no deny rule for it covers whole (a
// wildcard, or the same or a shorter prefix); with no rule of that type
// at all, AllowIfNoMatch decides.
func (p *Policy) AuthorizeAny(principal string, host netip.Addr, op Operation, rt ResourceType) bool {
	if !p.Enabled() || slices.Contains(p.super, principal) {
		return true
	}
	if rt < Topic || rt > TransactionalID {
		return false
	}
	ix := &p.byType[rt]
	if len(ix.literal) == 0 && len(ix.wildcard) == 0 && len(ix.prefixed) == 0 {
		return p.allowIfNoMatch
	}
	matches := func(e *entry) bool {
		return (e.principal == "" || e.principal == principal) && (!e.host.IsValid() || e.host == host)
	}
	// denied says whether a deny rule covers every resource whose name
	// the pattern (name, prefixed) matches.
	denied := func(name string, prefixed bool) bool {
		for _, e := range ix.wildcard {
			if matches(&e) && e.deny.has(op) {
				return true
			}
		}
		for _, n := range ix.lens {
			if n > len(name) {
				break
			}
			for _, e := range ix.prefixed[name[:n]] {
				if matches(&e) && e.deny.has(op) {
					return true
				}
			}
		}
		if !prefixed {
			for _, e := range ix.literal[name] {
				if matches(&e) && e.deny.has(op) {
					return true
				}
			}
		}
		return false
	}
	for _, e := range ix.wildcard {
		if matches(&e) && e.allow.has(op) && !denied(Wildcard, true) {
			return true
		}
	}
	for name, es := range ix.literal {
		for _, e := range es {
			if matches(&e) && e.allow.has(op) && !denied(name, false) {
				return true
			}
		}
	}
	for name, es := range ix.prefixed {
		for _, e := range es {
			if matches(&e) && e.allow.has(op) && !denied(name, true) {
				return true
			}
		}
	}
	return false
}

// Authorizer holds the policy in force; Replace swaps it whole, so a
// check sees either the old rules or the new, never a mix. Safe for
// concurrent use; a nil Authorizer allows everything.
type Authorizer struct {
	p atomic.Pointer[Policy]
}

// New returns an authorizer enforcing p (nil: nothing).
func New(p *Policy) *Authorizer {
	a := &Authorizer{}
	a.p.Store(p)
	return a
}

// Replace puts p in force for every check from now on, on every
// connection, open or new.
func (a *Authorizer) Replace(p *Policy) { a.p.Store(p) }

// Policy is the policy in force.
func (a *Authorizer) Policy() *Policy {
	if a == nil {
		return nil
	}
	return a.p.Load()
}

// Enabled says whether the policy in force checks anything.
func (a *Authorizer) Enabled() bool { return a.Policy().Enabled() }

// Authorize is Policy.Authorize with the policy in force.
func (a *Authorizer) Authorize(principal string, host netip.Addr, op Operation, rt ResourceType, name string) bool {
	return a.Policy().Authorize(principal, host, op, rt, name)
}

// AuthorizeAny is Policy.AuthorizeAny with the policy in force.
func (a *Authorizer) AuthorizeAny(principal string, host netip.Addr, op Operation, rt ResourceType) bool {
	return a.Policy().AuthorizeAny(principal, host, op, rt)
}

// SuperUser says whether principal is one of security.super_users now.
func (a *Authorizer) SuperUser(principal string) bool {
	return slices.Contains(a.Policy().SuperUsers(), principal)
}
