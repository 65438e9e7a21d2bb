package config

import (
	"fmt"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
)

// HTTP configures the HTTP mapper: routes that produce, fetch and stream
// Kafka topics over HTTP.
type HTTP struct {
	// Listen is the host:port of the HTTP listener (or HTTPS with TLS
	// set); empty: no HTTP listener.
	Listen string `yaml:"listen"`
	// Advertise is the host:port clients are told about (Location
	// headers, logs); empty: Listen.
	Advertise string `yaml:"advertise"`
	TLS       *TLS   `yaml:"tls,omitempty"`
	// AllowAnonymous serves requests without credentials. A request with
	// Basic credentials is always checked against security.users.
	AllowAnonymous bool `yaml:"allow_anonymous"`
	// CORSOrigins are the origins browsers may call from ("*": any).
	CORSOrigins []string `yaml:"cors_origins,omitempty"`
	// MaxBodyBytes bounds a request's body (413 past it).
	MaxBodyBytes Size `yaml:"max_body_bytes"`
	// ReadHeaderTimeout bounds how long a client may take to send a
	// request's headers; IdleTimeout how long a keep-alive connection
	// waits for its next request.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	IdleTimeout       Duration `yaml:"idle_timeout"`
	// MaxWait bounds a long poll's Prefer: wait=N.
	MaxWait Duration `yaml:"max_wait"`
	// Confluent serves the Confluent REST Proxy's API (v3 under /v3, v2
	// under /topics and /consumers) besides the routes, which a route of
	// the same method and path overrides; meshka dev turns it on.
	Confluent bool `yaml:"confluent"`
	// Consumers configures the Confluent v2 API's consumer instances.
	Consumers HTTPConsumers `yaml:"consumers"`
	// SchemaRegistry serves Confluent's Schema Registry API at the
	// listener's root (/subjects, /schemas, /config, /mode,
	// /compatibility, /contexts), or on a listener of its own.
	SchemaRegistry HTTPSchemaRegistry `yaml:"schema_registry"`
	// Routes are matched in order; the first whose method and path match
	// serves the request.
	Routes []HTTPRoute `yaml:"routes,omitempty"`
}

// HTTPConsumers configures the Confluent v2 API's consumer instances:
// cluster-wide actors, any node serving any instance, whose state is kept
// in a compacted topic.
type HTTPConsumers struct {
	// Topic holds each instance's state, keyed by group and name.
	Topic string `yaml:"topic"`
	// Create creates Topic on start (compacted, one partition) when
	// upstream does not have it; Replication is its replication factor
	// (0: upstream's default).
	Create      bool  `yaml:"create"`
	Replication int16 `yaml:"replication"`
	// InstanceTimeout is how long an instance lives without a request
	// (the REST Proxy's consumer.instance.timeout.ms).
	InstanceTimeout Duration `yaml:"instance_timeout"`
	// MaxBytes bounds one GET records answer (the REST Proxy's
	// consumer.request.max.bytes); a request's max_bytes may ask for less.
	MaxBytes Size `yaml:"max_bytes"`
	// MaxInstances bounds the instances running on one node at once
	// (each is a group member with its own upstream connections).
	MaxInstances int `yaml:"max_instances"`
}

// HTTPSchemaRegistry configures the built-in schema registry: every node
// serves reads from its own copy of Topic, and writes go through one
// cluster-wide writer.
type HTTPSchemaRegistry struct {
	// Enabled serves the registry; meshka dev turns it on.
	Enabled bool `yaml:"enabled"`
	// Listen, when set, serves the registry's API on this host:port
	// alone (e.g. Confluent's usual 8081), with the HTTP listener's
	// authentication, TLS and ACLs, and not at the HTTP listener's root;
	// empty: at the HTTP listener's root.
	Listen string `yaml:"listen"`
	// Topic keeps the registry (Confluent's _schemas layout).
	Topic string `yaml:"topic"`
	// Create creates Topic on start (compacted, one partition) when
	// upstream does not have it; Replication is its replication factor
	// (0: upstream's default).
	Create      bool  `yaml:"create"`
	Replication int16 `yaml:"replication"`
}

