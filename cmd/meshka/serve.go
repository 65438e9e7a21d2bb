package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/meshka/meshka/admin"
	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/embedded"
	"github.com/meshka/meshka/internal/datadir"
	"github.com/meshka/meshka/node"
)

// flagKeys names the configuration key each overriding flag sets, so a
// problem with the result can be blamed on the flag.
var flagKeys = map[string]string{
	"listen":         "node.listen",
	"advertise":      "node.advertise",
	"node-id":        "node.id",
	"cluster-bind":   "cluster.bind",
	"cluster-remote": "cluster.remote",
	"join":           "cluster.join",
	"upstream":       "upstream.brokers",
	"data-dir":       "dev.data_dir",
	"nodes":          "dev.nodes",
	"admin":          "admin.listen",
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
	if err := override(c, &cfg); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", c.name, err)
		return 1
	}
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
	fileCfg := cfg // before dev's changes: what a reload compares the file with
	level := new(slog.LevelVar)
	log := newLogger(cfg.Log, stderr, level)
	rl := &reloader{c: c, level: level, log: log, cur: fileCfg}

	// Caught from here on, so a signal during startup still ends in an
	// orderly shutdown with exit status 0.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	// SIGHUP reloads the configuration once the nodes run; one during startup
	// waits for then rather than ending the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	if dev {
		// Before the embedded upstream opens a file: a second kfake on
		// the same directory would corrupt the first one's data.
		lock, err := datadir.Acquire(cfg.Dev.DataDir)
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", c.name, err)
			return 1
		}
		defer lock.Release()
		dir, err := devMesh(&cfg)
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", c.name, err)
			return 1
		}
		if dir != "" {
			log.Info("dev mesh: gossip encrypted and remoting under mutual TLS, with a key and certificates in "+dir,
				"gossip_key_file", cfg.Cluster.GossipKeyFile, "remote_tls.ca_file", cfg.Cluster.RemoteTLS.CAFile)
		}
		up, err := embedded.Start(embedded.Config{Brokers: cfg.Dev.Brokers, Partitions: cfg.Dev.Partitions, DataDir: cfg.Dev.DataDir, ClusterID: "meshka-dev"})
		if err != nil {
			log.Error("cannot start the embedded upstream", "err", err)
			return 1
		}
		defer up.Close()
		cfg.Upstream.Brokers = up.ListenAddrs()
		// The embedded upstream is plaintext and open: the upstream
		// security of a file shared with `meshka run` is not for it.
		cfg.Upstream.TLS, cfg.Upstream.SASL = nil, nil
		log.Info("embedded upstream started", "brokers", cfg.Upstream.Brokers, "data_dir", cfg.Dev.DataDir)
	}

	var devCA string
	if dev {
		devMQTT(&cfg)
		devHTTP(&cfg)
		var err error
		if devCA, err = addDevSecurity(&cfg); err != nil {
			log.Error("cannot set up the dev SASL_SSL listener", "err", err)
			return 1
		}
	}
	adminPort(&cfg)
	var reloadFn func() (admin.ReloadReport, error)
	if f := c.flag("config"); f != nil && f.set {
		reloadFn = rl.reload
	}
	nodes, err := startNodes(cfg, dev, node.Options{Logger: log, Version: buildVersion(), Reload: reloadFn})
	if err != nil {
		log.Error("cannot start meshka", "err", err)
		return 1
	}
	if devCA != "" {
		if addr, ok := nodes[0].ListenerAddr(devListenerName); ok {
			log.Info("SASL_SSL listener for trying TLS and SASL: user dev, password dev-secret, node i on its port + i",
				"listen", addr.String(), "kcat", devKcat(addr, devCA))
		}
	}
	done := make(chan error, len(nodes))
	for _, n := range nodes {
		go func() { done <- <-n.Done() }()
	}
	rl.mu.Lock()
	rl.nodes = nodes
	rl.mu.Unlock()
	code = 0
wait:
	for {
		select {
		case <-hup:
			_, _ = rl.reload() // it logs what it did, or why not
		case s := <-sig:
			log.Info("shutting down", "signal", s.String(), "timeout", cfg.Kafka.ShutdownTimeout.D())
			break wait
		case err := <-done:
			log.Error("kafka listener failed", "err", err)
			code = 1
			break wait
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Kafka.ShutdownTimeout.D())
	defer cancel()
	// Last first: each leaves while the others still gossip, so its leave
	// is heard, and they take over its clients.
	for i := len(nodes) - 1; i >= 0; i-- {
		if err := nodes[i].Shutdown(ctx); err != nil {
			log.Warn("shutdown bound reached; remaining connections closed", "err", err)
		}
	}
	return code
}

