package config

// Admin configures the admin listener: Prometheus metrics, the health
// probes, the status page and its JSON, and the reload endpoint.
type Admin struct {
	// Listen is the host:port of the admin listener (HTTPS with TLS set);
	// empty: no admin listener.
	Listen string `yaml:"listen"`
	// Advertise is the host:port the other nodes and the status page
	// reach this node's admin listener at; empty: Listen.
	Advertise string `yaml:"advertise"`
	TLS       *TLS   `yaml:"tls,omitempty"`
	// AllowAnonymous serves every endpoint without credentials. Off, all
	// but /healthz and /readyz (the probes) take HTTP Basic credentials of
	// a user of security.users, and POST /api/reload a super user's.
	AllowAnonymous bool `yaml:"allow_anonymous"`
	// TopicLabels adds the meshka_topic_* families, labelled by topic:
	// one series per topic the node serves, so off by default.
	TopicLabels bool `yaml:"topic_labels"`
}

func defaultAdmin() Admin {
	return Admin{Listen: "127.0.0.1:9644", AllowAnonymous: true}
}

func (v *validator) validateAdmin(a Admin) {
	if a.Listen != "" {
		v.hostPort("admin.listen", a.Listen, addrRules{})
	}
	if a.Advertise != "" {
		v.hostPort("admin.advertise", a.Advertise, addrRules{needHost: true})
	}
	if a.TLS != nil {
		v.validateTLS("admin.tls", *a.TLS, true)
	}
}
