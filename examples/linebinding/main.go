// Command linebinding is a meshka node with a binding of its own, "line":
// a text protocol over TCP that writes records to Kafka topics and reads
// them (see README.md). It shows how a program built on meshka registers
// a binding and runs a node that starts it.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/embedded"
	"github.com/meshka/meshka/mesh"
	"github.com/meshka/meshka/node"
)

// Registered before main runs, so every node of the process can start it.
func init() { mesh.RegisterBinding("line", newLineBinding) }

func main() { os.Exit(run(os.Args[1:], os.Stderr)) }

// run returns the exit status: 0 after a signal, 1 when the node could not
// start or failed, 2 for a wrong command line.
func run(args []string, stderr io.Writer) int {
	flags := flag.NewFlagSet("linebinding", flag.ContinueOnError)
	flags.SetOutput(stderr)
	path := flags.String("config", "", "meshka configuration `FILE`; without it, the defaults and bindings.line with its defaults")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	if flags.NArg() > 0 {
		fmt.Fprintf(stderr, "linebinding: unexpected argument %q\n", flags.Arg(0))
		return 2
	}
	cfg := config.Default()
	if *path != "" {
		var err error
		if cfg, err = config.Load(*path); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
	} else {
		cfg.Bindings = map[string]config.Section{"line": {}}
	}
	log := newLogger(cfg.Log, stderr)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)

	// As `meshka dev` does, but in memory: without upstream brokers the
	// node gets an upstream of its own, which forgets everything on exit.
	if len(cfg.Upstream.Brokers) == 0 {
		up, err := embedded.Start(embedded.Config{Brokers: cfg.Dev.Brokers, Partitions: cfg.Dev.Partitions, ClusterID: "meshka-linebinding"})
		if err != nil {
			log.Error("cannot start the embedded upstream", "err", err)
			return 1
		}
		defer up.Close()
		cfg.Upstream.Brokers = up.ListenAddrs()
		log.Info("embedded upstream started, in memory", "brokers", cfg.Upstream.Brokers)
	}

	n, err := node.Start(cfg, node.Options{Logger: log})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	code := 0
	select {
	case s := <-sig:
		log.Info("shutting down", "signal", s.String(), "timeout", cfg.Kafka.ShutdownTimeout.D())
	case err := <-n.Done():
		log.Error("kafka listener failed", "err", err)
		code = 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Kafka.ShutdownTimeout.D())
	defer cancel()
	if err := n.Shutdown(ctx); err != nil {
		log.Warn("shutdown bound reached", "err", err)
	}
	return code
}

// newLogger is the logger log.level and log.format ask for.
func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(c.Level)) // validated by config
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
