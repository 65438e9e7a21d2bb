package httpmap

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/meshka/meshka/config"
)

// openAPIPath is where the OpenAPI document of the configured routes is
// served (unless a route takes the path).
const openAPIPath = "/openapi.json"

// openAPI is an OpenAPI 3.1 document of the routes: each path and
// method, its parameters, what it reads or writes, and its answers.
func (s *Server) openAPI() map[string]any {
	paths := map[string]map[string]any{}
	for _, rt := range s.routesNow() {
		var params []any
		for _, seg := range rt.segments {
			if name, ok := strings.CutPrefix(seg, "{"); ok {
				params = append(params, map[string]any{"name": strings.TrimSuffix(name, "}"), "in": "path", "required": true,
					"schema": map[string]any{"type": "string"}})
			}
		}
		op := map[string]any{"summary": summary(rt), "responses": responses(rt)}
		if len(params) > 0 {
			op["parameters"] = params
		}
		if rt.cfg.Method != http.MethodGet {
			op["requestBody"] = map[string]any{"content": map[string]any{"*/*": map[string]any{}}}
		}
		if paths[rt.cfg.Path] == nil {
			paths[rt.cfg.Path] = map[string]any{}
		}
		paths[rt.cfg.Path][strings.ToLower(rt.cfg.Method)] = op
	}
	return map[string]any{"openapi": "3.1.0", "info": map[string]any{"title": "meshka HTTP routes", "version": "1"}, "paths": paths}
}

func summary(rt *route) string {
	t := rt.cfg.Topic
	switch rt.cfg.Capability {
	case config.CapProduce:
		return "writes the body as a record of " + t
	case config.CapFetch:
		return "reads " + t + " as a JSON array (ETag, If-None-Match, Prefer: wait=N)"
	case config.CapItem:
		return "an item of the compacted topic " + t
	case config.CapStream:
		return "streams " + t + " as Server-Sent Events (Last-Event-ID resumes)"
	case config.CapRequest:
		return "a request on " + t + ", answered by the reply on " + rt.cfg.ReplyTo
	case config.CapWebSocket:
		return "a WebSocket over " + t
	}
	return rt.cfg.Capability
}

func responses(rt *route) map[string]any {
	r := func(desc string) map[string]any { return map[string]any{"description": desc} }
	switch rt.cfg.Capability {
	case config.CapProduce:
		return map[string]any{"201": r("written: topic, partition, offset, timestamp"), "413": r("body too large")}
	case config.CapFetch:
		return map[string]any{"200": r("the records' values"), "304": r("nothing new")}
	case config.CapItem:
		return map[string]any{"200": r("the item"), "201": r("created"), "204": r("replaced or deleted"), "404": r("absent"), "412": r("the item changed")}
	case config.CapStream:
		return map[string]any{"200": r("text/event-stream"), "400": r("an id this stream did not give")}
	case config.CapRequest:
		return map[string]any{"200": r("the reply (its status header may set another)"), "202": r("accepted (async)"), "504": r("no reply in time")}
	}
	return map[string]any{"default": r("")}
}

// serveOpenAPI answers the document.
func (s *Server) serveOpenAPI(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(s.openAPI())
}