// SchemaRegistryPaths are the first path segments the schema registry
// serves; a route may not start with one while the registry is served at
// the HTTP listener's root.
var SchemaRegistryPaths = []string{"subjects", "schemas", "config", "mode", "compatibility", "contexts"}

// HTTPRoute maps requests of one method and path to a capability over a
// Kafka topic.
type HTTPRoute struct {
	Method string `yaml:"method"`
	// Path is matched segment by segment; {name} matches one segment and
	// names it for ${params.name}.
	Path       string `yaml:"path"`
	Topic      string `yaml:"topic"`
	Capability string `yaml:"capability"`
	// Key is the record key, with ${params.x} and ${header.x}
	// substitutions: produce's key, fetch's and stream's key filter.
	Key string `yaml:"key"`
	// Headers are record headers: produce writes them, fetch and stream
	// deliver only records that have them all.
	Headers map[string]string `yaml:"headers,omitempty"`
	// Acks is what produce waits for: all (the default), leader or none.
	Acks string `yaml:"acks"`
	// Filters narrow fetch, stream and websocket to records matching any
	// of them (each: a key and headers, all of which must match), besides
	// Key and Headers.
	Filters []HTTPFilter `yaml:"filters,omitempty"`
	// ReplyTo is a request route's reply topic: the request is produced
	// to Topic with a correlation id and this reply-to header, and the
	// answer is the record on ReplyTo with the same correlation id.
	ReplyTo string `yaml:"reply_to"`
	// Async lets a request route answer Prefer: respond-async with 202
	// and a Location to GET the reply from.
	Async bool `yaml:"async"`
	// Timeout bounds how long a request route waits for its reply (504
	// past it).
	Timeout Duration `yaml:"timeout"`
	// ValueFormat is what the client sees of record values: empty, the
	// values as they are; json, values in a schema format of the built-in
	// registry (Confluent's wire format) converted to and from JSON.
	// Produce and websocket encode incoming JSON with ValueSchema; fetch,
	// stream and websocket decode each record by the schema id in its
	// header.
	ValueFormat string `yaml:"value_format"`
	// ValueSchema names the schema incoming JSON is encoded with.
	ValueSchema *HTTPValueSchema `yaml:"value_schema,omitempty"`
}

// HTTPValueSchema names a schema of the built-in registry: a subject's
// version (a number, or latest, the default, read at each produce).
type HTTPValueSchema struct {
	Subject string `yaml:"subject"`
	Version string `yaml:"version"`
}

// Pinned is the version the schema is pinned to, -1 (latest) when none
// is: a validated Version, empty or latest.
func (vs HTTPValueSchema) Pinned() int {
	n, err := ParseSchemaVersion(vs.Version)
	if err != nil || n <= 0 {
		return -1
	}
	return n
}

// ValueFormatJSON is HTTPRoute.ValueFormat's one value.
const ValueFormatJSON = "json"

// HTTPFilter is one alternative of a route's filters.
type HTTPFilter struct {
	Key     string            `yaml:"key"`
	Headers map[string]string `yaml:"headers,omitempty"`
}

// HTTP capabilities.
const (
	CapProduce   = "produce"
	CapFetch     = "fetch"
	CapItem      = "item"
	CapStream    = "stream"
	CapWebSocket = "websocket"
	CapRequest   = "request"
)

func defaultHTTP() HTTP {
	return HTTP{
		AllowAnonymous:    true,
		MaxBodyBytes:      MiB,
		ReadHeaderTimeout: Duration(10 * time.Second),
		IdleTimeout:       Duration(2 * time.Minute),
		MaxWait:           Duration(60 * time.Second),
		Consumers: HTTPConsumers{Topic: "meshka-http-consumers", Create: true,
			InstanceTimeout: Duration(5 * time.Minute), MaxBytes: 4 * MiB, MaxInstances: 1000},
		SchemaRegistry: HTTPSchemaRegistry{Topic: "_schemas", Create: true},
	}
}

var routeSubstitution = regexp.MustCompile(`\$\{([^}]*)\}`)

