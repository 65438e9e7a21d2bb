package main

import "github.com/meshka/meshka/config"

// The commands are built afresh for each call, since parsing stores the
// flag values in them.

func topCommand() *command {
	return &command{
		name:     "meshka",
		synopsis: "COMMAND [flags]",
		about:    "meshka is a Kafka edge mesh: Kafka clients connect to it as to a broker.",
		commands: []string{
			"dev                run one node in front of an embedded upstream, for development",
			"run                run a node in front of an upstream Kafka cluster",
			"config check FILE  check a configuration file",
			"user add NAME      print the config entry of a new SASL user",
			"status             print every node's readiness, partitions and groups",
			"version            print meshka's version",
		},
		footer: `Run "meshka COMMAND --help" for the flags of a command.`,
	}
}

func serveFlags(dev bool) []*flagDef {
	d := config.Default()
	fs := []*flagDef{
		{name: "config", arg: "FILE", usage: "YAML configuration file; keys it leaves out keep their defaults"},
		{name: "listen", arg: "HOST:PORT", usage: "address the Kafka listener binds to; sets node.listen", def: d.Node.Listen},
		{name: "advertise", arg: "HOST:PORT", usage: "address clients are told to connect to; sets node.advertise", def: "the listen address"},
	}
	fs = append(fs,
		&flagDef{name: "node-id", arg: "N", usage: "this node's broker id, unique in the cluster; sets node.id", def: "0"},
		&flagDef{name: "cluster-bind", arg: "HOST:PORT", usage: "gossip address (TCP and UDP) other nodes join at; sets cluster.bind", def: d.Cluster.Bind},
		&flagDef{name: "cluster-remote", arg: "HOST:PORT", usage: "actor remoting address, port 0 picks one; sets cluster.remote", def: d.Cluster.Remote},
		&flagDef{name: "join", arg: "HOST:PORT[,HOST:PORT…]", usage: "seeds to join, by their cluster-bind addresses; none forms a new cluster; sets cluster.join"},
		&flagDef{name: "admin", arg: "HOST:PORT", usage: "address of the admin listener (metrics, probes, status page), empty for none; sets admin.listen", def: d.Admin.Listen},
	)
	if dev {
		return append(fs,
			&flagDef{name: "data-dir", arg: "DIR", usage: "where the embedded upstream keeps its data; sets dev.data_dir", def: d.Dev.DataDir},
			&flagDef{name: "nodes", arg: "N", usage: "run N meshka nodes (1-9) in front of the one upstream, node i on every port + i with id node.id + i; sets dev.nodes", def: "1"},
		)
	}
	return append(fs, &flagDef{name: "upstream", arg: "BROKERS", usage: "upstream seed brokers, host:port separated by commas; sets upstream.brokers"})
}

func devCommand() *command {
	return &command{
		name:     "meshka dev",
		synopsis: "[flags]",
		about: "dev runs meshka in front of an embedded Kafka-compatible upstream that keeps\n" +
			"its data in the data dir, which one meshka at a time may use: one node, or a\n" +
			"cluster of --nodes N in one process.\n" +
			"Flags override the configuration file.",
		flags: serveFlags(true),
	}
}

func runCommand() *command {
	return &command{
		name:     "meshka run",
		synopsis: "[flags]",
		about: "run starts a meshka node in front of an upstream Kafka cluster and serves\n" +
			"until SIGINT or SIGTERM, then drains within kafka.shutdown_timeout.\n" +
			"Flags override the configuration file.",
		flags: serveFlags(false),
	}
}

func configCommand() *command {
	return &command{
		name:     "meshka config",
		synopsis: "check FILE",
		about:    "config has one subcommand, check.",
		commands: []string{"check FILE  print every problem in FILE with its line and column, or ok"},
	}
}

func configCheckCommand() *command {
	return &command{
		name:     "meshka config check",
		synopsis: "FILE",
		about: "check reads FILE as run and dev do, environment expansion included, and\n" +
			"prints every problem as file:line:column: key: message (exit status 1),\n" +
			"or ok (exit status 0).",
	}
}

func versionCommand() *command {
	return &command{
		name:     "meshka version",
		synopsis: "",
		about: "version prints the version meshka was built as: the one the build linked\n" +
			"in, else the commit it was built from (-dirty with uncommitted changes),\n" +
			"else dev.",
	}
}

func statusCommand() *command {
	return &command{
		name:     "meshka status",
		synopsis: "[flags]",
		about: "status asks a node's admin listener for the status of the whole cluster\n" +
			"(GET /api/status, which that node gathers from the others) and prints a line\n" +
			"per node: ready or not (with the first reason), upstream up or down, its Kafka\n" +
			"address, client connections, the partitions it leads, the groups it\n" +
			"coordinates, its cache and the cache's hit ratio; then a line per node whose\n" +
			"admin listener did not answer. Exit status 0 when every node is ready and\n" +
			"answered, 1 otherwise or when the admin listener cannot be reached.\n\n" +
			"When admin.allow_anonymous is false, the credentials of a user of\n" +
			"security.users are taken from the environment, MESHKA_ADMIN_USER and\n" +
			"MESHKA_ADMIN_PASSWORD, and sent as HTTP Basic credentials.",
		flags: []*flagDef{
			{name: "admin", arg: "HOST:PORT", usage: "admin listener of any node of the cluster", def: config.Default().Admin.Listen},
		},
	}
}
