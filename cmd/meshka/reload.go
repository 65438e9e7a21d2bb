package main

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/meshka/meshka/admin"
	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/node"
)

// reloader is SIGHUP and POST /api/reload: the configuration file is read
// again and checked whole, as at start, and what can change live is put
// in force on every node of the process: log.level, the ACLs and super
// users, the users, the cache bound, new bootstrap topics and the HTTP
// routes. The other keys that changed are reported as taking a restart.
// A file that does not load or check changes nothing.
type reloader struct {
	c     *command
	level *slog.LevelVar
	log   *slog.Logger

	mu    sync.Mutex
	cur   config.Config // the file as last loaded, with the flags' overrides
	nodes []*node.Node
}

// liveKeys are what a reload applies; the rest of a change takes a
// restart.
var liveKeys = append([]string{"log.level"}, node.LiveKeys...)

func (r *reloader) reload() (admin.ReloadReport, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.c.flag("config")
	if f == nil || !f.set {
		err := fmt.Errorf("meshka was started without --config: there is no file to read again")
		r.log.Warn("reload: nothing to reload", "err", err)
		return admin.ReloadReport{}, err
	}
	rep := admin.ReloadReport{File: f.value, Changed: []string{}, Restart: []string{}}
	next, err := loadChecked(r.c, f.value)
	if err != nil {
		r.log.Error("reload: configuration not reloaded; nothing changed", "file", f.value, "err", err)
		return rep, err
	}
	for _, n := range r.nodes {
		if err := n.Reload(next); err != nil {
			r.log.Error("reload: configuration not reloaded; nothing changed", "file", f.value, "err", err)
			return rep, err
		}
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(next.Log.Level))
	r.level.Set(level)
	for _, k := range config.Diff(r.cur, next) {
		if slices.ContainsFunc(liveKeys, func(l string) bool { return k == l || strings.HasPrefix(k, l+".") }) {
			rep.Changed = append(rep.Changed, k)
		} else {
			rep.Restart = append(rep.Restart, k)
		}
	}
	added, removed := ruleChanges(r.cur.Security.ACLs.Rules, next.Security.ACLs.Rules)
	r.cur = next
	rep.Applied = true
	r.log.Info("reload: configuration reloaded", "file", f.value, "changed", rep.Changed, "restart_needed", rep.Restart,
		"log_level", next.Log.Level, "acls_enabled", next.Security.ACLs.Enabled, "acl_rules", len(next.Security.ACLs.Rules),
		"acl_rules_added", added, "acl_rules_removed", removed, "super_users", next.Security.SuperUsers)
	return rep, nil
}

// loadChecked reads and checks the whole file, with the command line's
// overrides.
func loadChecked(c *command, path string) (config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return config.Config{}, err
	}
	if err := override(c, &cfg); err != nil {
		return config.Config{}, err
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		return config.Config{}, errs
	}
	return cfg, nil
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
