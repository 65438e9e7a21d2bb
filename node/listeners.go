package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/meshka/meshka/auth"
	"github.com/meshka/meshka/cluster"
	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/kafkawire"
	"github.com/meshka/meshka/tlsfiles"
)

// extraListener is one of kafka.listeners, bound.
type extraListener struct {
	ln        net.Listener
	lst       kafkawire.Listener
	advertise string
}

// bindListeners binds kafka.listeners and builds what each asks of its
// connections: TLS from its files, SASL against users, principal rules.
// On an error every listener bound is closed again.
func bindListeners(cfg config.Config, log *slog.Logger) (out []extraListener, err error) {
	defer func() {
		if err != nil {
			for _, x := range out {
				x.ln.Close()
			}
			out = nil
		}
	}()
	for i, lc := range cfg.Kafka.Listeners {
		x := extraListener{lst: kafkawire.Listener{Name: lc.Name}}
		if lc.TLSOn() {
			if x.lst.TLS, err = tlsfiles.Server(lc.TLS, log.With("listener", lc.Name)); err != nil {
				return out, fmt.Errorf("kafka.listeners[%d] (%s): %w", i, lc.Name, err)
			}
		}
		if lc.SASLOn() {
			x.lst.Mechanisms = lc.Mechanisms(cfg.Security)
		}
		for _, r := range lc.PrincipalMappingRules {
			rule, err := config.ParsePrincipalRule(r)
			if err != nil {
				return out, fmt.Errorf("kafka.listeners[%d] (%s): %w", i, lc.Name, err)
			}
			x.lst.PrincipalRules = append(x.lst.PrincipalRules, rule)
		}
		if x.ln, err = net.Listen("tcp", lc.Listen); err != nil {
			return out, fmt.Errorf("kafka listener %s: %w", lc.Name, err)
		}
		x.advertise = boundAdvertise(lc.Advertise, lc.Listen, x.ln.Addr())
		out = append(out, x)
	}
	return out, nil
}

// boundAdvertise is the address clients are told: advertise, else the
// listen address, with port 0 replaced by the port bound.
func boundAdvertise(advertise, listen string, bound net.Addr) string {
	adv := advertise
	if adv == "" {
		adv = listen
	}
	host, port, err := net.SplitHostPort(adv)
	if err == nil && port == "0" {
		if _, p, err := net.SplitHostPort(bound.String()); err == nil {
			return net.JoinHostPort(host, p)
		}
	}
	return adv
}

// listenerAddrs are the listeners' advertised addresses, for the node's
// entry in the membership.
func listenerAddrs(xs []extraListener) map[string]string {
	if len(xs) == 0 {
		return nil
	}
	out := map[string]string{}
	for _, x := range xs {
		out[cluster.ListenerAddr(x.lst.Name)] = x.advertise
	}
	return out
}

// users are what SASL listeners check: the users of the configuration,
// and the OAUTHBEARER token check when security.oauthbearer is set,
// whose key set refreshing the caller stops with Close.
func users(cfg config.Config, log *slog.Logger) (*auth.Users, *auth.OAuthBearer, error) {
	u, err := auth.NewUsers(cfg.Security.Users)
	if err != nil {
		return nil, nil, errors.Join(fmt.Errorf("security.users"), err)
	}
	if cfg.Security.OAuthBearer == nil {
		return u, nil, nil
	}
	o, err := auth.NewOAuthBearer(*cfg.Security.OAuthBearer, log.With("sasl", auth.OAuthBearerName))
	if err != nil {
		return nil, nil, err
	}
	u.SetOAuthBearer(o)
	return u, o, nil
}

func protocolOf(cfg config.Config, name string) string {
	for _, l := range cfg.Kafka.Listeners {
		if l.Name == name {
			return l.SecurityProtocol
		}
	}
	return config.Plaintext
}

// ListenerAddr is the bound address of the Kafka listener named name
// (config.DefaultListenerName: node.listen's).
func (n *Node) ListenerAddr(name string) (net.Addr, bool) {
	if name == config.DefaultListenerName {
		return n.ln.Addr(), true
	}
	if ln, ok := n.extra[name]; ok {
		return ln.Addr(), true
	}
	return nil, false
}
