package node

import (
	"fmt"
	"log/slog"

	"github.com/meshka/meshka/cluster"
	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/tlsfiles"
)

// meshSecurity is what protects the mesh: the gossip keys (nil: gossip in
// the clear) and remoting's mutual TLS (nil: remoting in the clear, or
// off).
func meshSecurity(c config.Cluster, log *slog.Logger) ([][]byte, *cluster.RemoteTLS, error) {
	keys, err := c.GossipKeyring()
	if err != nil {
		return nil, nil, err
	}
	if !c.RemoteTLS.Enabled() || c.Remote == "" {
		return keys, nil, nil
	}
	t := c.RemoteTLS
	t.ClientAuth = "required" // both ends verify, whatever the file left out
	server, err := tlsfiles.Server(t, log)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster.remote_tls: %w", err)
	}
	t.ClientAuth = ""
	client, err := tlsfiles.Client(t, log)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster.remote_tls: %w", err)
	}
	return keys, &cluster.RemoteTLS{Server: server, Client: client}, nil
}
