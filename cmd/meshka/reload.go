package main

import (
	"fmt"
	"log/slog"

	"github.com/meshka/meshka/acl"
	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/node"
)

// reload is SIGHUP: the configuration file is read again and checked
// whole, as at start, and its security.acls and security.super_users put
// in force on every node; a file that does not load or check changes
// nothing. Other keys take a restart.
func reload(c *command, current config.Security, nodes []*node.Node, log *slog.Logger) config.Security {
	f := c.flag("config")
	if f == nil || !f.set {
		log.Warn("SIGHUP: nothing to reload; meshka was started without --config")
		return current
	}
	next, p, err := loadSecurity(c, f.value)
	if err != nil {
		log.Error("SIGHUP: configuration not reloaded; the ACLs in force are unchanged", "file", f.value, "err", err)
		return current
	}
	for _, n := range nodes {
		n.ACL().Replace(p)
	}
	added, removed := ruleChanges(current.ACLs.Rules, next.ACLs.Rules)
	log.Info("SIGHUP: ACLs reloaded (other keys take a restart)", "file", f.value,
		"enabled", next.ACLs.Enabled, "allow_if_no_match", next.ACLs.AllowIfNoMatch,
		"rules", len(next.ACLs.Rules), "added", added, "removed", removed,
		"super_users", next.SuperUsers)
	return next
}

// loadSecurity reads and checks the whole file, with the command line's
// overrides, and compiles its ACLs.
func loadSecurity(c *command, path string) (config.Security, *acl.Policy, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return config.Security{}, nil, err
	}
	if err := override(c, &cfg); err != nil {
		return config.Security{}, nil, err
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		return config.Security{}, nil, errs
	}
	p, err := acl.FromConfig(cfg.Security)
	if err != nil {
		return config.Security{}, nil, err
	}
	return cfg.Security, p, nil
}

// ruleChanges counts the rules in next that were not in prev (added) and
// those of prev gone from next (removed), as a multiset.
func ruleChanges(prev, next []config.ACLRule) (added, removed int) {
	count := map[string]int{}
	for _, r := range prev {
		count[fmt.Sprintf("%#v", r)]++
	}
	for _, r := range next {
		k := fmt.Sprintf("%#v", r)
		if count[k] > 0 {
			count[k]--
		} else {
			added++
		}
	}
	for _, n := range count {
		removed += n
	}
	return added, removed
}
