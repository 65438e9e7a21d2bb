// Command meshka runs a meshka node: a Kafka edge in front of an upstream
// Kafka cluster.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/embedded"
	"github.com/meshka/meshka/node"
)

const usage = `meshka: a Kafka edge mesh.

Usage:
  meshka dev    [--config FILE] [--listen HOST:PORT] [--data-dir DIR]
  meshka run    [--config FILE] [--listen HOST:PORT] [--advertise HOST:PORT] [--upstream HOST:PORT[,HOST:PORT...]]
  meshka config check FILE
  meshka version

dev runs one node with an embedded Kafka-compatible upstream persisted in
DIR (default ./.meshka-dev); run puts a node in front of a real cluster.
Flags override the configuration file.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "dev":
		return serve(args[1:], true, stderr)
	case "run":
		return serve(args[1:], false, stderr)
	case "config":
		if len(args) != 3 || args[1] != "check" {
			fmt.Fprint(stderr, usage)
			return 2
		}
		return configCheck(args[2], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "meshka", buildVersion())
		return 0
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "meshka: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func configCheck(path string, stdout, stderr io.Writer) int {
	if _, err := config.Load(path); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintln(stdout, "ok")
	return 0
}

func serve(args []string, dev bool, stderr io.Writer) int {
	name := "run"
	if dev {
		name = "dev"
	}
	fs := flag.NewFlagSet("meshka "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "", "configuration file (YAML)")
	listen := fs.String("listen", "", "Kafka listener host:port")
	var advertise, upstreams, dataDir *string
	if dev {
		dataDir = fs.String("data-dir", "", "directory the embedded upstream persists to")
	} else {
		advertise = fs.String("advertise", "", "host:port clients are told to connect to")
		upstreams = fs.String("upstream", "", "upstream seed brokers, comma separated")
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "meshka %s: unexpected argument %q\n", name, fs.Arg(0))
		return 2
	}

	cfg := config.Default()
	if *file != "" {
		var err error
		if cfg, err = config.Load(*file); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
	}
	if *listen != "" {
		cfg.Node.Listen = *listen
	}
	if advertise != nil && *advertise != "" {
		cfg.Node.Advertise = *advertise
	}
	if upstreams != nil && *upstreams != "" {
		cfg.Upstream.Brokers = strings.Split(*upstreams, ",")
	}
	if dataDir != nil && *dataDir != "" {
		cfg.Dev.DataDir = *dataDir
	}
	log := newLogger(cfg.Log, stderr)

	if dev {
		up, err := embedded.Start(embedded.Config{Brokers: cfg.Dev.Brokers, Partitions: cfg.Dev.Partitions, DataDir: cfg.Dev.DataDir, ClusterID: "meshka-dev"})
		if err != nil {
			log.Error("cannot start the embedded upstream", "err", err)
			return 1
		}
		defer up.Close()
		cfg.Upstream.Brokers = up.ListenAddrs()
		log.Info("embedded upstream started", "brokers", cfg.Upstream.Brokers, "data_dir", cfg.Dev.DataDir)
	} else if len(cfg.Upstream.Brokers) == 0 {
		fmt.Fprintln(stderr, "meshka run: no upstream brokers: pass --upstream HOST:PORT or set upstream.brokers")
		return 2
	}

	n, err := node.Start(cfg, node.Options{Logger: log})
	if err != nil {
		var errs config.Errors
		if errors.As(err, &errs) {
			fmt.Fprintln(stderr, err)
		} else {
			log.Error("cannot start meshka", "err", err)
		}
		return 1
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
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
		log.Warn("shutdown bound reached; remaining connections closed", "err", err)
	}
	return code
}
