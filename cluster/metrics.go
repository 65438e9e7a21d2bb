package cluster

import "github.com/prometheus/client_golang/prometheus"

// Register has reg report the mesh as this node sees it: live members,
// the membership changes seen, and the actors active here by kind. The
// figures are read at each scrape.
func (m *Mesh) Register(reg prometheus.Registerer) {
	if reg == nil {
		return
	}
	reg.MustRegister(&meshCollector{m: m,
		members: prometheus.NewDesc("meshka_cluster_members", "Live members of the mesh, this node included, as this node sees them.", nil, nil),
		changes: prometheus.NewDesc("meshka_cluster_topology_changes_total",
			"Changes of the membership this node has seen (a node joining, leaving or found dead), its own join included.", nil, nil),
		actors: prometheus.NewDesc("meshka_actors", "Actors active on this node, by kind.", []string{"kind"}, nil),
	})
}

type meshCollector struct {
	m                        *Mesh
	members, changes, actors *prometheus.Desc
}

func (c *meshCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.members
	ch <- c.changes
	ch <- c.actors
}

func (c *meshCollector) Collect(ch chan<- prometheus.Metric) {
	v := c.m.members.View()
	ch <- prometheus.MustNewConstMetric(c.members, prometheus.GaugeValue, float64(len(v.Members)))
	ch <- prometheus.MustNewConstMetric(c.changes, prometheus.CounterValue, float64(v.Version))
	for kind, n := range c.m.ActiveByKind() {
		ch <- prometheus.MustNewConstMetric(c.actors, prometheus.GaugeValue, float64(n), kind)
	}
}

// ActiveByKind counts the activations on this node by kind; every kind
// the mesh serves is present, with 0 when none is active.
func (m *Mesh) ActiveByKind() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]int, len(m.kinds))
	for kind := range m.kinds {
		out[kind] = 0
	}
	for k := range m.local {
		out[k.kind]++
	}
	return out
}
