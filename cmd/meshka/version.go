package main

import "runtime/debug"

// version is set at build time with -ldflags "-X main.version=…", as the
// Makefile and deploy/Containerfile do.
var version = ""

// buildVersion is the linked-in version; else the commit the binary was
// built from, which `go build` records in a git checkout; else the module
// version `go install …@v1.2.3` records; else "dev".
func buildVersion() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	return versionOf(bi)
}

func versionOf(bi *debug.BuildInfo) string {
	var rev string
	var modified bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev != "" {
		// git's own short form, as in `git describe --always`.
		rev = rev[:min(len(rev), 7)]
		if modified {
			rev += "-dirty"
		}
		return rev
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	return "dev"
}
