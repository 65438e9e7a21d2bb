package node

import (
	"fmt"
	"slices"

	"github.com/meshka/meshka/acl"
	"github.com/meshka/meshka/auth"
	"github.com/meshka/meshka/config"
	httpmap "github.com/meshka/meshka/mappers/http"
)

// LiveKeys are the configuration keys Reload puts in force without a
// restart (log.level is the process's, applied by its caller).
var LiveKeys = []string{
	"security.acls", "security.super_users", "security.users",
	"cache.node_max_bytes", "cache.bootstrap", "http.routes",
}

// Reload puts in force what next changes of the live keys: ACLs and super
// users, users (for authentications from now on), the cache bound, new
// bootstrap topics (kept warm from now; one removed stays warm until a
// restart) and the HTTP mapper's routes. next must be valid; everything
// that can fail is built before anything changes, so an error changes
// nothing. TLS certificates need no reload: their files are read again
// when they change.
func (n *Node) Reload(next config.Config) error {
	policy, err := acl.FromConfig(next.Security)
	if err != nil {
		return err
	}
	us, err := auth.NewUsers(next.Security.Users)
	if err != nil {
		return fmt.Errorf("security.users: %w", err)
	}
	n.acl.Replace(policy)
	n.users.Replace(us)
	n.budget.SetMax(int64(next.Cache.NodeMaxBytes))
	for _, topic := range next.Cache.Bootstrap {
		if !slices.Contains(n.cfg.Cache.Bootstrap, topic) {
			n.wg.Add(1)
			go func() { defer n.wg.Done(); n.warm(topic) }()
		}
	}
	if b, ok := n.Binding("http"); ok {
		if hs, ok := b.(*httpmap.Server); ok {
			hs.SetRoutes(next.HTTP.Routes)
		}
	}
	n.cfgMu.Lock()
	n.cfg.Security.ACLs, n.cfg.Security.SuperUsers, n.cfg.Security.Users = next.Security.ACLs, next.Security.SuperUsers, next.Security.Users
	n.cfg.Cache.NodeMaxBytes = next.Cache.NodeMaxBytes
	n.cfg.Cache.Bootstrap = append(slices.Clone(n.cfg.Cache.Bootstrap), newOnly(next.Cache.Bootstrap, n.cfg.Cache.Bootstrap)...)
	n.cfg.HTTP.Routes = next.HTTP.Routes
	n.cfgMu.Unlock()
	return nil
}

// newOnly is what of next is not in prev.
func newOnly(next, prev []string) []string {
	var out []string
	for _, s := range next {
		if !slices.Contains(prev, s) {
			out = append(out, s)
		}
	}
	return out
}
