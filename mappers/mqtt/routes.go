package mqtt

import (
	"strings"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/mesh"
)

// routes map MQTT topic names to Kafka topics: the first route whose
// filter matches a name takes it; the messages topic takes the rest.
type routes struct {
	messages string
	list     []route
	decoded  map[string]bool // Kafka topics whose values subscribers get as JSON
}

type route struct {
	filter string
	match  mesh.KeyFilter
	topic  string
	schema *config.HTTPValueSchema // with value_format json: what publishes are encoded with
}

func newRoutes(cfg config.MQTT) (routes, error) {
	rs := routes{messages: cfg.Topics.Messages, decoded: map[string]bool{}}
	for _, r := range cfg.Routes {
		m, err := mesh.KeyPattern(r.Filter)
		if err != nil {
			return routes{}, err
		}
		rt := route{filter: r.Filter, match: m, topic: r.Topic}
		if r.ValueFormat == config.ValueFormatJSON {
			rt.schema = r.ValueSchema
			rs.decoded[r.Topic] = true
		}
		rs.list = append(rs.list, rt)
	}
	return rs, nil
}

// topicFor is the Kafka topic a publish to name goes to.
func (rs routes) topicFor(name string) string {
	topic, _ := rs.routeFor(name)
	return topic
}

// routeFor is the Kafka topic a publish to name goes to, and the schema
// its payload is encoded with (nil: written as it is).
func (rs routes) routeFor(name string) (string, *config.HTTPValueSchema) {
	for _, r := range rs.list {
		if r.match.Match([]byte(name)) {
			return r.topic, r.schema
		}
	}
	return rs.messages, nil
}

// decodes says whether subscribers get topic's values as JSON.
func (rs routes) decodes(topic string) bool { return rs.decoded[topic] }

// topicsFor are the Kafka topics that may hold names a subscription to
// filter matches: the messages topic, unless one route takes every name
// the filter matches, and each route whose filter overlaps it.
func (rs routes) topicsFor(filter string) []string {
	var out []string
	add := func(t string) {
		for _, x := range out {
			if x == t {
				return
			}
		}
		out = append(out, t)
	}
	covered := false
	for _, r := range rs.list {
		if overlap(r.filter, filter) {
			add(r.topic)
			if covers(r.filter, filter) {
				covered = true
			}
		}
	}
	if !covered {
		add(rs.messages)
	}
	return out
}

// overlap says whether some topic name matches both filters.
func overlap(a, b string) bool {
	if strings.HasPrefix(a, "$") != strings.HasPrefix(b, "$") {
		// a leading wildcard matches no $-name; a literal $ level only those
		return levelsOverlap(strings.Split(a, "/"), strings.Split(b, "/")) && !firstWild(a) && !firstWild(b)
	}
	return levelsOverlap(strings.Split(a, "/"), strings.Split(b, "/"))
}

func firstWild(f string) bool {
	return f == "#" || strings.HasPrefix(f, "+") || strings.HasPrefix(f, "#")
}

func levelsOverlap(a, b []string) bool {
	for i := 0; ; i++ {
		switch {
		case i < len(a) && a[i] == "#", i < len(b) && b[i] == "#":
			return true
		case i == len(a) || i == len(b):
			// "a/#" also matches "a": handled above; else both must end
			return i == len(a) && i == len(b) ||
				i == len(a)-1 && a[i] == "#" || i == len(b)-1 && b[i] == "#"
		case a[i] == "+" || b[i] == "+" || a[i] == b[i]:
			continue
		default:
			return false
		}
	}
}

// covers says whether every name filter f matches, filter r matches too.
func covers(r, f string) bool {
	rl, fl := strings.Split(r, "/"), strings.Split(f, "/")
	for i, l := range rl {
		if l == "#" {
			return i < len(fl) || i == len(fl) // "a/#" covers "a" and below
		}
		if i >= len(fl) {
			return false
		}
		switch {
		case l == "+" && fl[i] != "#":
		case l == fl[i] && l != "+" && l != "#":
		default:
			return false
		}
	}
	return len(rl) == len(fl)
}