func (v *validator) validateHTTP(h HTTP) {
	if h.Listen != "" {
		v.hostPort("http.listen", h.Listen, addrRules{})
	}
	if h.Advertise != "" {
		v.hostPort("http.advertise", h.Advertise, addrRules{needHost: true})
	}
	if h.TLS != nil {
		v.validateTLS("http.tls", *h.TLS, true)
	}
	for i, o := range h.CORSOrigins {
		if o != "*" && !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
			v.add(fmt.Sprintf("http.cors_origins[%d]", i), `must be "*" or an origin such as "https://app.example.com", got %q`, o)
		}
	}
	v.sizeRange("http.max_body_bytes", h.MaxBodyBytes, 1, GiB)
	v.durationRange("http.read_header_timeout", h.ReadHeaderTimeout, 100*time.Millisecond, 10*time.Minute)
	v.durationRange("http.idle_timeout", h.IdleTimeout, 0, 24*time.Hour)
	v.durationRange("http.max_wait", h.MaxWait, 0, 10*time.Minute)
	if msg := checkTopic(h.Consumers.Topic); msg != "" {
		v.add("http.consumers.topic", "%s", msg)
	}
	v.intRange("http.consumers.replication", int64(h.Consumers.Replication))
	v.durationRange("http.consumers.instance_timeout", h.Consumers.InstanceTimeout, time.Second, 7*24*time.Hour)
	v.sizeRange("http.consumers.max_bytes", h.Consumers.MaxBytes, KiB, 32*MiB)
	v.intRange("http.consumers.max_instances", int64(h.Consumers.MaxInstances))
	if msg := checkTopic(h.SchemaRegistry.Topic); msg != "" {
		v.add("http.schema_registry.topic", "%s", msg)
	}
	v.intRange("http.schema_registry.replication", int64(h.SchemaRegistry.Replication))
	if sr := h.SchemaRegistry; sr.Listen != "" {
		const p = "http.schema_registry.listen"
		switch {
		case !v.hostPort(p, sr.Listen, addrRules{}):
		case !sr.Enabled:
			v.add(p, "a listener for the registry needs http.schema_registry.enabled")
		case h.Listen == "":
			v.add(p, "the registry is part of the HTTP mapper: set http.listen too")
		case sameAddr(sr.Listen, h.Listen):
			v.add(p, "must differ from http.listen (%s); leave it empty to serve the registry there", h.Listen)
		}
	}
	for i, r := range h.Routes {
		path := fmt.Sprintf("http.routes[%d]", i)
		switch r.Method {
		case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch:
		default:
			v.add(path+".method", "must be one of GET, POST, PUT, DELETE, PATCH; got %q", r.Method)
		}
		params, msg := RouteParams(r.Path)
		if msg != "" {
			v.add(path+".path", "%s", msg)
		}
		if msg := checkTopic(r.Topic); msg != "" {
			v.add(path+".topic", "%s", msg)
		}
		if h.SchemaRegistry.Enabled && h.SchemaRegistry.Listen == "" && msg == "" {
			first, _, _ := strings.Cut(strings.TrimPrefix(r.Path, "/"), "/")
			if slices.Contains(SchemaRegistryPaths, first) {
				v.add(path+".path", "%q is the schema registry's (http.schema_registry.enabled serves /%s at the HTTP listener's root); choose another path, or serve the registry on http.schema_registry.listen", r.Path, first)
			}
		}
		v.oneOf(path+".capability", r.Capability, CapProduce, CapFetch, CapItem, CapStream, CapWebSocket, CapRequest)
		if r.Capability == CapProduce && r.Method == http.MethodGet {
			v.add(path+".method", "a produce route takes a body: POST, PUT, DELETE or PATCH, not GET")
		}
		if (r.Capability == CapFetch || r.Capability == CapStream || r.Capability == CapWebSocket) && r.Method != http.MethodGet {
			v.add(path+".method", "a %s route is read with GET, got %s", r.Capability, r.Method)
		}
		if r.Acks != "" {
			v.oneOf(path+".acks", r.Acks, "all", "leader", "none")
		}
		switch {
		case r.Capability == CapRequest:
			if msg := checkTopic(r.ReplyTo); msg != "" {
				v.add(path+".reply_to", "a request route needs its reply topic: %s", msg)
			}
			if r.Method == http.MethodGet {
				v.add(path+".method", "a request route takes a body: POST, PUT, DELETE or PATCH, not GET")
			}
		case r.ReplyTo != "":
			v.add(path+".reply_to", "only a request route has a reply topic")
		case r.Async:
			v.add(path+".async", "only a request route answers asynchronously")
		}
		v.durationRange(path+".timeout", r.Timeout, 0, 10*time.Minute)
		v.validateValueFormat(path, r)
		check := func(key, s string) {
			for _, m := range routeSubstitution.FindAllStringSubmatch(s, -1) {
				name := m[1]
				switch {
				case strings.HasPrefix(name, "params."):
					if p := strings.TrimPrefix(name, "params."); !params[p] {
						v.add(key, "${%s}: the path %q has no {%s}", name, r.Path, p)
					}
				case strings.HasPrefix(name, "header.") && len(name) > len("header."):
				default:
					v.add(key, "${%s}: want ${params.<name>} or ${header.<name>}", name)
				}
			}
		}
		check(path+".key", r.Key)
		for k, val := range r.Headers {
			check(path+".headers."+k, val)
		}
		for j, f := range r.Filters {
			fp := fmt.Sprintf("%s.filters[%d]", path, j)
			check(fp+".key", f.Key)
			for k, val := range f.Headers {
				check(fp+".headers."+k, val)
			}
		}
	}
}

