package mesh_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/mesh"
)

type nopBinding struct{ env mesh.BindingEnv }

func (nopBinding) Start(context.Context) error { return nil }
func (nopBinding) Stop(context.Context) error  { return nil }
func (nopBinding) Health() mesh.Health         { return mesh.Health{OK: true} }

var _ mesh.Binding = nopBinding{}

func nopFactory(env mesh.BindingEnv, _ mesh.BindingConfig) (mesh.Binding, error) {
	return nopBinding{env}, nil
}

// panics runs f and returns what it panicked with, as text; "" if it did
// not panic.
func panics(f func()) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg, _ = r.(string)
			if msg == "" {
				msg = "a panic"
			}
		}
	}()
	f()
	return ""
}

// The registry is process-wide, so each test registers names of its own.
func TestRegisterBinding(t *testing.T) {
	mesh.RegisterBinding("test-register-b", nopFactory)
	mesh.RegisterBinding("test-register-a", nopFactory)
	names := mesh.Bindings()
	i, j := slices.Index(names, "test-register-a"), slices.Index(names, "test-register-b")
	if i < 0 || j < 0 || !slices.IsSorted(names) {
		t.Fatalf("Bindings() = %v, want both test bindings, sorted", names)
	}
	f, ok := mesh.LookupBinding("test-register-a")
	if !ok {
		t.Fatal("LookupBinding does not find a registered binding")
	}
	b, err := f(mesh.BindingEnv{Name: "test-register-a", NodeID: 3}, config.Section{})
	if err != nil || b.(nopBinding).env.NodeID != 3 {
		t.Fatalf("the factory looked up is not the one registered: %v, %v", b, err)
	}
	if _, ok := mesh.LookupBinding("test-register-c"); ok {
		t.Error("LookupBinding finds a name never registered")
	}
}

func TestRegisterBindingPanics(t *testing.T) {
	mesh.RegisterBinding("test-panics", nopFactory)
	tests := []struct {
		name, binding string
		f             mesh.Factory
		want          string
	}{
		{"twice", "test-panics", nopFactory, `called twice for binding "test-panics"`},
		{"empty name", "", nopFactory, "empty name"},
		{"nil factory", "test-panics-nil", nil, "nil factory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg := panics(func() { mesh.RegisterBinding(tc.binding, tc.f) })
			if !strings.Contains(msg, tc.want) {
				t.Fatalf("RegisterBinding(%q) panicked with %q, want %q", tc.binding, msg, tc.want)
			}
		})
	}
	if _, ok := mesh.LookupBinding("test-panics-nil"); ok {
		t.Error("a nil factory was registered")
	}
}
