package ratelog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	var buf bytes.Buffer
	l := New(slog.New(slog.NewTextHandler(&buf, nil)), 10*time.Second)
	clock := time.Unix(1000, 0)
	l.now = func() time.Time { return clock }

	if !l.Warn("up", "upstream unreachable", "err", "refused") {
		t.Fatal("first warning not written")
	}
	for i := 0; i < 5; i++ {
		clock = clock.Add(time.Second)
		if l.Warn("up", "upstream unreachable", "err", "refused") {
			t.Fatalf("repeat %d within the interval was written", i)
		}
	}
	if !l.Warn("other", "something else") {
		t.Fatal("a different key was held back")
	}
	clock = clock.Add(5 * time.Second) // 10 s after the first line
	if !l.Warn("up", "upstream unreachable", "err", "refused") {
		t.Fatal("warning after the interval not written")
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want 3:\n%s", len(lines), buf.String())
	}
	if strings.Contains(lines[0], "repeated") {
		t.Errorf("first line carries a count: %s", lines[0])
	}
	if !strings.Contains(lines[2], "repeated=5") || !strings.Contains(lines[2], "since=10s") {
		t.Errorf("line after the interval lacks the count of 5 over 10s: %s", lines[2])
	}
}