// startNodes starts the node cfg describes, or for dev --nodes N, N nodes
// joined in one cluster: node i with id node.id + i, its Kafka listener
// and gossip address on their ports + i (port 0 stays 0), joining node 0.
func startNodes(cfg config.Config, dev bool, opts node.Options) ([]*node.Node, error) {
	count := 1
	if dev {
		count = cfg.Dev.Nodes
	}
	var nodes []*node.Node
	for i := 0; i < count; i++ {
		c := cfg
		if count > 1 {
			c.Node.ID = cfg.Node.ID + int32(i)
			c.Node.Listen = portPlus(cfg.Node.Listen, i)
			if cfg.Node.Advertise != "" {
				c.Node.Advertise = portPlus(cfg.Node.Advertise, i)
			}
			c.Cluster.Bind = portPlus(cfg.Cluster.Bind, i)
			for _, a := range []*string{&c.MQTT.Listen, &c.MQTT.Advertise, &c.MQTT.WebSocket, &c.HTTP.Listen, &c.HTTP.Advertise, &c.HTTP.SchemaRegistry.Listen,
				&c.Admin.Listen, &c.Admin.Advertise} {
				if *a != "" {
					*a = portPlus(*a, i)
				}
			}
			c.Kafka.Listeners = nil
			for _, l := range cfg.Kafka.Listeners {
				l.Listen = portPlus(l.Listen, i)
				if l.Advertise != "" {
					l.Advertise = portPlus(l.Advertise, i)
				}
				c.Kafka.Listeners = append(c.Kafka.Listeners, l)
			}
			// Remoting on port + i (port 0 picks one). Several nodes' remoting
			// in one process trips the race detector (internal/race), not
			// this binary: each remote.Start sets gRPC's process-wide
			// logger to an equal discarding one.
			if cfg.Cluster.Remote != "" {
				c.Cluster.Remote = portPlus(cfg.Cluster.Remote, i)
			}
			if i > 0 {
				c.Cluster.Join = append([]string{nodes[0].GossipAddr()}, cfg.Cluster.Join...)
			}
		}
		n, err := node.Start(c, opts)
		if err != nil {
			for _, n := range nodes {
				n.Shutdown(context.Background())
			}
			return nil, err
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

// devMQTT serves MQTT in meshka dev, on 127.0.0.1:1883 unless the
// configuration says where (a Kafka listener on port 0 picks one for
// MQTT too).
func devMQTT(cfg *config.Config) {
	if cfg.MQTT.Listen != "" {
		return
	}
	cfg.MQTT.Listen = "127.0.0.1:1883"
	if _, port, err := net.SplitHostPort(cfg.Node.Listen); err == nil && port == "0" {
		cfg.MQTT.Listen = "127.0.0.1:0"
	}
}

// devHTTP serves HTTP in meshka dev, on 127.0.0.1:8080 unless the
// configuration says where (a Kafka listener on port 0 picks one for
// HTTP too), with the built-in schema registry unless the configuration
// names an external one (schema.registry.url): the two exclude each
// other.
func devHTTP(cfg *config.Config) {
	if cfg.HTTP.Listen != "" {
		return
	}
	cfg.HTTP.Listen = "127.0.0.1:8080"
	cfg.HTTP.Confluent = true
	cfg.HTTP.SchemaRegistry.Enabled = !cfg.HasExternalSchemaRegistry()
	if _, port, err := net.SplitHostPort(cfg.Node.Listen); err == nil && port == "0" {
		cfg.HTTP.Listen = "127.0.0.1:0"
	}
}

// adminPort leaves the admin listener where the configuration says,
// except that with the Kafka listener on port 0 and admin.listen at its
// default, it picks a port too, as dev's MQTT and HTTP listeners do: so
// nodes started side by side on port 0 (tests) do not contend for 9644.
func adminPort(cfg *config.Config) {
	if _, port, err := net.SplitHostPort(cfg.Node.Listen); err == nil && port == "0" && cfg.Admin.Listen == config.Default().Admin.Listen {
		cfg.Admin.Listen = "127.0.0.1:0"
	}
}

// portPlus is addr with i added to its port; port 0 stays 0.
func portPlus(addr string, i int) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	p, err := strconv.Atoi(port)
	if err != nil || p == 0 {
		return addr
	}
	return net.JoinHostPort(host, strconv.Itoa(p+i))
}

// override applies the flags given to the keys they set.
func override(c *command, cfg *config.Config) error {
	for _, f := range c.flags {
		if !f.set {
			continue
		}
		switch f.name {
		case "listen":
			cfg.Node.Listen = f.value
		case "advertise":
			cfg.Node.Advertise = f.value
		case "node-id":
			n, err := strconv.ParseInt(f.value, 10, 32)
			if err != nil {
				return fmt.Errorf("--node-id %s: node.id: must be a whole number from 0 to 2147483647", f.value)
			}
			cfg.Node.ID = int32(n)
		case "cluster-bind":
			cfg.Cluster.Bind = f.value
		case "cluster-remote":
			cfg.Cluster.Remote = f.value
		case "join":
			cfg.Cluster.Join = nil
			for _, s := range strings.Split(f.value, ",") {
				if s = strings.TrimSpace(s); s != "" {
					cfg.Cluster.Join = append(cfg.Cluster.Join, s)
				}
			}
		case "upstream":
			cfg.Upstream.Brokers = strings.Split(f.value, ",")
		case "admin":
			cfg.Admin.Listen = f.value
		case "data-dir":
			cfg.Dev.DataDir = f.value
		case "nodes":
			n, err := strconv.Atoi(f.value)
			if err != nil {
				return fmt.Errorf("--nodes %s: dev.nodes: must be a whole number from 1 to 9", f.value)
			}
			cfg.Dev.Nodes = n
		}
	}
	return nil
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