// sameAddr says whether two listen addresses are the same port on the
// same host; port 0 picks a free port, so it is never the same.
func sameAddr(a, b string) bool {
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || pa != pb || pa == "0" || pa == "" {
		return false
	}
	wild := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ha == hb || wild(ha) || wild(hb)
}

// validateValueFormat checks a route's value_format and value_schema.
func (v *validator) validateValueFormat(path string, r HTTPRoute) {
	if r.ValueFormat == "" {
		if r.ValueSchema != nil {
			v.add(path+".value_schema", "a value schema needs value_format: json")
		}
		return
	}
	if r.ValueFormat != ValueFormatJSON {
		v.add(path+".value_format", "must be json (or absent: values as they are), got %q", r.ValueFormat)
		return
	}
	switch r.Capability {
	case CapProduce, CapWebSocket:
		if r.ValueSchema == nil {
			v.add(path+".value_format", "a %s route with value_format json needs value_schema, the subject to encode with", r.Capability)
		}
	case CapFetch, CapStream:
		if r.ValueSchema != nil {
			v.add(path+".value_schema", "a %s route decodes each record by the schema id in it and encodes nothing: drop value_schema", r.Capability)
		}
	default:
		v.add(path+".value_format", "only produce, fetch, stream and websocket routes convert values, not %s", r.Capability)
	}
	// That the node has a registry is checked when it starts: meshka dev
	// turns the built-in one on after the file is read.
	if r.ValueSchema != nil {
		v.validateValueSchema(path, *r.ValueSchema)
	}
}

// validateValueSchema checks a route's value_schema (HTTP and MQTT).
func (v *validator) validateValueSchema(path string, vs HTTPValueSchema) {
	if vs.Subject == "" {
		v.add(path+".value_schema.subject", "must name the subject whose schema encodes incoming JSON")
	}
	if vs.Version != "" && vs.Version != "latest" {
		if _, err := ParseSchemaVersion(vs.Version); err != nil {
			v.add(path+".value_schema.version", "%s", err)
		}
	}
}

// RouteParams checks a route's path and returns the names of its
// {params}, or what is wrong with it.
func RouteParams(p string) (map[string]bool, string) {
	if !strings.HasPrefix(p, "/") {
		return nil, fmt.Sprintf(`must start with "/", got %q`, p)
	}
	params := map[string]bool{}
	for _, seg := range strings.Split(p[1:], "/") {
		if !strings.ContainsAny(seg, "{}") {
			continue
		}
		name, ok := strings.CutPrefix(seg, "{")
		if name, ok = strings.CutSuffix(name, "}"); !ok || name == "" || strings.ContainsAny(name, "{}") {
			return nil, fmt.Sprintf("a parameter must be a whole segment such as {id}, got %q in %q", seg, p)
		}
		if params[name] {
			return nil, fmt.Sprintf("parameter {%s} twice in %q", name, p)
		}
		params[name] = true
	}
	return params, ""
}
