// Command meshka runs a meshka node: a Kafka edge in front of an upstream
// Kafka cluster.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/meshka/meshka/config"
)

func main() {
	stdin = os.Stdin
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// stdin is where commands read input from (meshka user add, a password).
var stdin io.Reader = strings.NewReader("")

// run is the whole command line; it returns the exit status: 0 on
// success, 1 when the work failed, 2 when the command line was wrong.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		topCommand().usage(stderr)
		return 2
	}
	switch args[0] {
	case "dev":
		return serve(devCommand(), args[1:], true, stdout, stderr)
	case "run":
		return serve(runCommand(), args[1:], false, stdout, stderr)
	case "config":
		return configCmd(args[1:], stdout, stderr)
	case "user":
		return userCmd(args[1:], stdin, stdout, stderr)
	case "status":
		return statusCmd(args[1:], stdout, stderr)
	case "version", "--version", "-v":
		return versionCmd(args[1:], stdout, stderr)
	case "help", "--help", "-h":
		return help(args[1:], stdout, stderr)
	}
	if strings.HasPrefix(args[0], "-") {
		return topCommand().fail(stderr, "unknown flag %s", args[0])
	}
	return topCommand().fail(stderr, "unknown command %q", args[0])
}

// help serves "meshka help [COMMAND]", the way "COMMAND --help" does.
func help(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		topCommand().usage(stdout)
		return 0
	}
	switch strings.Join(args, " ") {
	case "dev", "run", "config", "config check", "version", "user", "user add", "status":
		return run(append(args, "--help"), stdout, stderr)
	}
	return topCommand().fail(stderr, "no help for %q", strings.Join(args, " "))
}

func configCmd(args []string, stdout, stderr io.Writer) int {
	c := configCommand()
	if len(args) > 0 && args[0] == "check" {
		// check parses its own arguments, so "config check --help" is its
		// help, not a file name.
		return configCheck(args[1:], stdout, stderr)
	}
	rest, code, ok := c.start(args, stdout, stderr)
	switch {
	case !ok:
		return code
	case len(rest) == 0:
		return c.fail(stderr, "missing subcommand")
	}
	return c.fail(stderr, "unknown subcommand %q", rest[0])
}

func configCheck(args []string, stdout, stderr io.Writer) int {
	c := configCheckCommand()
	rest, code, ok := c.start(args, stdout, stderr)
	if !ok {
		return code
	}
	switch {
	case len(rest) == 0:
		return c.fail(stderr, "missing FILE")
	case len(rest) > 1:
		return c.fail(stderr, "unexpected argument %q", rest[1])
	}
	if _, err := config.Load(rest[0]); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintln(stdout, "ok")
	return 0
}

func versionCmd(args []string, stdout, stderr io.Writer) int {
	c := versionCommand()
	rest, code, ok := c.start(args, stdout, stderr)
	if !ok {
		return code
	}
	if len(rest) > 0 {
		return c.fail(stderr, "unexpected argument %q", rest[0])
	}
	fmt.Fprintln(stdout, "meshka", buildVersion())
	return 0
}
