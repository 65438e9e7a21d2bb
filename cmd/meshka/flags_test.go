package main

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		args   []string
		listen string
		set    bool // whether --listen was given
		rest   []string
		err    string
	}{
		{args: []string{"--listen", "a:1"}, listen: "a:1", set: true},
		{args: []string{"--listen=a:1"}, listen: "a:1", set: true},
		{args: []string{"-listen", "a:1"}, listen: "a:1", set: true},
		{args: []string{"--listen=", "x"}, set: true, rest: []string{"x"}},
		{args: []string{"x", "--listen", "a:1", "y"}, listen: "a:1", set: true, rest: []string{"x", "y"}},
		{args: []string{"--", "--listen", "a:1"}, rest: []string{"--listen", "a:1"}},
		{args: []string{"-"}, rest: []string{"-"}},
		{args: []string{"--bogus"}, err: "unknown flag --bogus"},
		{args: []string{"--bogus=1"}, err: "unknown flag --bogus"},
		{args: []string{"--listen"}, err: "flag --listen needs a value: --listen HOST:PORT"},
	}
	for _, tc := range tests {
		c := runCommand()
		rest, err := c.parse(tc.args)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("parse(%q): got error %v, want %q", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parse(%q): %v", tc.args, err)
			continue
		}
		f := c.flag("listen")
		if f.value != tc.listen || f.set != tc.set {
			t.Errorf("parse(%q): --listen = %q (set %v), want %q (set %v)", tc.args, f.value, f.set, tc.listen, tc.set)
		}
		if !reflect.DeepEqual(rest, tc.rest) {
			t.Errorf("parse(%q): rest = %q, want %q", tc.args, rest, tc.rest)
		}
	}
}

func TestParseHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"-help"}, {"--listen", "a:1", "--help"}, {"FILE", "-h"}} {
		if _, err := runCommand().parse(args); !errors.Is(err, errHelp) {
			t.Errorf("parse(%q) = %v, want errHelp", args, err)
		}
	}
}

// Every flag the commands take shows up in their usage with two dashes,
// its placeholder and, where it has one, its default.
func TestUsageListsEveryFlag(t *testing.T) {
	for _, c := range []*command{topCommand(), devCommand(), runCommand(), configCommand(), configCheckCommand(), versionCommand(), statusCommand()} {
		var b strings.Builder
		c.usage(&b)
		out := b.String()
		if !strings.HasPrefix(out, "Usage: "+c.name) {
			t.Errorf("%s: usage starts %q", c.name, out[:min(len(out), 40)])
		}
		for _, f := range c.flags {
			line := "--" + f.name + " " + f.arg
			if !strings.Contains(out, line) {
				t.Errorf("%s: usage lacks %q:\n%s", c.name, line, out)
			}
			if f.def != "" && !strings.Contains(out, "(default: "+f.def+")") {
				t.Errorf("%s: usage lacks the default of --%s:\n%s", c.name, f.name, out)
			}
		}
		if !strings.Contains(out, "-h, --help") {
			t.Errorf("%s: usage lacks --help:\n%s", c.name, out)
		}
	}
}
