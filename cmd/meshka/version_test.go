package main

import (
	"runtime/debug"
	"testing"
)

func TestVersionOf(t *testing.T) {
	rev := "622332f4b1e0c7d1a9e3b5f60718293a4b5c6d7e"
	tests := []struct {
		name     string
		main     string
		settings map[string]string
		want     string
	}{
		{"nothing", "(devel)", nil, "dev"},
		{"no main version", "", nil, "dev"},
		{"clean checkout", "(devel)", map[string]string{"vcs": "git", "vcs.revision": rev, "vcs.modified": "false"}, "622332f"},
		{"dirty checkout", "(devel)", map[string]string{"vcs.revision": rev, "vcs.modified": "true"}, "622332f-dirty"},
		// Go 1.24 and later also derive a pseudo-version from the commit;
		// the commit is the shorter and the one git names.
		{"pseudo-version", "v0.0.0-20261201081900-622332f4b1e0+dirty", map[string]string{"vcs.revision": rev, "vcs.modified": "true"}, "622332f-dirty"},
		{"go install at a version", "v1.2.3", nil, "v1.2.3"},
		{"short revision", "(devel)", map[string]string{"vcs.revision": "abc"}, "abc"},
	}
	for _, tc := range tests {
		bi := &debug.BuildInfo{Main: debug.Module{Path: "github.com/meshka/meshka", Version: tc.main}}
		for k, v := range tc.settings {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: k, Value: v})
		}
		if got := versionOf(bi); got != tc.want {
			t.Errorf("%s: versionOf = %q, want %q", tc.name, got, tc.want)
		}
	}
}
