package httpmap

import (
	"net/http"
	"regexp"
	"strings"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/mesh"
)

// route is a configured route, compiled.
type route struct {
	cfg      config.HTTPRoute
	segments []string // "{name}" for a parameter
	acks     mesh.Acks
}

func compile(rs []config.HTTPRoute) []*route {
	out := make([]*route, 0, len(rs))
	for _, r := range rs {
		cr := &route{cfg: r, segments: strings.Split(strings.TrimPrefix(r.Path, "/"), "/"), acks: mesh.AcksAll}
		switch r.Acks {
		case "leader":
			cr.acks = mesh.AcksLeader
		case "none":
			cr.acks = mesh.AcksNone
		}
		out = append(out, cr)
	}
	return out
}

// match says whether the route serves path, and its parameters.
func (r *route) match(path string) (map[string]string, bool) {
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if len(segs) != len(r.segments) {
		return nil, false
	}
	var params map[string]string
	for i, s := range r.segments {
		if name, ok := strings.CutPrefix(s, "{"); ok {
			if segs[i] == "" {
				return nil, false
			}
			if params == nil {
				params = map[string]string{}
			}
			params[strings.TrimSuffix(name, "}")] = segs[i]
			continue
		}
		if s != segs[i] {
			return nil, false
		}
	}
	return params, true
}

// find is the first route of method matching path; allowed lists the
// methods of routes matching path, for a 405.
func find(routes []*route, method, path string) (r *route, params map[string]string, allowed []string) {
	for _, x := range routes {
		p, ok := x.match(path)
		if !ok {
			continue
		}
		if x.cfg.Method == method {
			return x, p, nil
		}
		allowed = append(allowed, x.cfg.Method)
	}
	return nil, nil, allowed
}

var expression = regexp.MustCompile(`\$\{(params|header)\.([^}]*)\}`)

// resolve substitutes a route's ${params.x} and ${header.x} for a
// request; ok is false when one names nothing the request has.
func resolve(s string, params map[string]string, h http.Header) (string, bool) {
	ok := true
	out := expression.ReplaceAllStringFunc(s, func(m string) string {
		sub := expression.FindStringSubmatch(m)
		var v string
		var found bool
		if sub[1] == "params" {
			v, found = params[sub[2]]
		} else {
			vs := h.Values(sub[2])
			found = len(vs) > 0
			if found {
				v = vs[0]
			}
		}
		if !found {
			ok = false
		}
		return v
	})
	return out, ok
}
