package config

import (
	"slices"
	"testing"
)

// Diff names the keys that changed, as the file spells them, and a
// binding's section only when what it says changed, not where.
func TestDiff(t *testing.T) {
	a, err := Parse("a.yaml", []byte("log:\n  level: info\nbindings:\n  line:\n    listen: 127.0.0.1:7070\n"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse("b.yaml", []byte("# moved down a line\nlog:\n  level: debug\nkafka:\n  max_frame_bytes: 1MiB\nbindings:\n  line:\n    listen: 127.0.0.1:7070\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := Diff(a, b), []string{"kafka.max_frame_bytes", "log.level"}; !slices.Equal(got, want) {
		t.Errorf("Diff = %v, want %v", got, want)
	}
	c, err := Parse("c.yaml", []byte("log:\n  level: info\nbindings:\n  line:\n    listen: 127.0.0.1:7071\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := Diff(a, c), []string{"bindings.line"}; !slices.Equal(got, want) {
		t.Errorf("Diff = %v, want %v", got, want)
	}
	if got := Diff(a, a); len(got) != 0 {
		t.Errorf("Diff of a config with itself = %v", got)
	}
}
