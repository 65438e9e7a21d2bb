package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/meshka/meshka/auth"
	"github.com/meshka/meshka/config"
)

func userCommand() *command {
	return &command{
		name:     "meshka user",
		synopsis: "add NAME [flags]",
		about:    "user has one subcommand, add.",
		commands: []string{"add NAME  print the security.users entry of a new SASL user"},
	}
}

func userAddCommand() *command {
	return &command{
		name:     "meshka user add",
		synopsis: "NAME [flags]",
		about: "add reads the user's password from standard input (its first line) and\n" +
			"prints the entry to put under security.users: the password salted and\n" +
			"hashed as SCRAM stores it, never the password itself. PLAIN checks\n" +
			"passwords against the same entry.\n\n" +
			"  printf '%s' \"$PASSWORD\" | meshka user add alice >> users.yaml",
		flags: []*flagDef{
			{name: "mechanism", arg: "MECH[,MECH]", usage: "SCRAM-SHA-256, SCRAM-SHA-512 or both", def: "SCRAM-SHA-256,SCRAM-SHA-512"},
			{name: "iterations", arg: "N", usage: "PBKDF2 iterations (at least 4096)", def: "8192"},
		},
	}
}

// userCmd serves "meshka user …"; stdin gives add its password.
func userCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "add" {
		return userAdd(args[1:], stdin, stdout, stderr)
	}
	c := userCommand()
	rest, code, ok := c.start(args, stdout, stderr)
	switch {
	case !ok:
		return code
	case len(rest) == 0:
		return c.fail(stderr, "missing subcommand")
	}
	return c.fail(stderr, "unknown subcommand %q", rest[0])
}

func userAdd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := userAddCommand()
	rest, code, ok := c.start(args, stdout, stderr)
	switch {
	case !ok:
		return code
	case len(rest) == 0:
		return c.fail(stderr, "missing NAME")
	case len(rest) > 1:
		return c.fail(stderr, "unexpected argument %q", rest[1])
	}
	name := rest[0]
	iters := 8192
	if f := c.flag("iterations"); f.set {
		n, err := strconv.Atoi(f.value)
		if err != nil || n < 4096 {
			return c.fail(stderr, "--iterations %q: a number, at least 4096", f.value)
		}
		iters = n
	}
	mechs := []string{auth.ScramSHA256, auth.ScramSHA512}
	if f := c.flag("mechanism"); f.set {
		mechs = strings.Split(f.value, ",")
	}
	if f, ok := stdin.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			fmt.Fprintf(stderr, "password for %s (echoed; pipe it in to keep it off the screen): ", name)
		}
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && err != io.EOF {
		fmt.Fprintln(stderr, "meshka user add: reading the password:", err)
		return 1
	}
	password := strings.TrimRight(line, "\r\n")
	if password == "" {
		fmt.Fprintln(stderr, "meshka user add: an empty password (give it on standard input)")
		return 1
	}
	user := config.User{Name: name}
	for _, m := range mechs {
		cred, err := auth.NewCredential(strings.TrimSpace(m), name, password, iters)
		if err != nil {
			return c.fail(stderr, "--mechanism: %v", err)
		}
		if strings.TrimSpace(m) == auth.ScramSHA256 {
			user.ScramSHA256 = cred
		} else {
			user.ScramSHA512 = cred
		}
	}
	out, err := yaml.Marshal([]config.User{user})
	if err != nil {
		fmt.Fprintln(stderr, "meshka user add:", err)
		return 1
	}
	fmt.Fprintf(stdout, "# SASL user %s: an entry of security.users\n%s", name, out)
	return 0
}
