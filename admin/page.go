package admin

import (
	_ "embed"
	"net/http"
)

// statusPage is the live status page: one file, no external assets, that
// polls /api/status and draws it.
//
//go:embed status.html
var statusPage []byte

func page(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'")
	_, _ = w.Write(statusPage)
}
