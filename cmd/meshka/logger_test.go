package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/meshka/meshka/config"
)

func TestJSONLogWritesDurationsAsText(t *testing.T) {
	var b bytes.Buffer
	log := newLogger(config.Log{Level: "info", Format: "json"}, &b, new(slog.LevelVar))
	log.Info("shutting down", "timeout", 10*time.Second, slog.Group("g", "wait", 1500*time.Millisecond), "n", 7)
	var got map[string]any
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("%v: %s", err, b.Bytes())
	}
	if got["timeout"] != "10s" {
		t.Errorf("timeout = %#v, want \"10s\"", got["timeout"])
	}
	if g, _ := got["g"].(map[string]any); g["wait"] != "1.5s" {
		t.Errorf("g.wait = %#v, want \"1.5s\"", got["g"])
	}
	// Only durations change.
	if got["n"] != float64(7) {
		t.Errorf("n = %#v, want 7", got["n"])
	}
}

func TestTextLogWritesDurationsAsText(t *testing.T) {
	var b bytes.Buffer
	log := newLogger(config.Log{Level: "info", Format: "text"}, &b, new(slog.LevelVar))
	log.Info("shutting down", "timeout", 10*time.Second)
	if !strings.Contains(b.String(), " timeout=10s") {
		t.Errorf("got %q", b.String())
	}
}

func TestLogLevel(t *testing.T) {
	var b bytes.Buffer
	log := newLogger(config.Log{Level: "warn", Format: "text"}, &b, new(slog.LevelVar))
	log.Info("quiet")
	log.Warn("loud")
	if strings.Contains(b.String(), "quiet") || !strings.Contains(b.String(), "loud") {
		t.Errorf("at level warn got %q", b.String())
	}
}
