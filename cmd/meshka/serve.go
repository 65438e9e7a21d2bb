package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/embedded"
	"github.com/meshka/meshka/internal/datadir"
	"github.com/meshka/meshka/node"
)

// flagKeys names the configuration key each overriding flag sets, so a
// problem with the result can be blamed on the flag.
var flagKeys = map[string]string{
	"listen":    "node.listen",
	"advertise": "node.advertise",
	"upstream":  "upstream.brokers",
	"data-dir":  "dev.data_dir",
}

// serve is `meshka dev` and `meshka run`: configuration, then for dev the
// data dir and the embedded upstream, then a node until a signal.
func serve(c *command, args []string, dev bool, stdout, stderr io.Writer) int {
	rest, code, ok := c.start(args, stdout, stderr)
	if !ok {
		return code
	}
	if len(rest) > 0 {
		return c.fail(stderr, "unexpected argument %q", rest[0])
	}
	cfg := config.Default()
	if f := c.flag("config"); f.set {
		var err error
		if cfg, err = config.Load(f.value); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
	}
	override(c, &cfg)
	if errs := cfg.Validate(); len(errs) > 0 {
		for _, e := range errs {
			fmt.Fprintf(stderr, "%s: %s%v\n", c.name, blame(c, e.Path), e)
		}
		return 1
	}
	if !dev && len(cfg.Upstream.Brokers) == 0 {
		fmt.Fprintf(stderr, "%s: no upstream brokers: pass --upstream HOST:PORT or set upstream.brokers\n", c.name)
		return 2
	}
	log := newLogger(cfg.Log, stderr)

	// Caught from here on, so a signal during startup still ends in an
	// orderly shutdown with exit status 0.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)

	if dev {
		// Before the embedded upstream opens a file: a second kfake on
		// the same directory would corrupt the first one's data.
		lock, err := datadir.Acquire(cfg.Dev.DataDir)
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", c.name, err)
			return 1
		}
		defer lock.Release()
		up, err := embedded.Start(embedded.Config{Brokers: cfg.Dev.Brokers, Partitions: cfg.Dev.Partitions, DataDir: cfg.Dev.DataDir, ClusterID: "meshka-dev"})
		if err != nil {
			log.Error("cannot start the embedded upstream", "err", err)
			return 1
		}
		defer up.Close()
		cfg.Upstream.Brokers = up.ListenAddrs()
		log.Info("embedded upstream started", "brokers", cfg.Upstream.Brokers, "data_dir", cfg.Dev.DataDir)
	}

	n, err := node.Start(cfg, node.Options{Logger: log})
	if err != nil {
		log.Error("cannot start meshka", "err", err)
		return 1
	}
	code = 0
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

// override applies the flags given to the keys they set.
func override(c *command, cfg *config.Config) {
	for _, f := range c.flags {
		if !f.set {
			continue
		}
		switch f.name {
		case "listen":
			cfg.Node.Listen = f.value
		case "advertise":
			cfg.Node.Advertise = f.value
		case "upstream":
			cfg.Upstream.Brokers = strings.Split(f.value, ",")
		case "data-dir":
			cfg.Dev.DataDir = f.value
		}
	}
}

// blame names the flag that set the key at path, as "--flag VALUE: ", or
// returns "" when no flag did.
func blame(c *command, path string) string {
	for _, f := range c.flags {
		key, ok := flagKeys[f.name]
		if f.set && ok && (path == key || strings.HasPrefix(path, key+"[")) {
			return fmt.Sprintf("--%s %s: ", f.name, f.value)
		}
	}
	return ""
}
