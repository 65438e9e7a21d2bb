package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// meshka writes its own flag parsing and usage rather than using package
// flag, whose usage and errors spell flags with one dash while meshka's
// documentation, unit files and users write two.

// errHelp is returned by parse for --help or -h.
var errHelp = errors.New("help requested")

// command is one meshka command: how to call it, what it does, and its
// flags. Flags take a value each; meshka has no boolean flags.
type command struct {
	name     string   // "meshka run"
	synopsis string   // what follows the name in the usage line
	about    string   // a paragraph on what the command does
	commands []string // "name  description" lines of subcommands
	footer   string   // a line after the flags
	flags    []*flagDef
}

type flagDef struct {
	name  string // without dashes
	arg   string // the value's placeholder, e.g. "HOST:PORT"
	usage string
	def   string // the built-in default as shown in the usage; "" for none

	value string
	set   bool
}

func (c *command) flag(name string) *flagDef {
	for _, f := range c.flags {
		if f.name == name {
			return f
		}
	}
	return nil
}

// parse sets c's flags from args and returns the other arguments. Flags may
// come before or after them; "--" ends the flags. A flag is written
// "--name VALUE" or "--name=VALUE"; one dash is accepted too, as older
// meshka versions took it.
func (c *command) parse(args []string) ([]string, error) {
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(rest, args[i+1:]...), nil
		}
		if len(a) < 2 || a[0] != '-' {
			rest = append(rest, a)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(a[1:], "-"), "=")
		if name == "h" || name == "help" {
			return nil, errHelp
		}
		f := c.flag(name)
		if f == nil {
			return nil, fmt.Errorf("unknown flag --%s", name)
		}
		if !hasValue {
			if i+1 == len(args) {
				return nil, fmt.Errorf("flag --%s needs a value: --%s %s", name, name, f.arg)
			}
			i++
			value = args[i]
		}
		f.value, f.set = value, true
	}
	return rest, nil
}

// usage writes c's help: the usage line, what the command does, then each
// flag as "--name VALUE  description (default: …)".
func (c *command) usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s\n\n%s\n", strings.TrimSpace(c.name+" "+c.synopsis), c.about)
	if len(c.commands) > 0 {
		fmt.Fprintf(w, "\nCommands:\n")
		for _, l := range c.commands {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
	cols := make([]string, len(c.flags)+1)
	width := 0
	for i, f := range c.flags {
		cols[i] = "--" + f.name + " " + f.arg
		width = max(width, len(cols[i]))
	}
	cols[len(c.flags)] = "-h, --help"
	width = max(width, len(cols[len(c.flags)]))
	fmt.Fprintf(w, "\nFlags:\n")
	for i, f := range c.flags {
		desc := f.usage
		if f.def != "" {
			desc += " (default: " + f.def + ")"
		}
		fmt.Fprintf(w, "  %-*s  %s\n", width, cols[i], desc)
	}
	fmt.Fprintf(w, "  %-*s  %s\n", width, cols[len(c.flags)], "print this help and exit")
	if c.footer != "" {
		fmt.Fprintf(w, "\n%s\n", c.footer)
	}
}

// start parses args for c. It returns the other arguments, or ok false and
// the exit code when the command must stop: 0 after printing the help to
// stdout, 2 after a bad flag, reported on stderr with the usage.
func (c *command) start(args []string, stdout, stderr io.Writer) (rest []string, code int, ok bool) {
	rest, err := c.parse(args)
	switch {
	case errors.Is(err, errHelp):
		c.usage(stdout)
		return nil, 0, false
	case err != nil:
		return nil, c.fail(stderr, "%v", err), false
	}
	return rest, 0, true
}

// fail reports a mistake in how c was called, then its usage, and returns
// the exit code for it.
func (c *command) fail(stderr io.Writer, format string, args ...any) int {
	fmt.Fprintf(stderr, "%s: %s\n\n", c.name, fmt.Sprintf(format, args...))
	c.usage(stderr)
	return 2
}
