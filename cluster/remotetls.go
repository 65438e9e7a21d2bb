package cluster

import (
	"crypto/tls"
	"slices"
)

// RemoteTLS is mutual TLS for actor remoting: every node serves with
// Server and dials the others with Client. Server must require and
// verify the peer's certificate; Client must verify the server's and
// present this node's certificate. Both may pick their certificates per
// handshake (tls.Config's GetConfigForClient and GetClientCertificate),
// so renewed files take effect on the next connection.
type RemoteTLS struct {
	Server, Client *tls.Config
}

// withH2 makes c offer gRPC's ALPN protocol from whatever configuration
// it picks per handshake too: gRPC adds h2 to the configuration it is
// given, not to the one GetConfigForClient returns.
func withH2(c *tls.Config) *tls.Config {
	c = c.Clone()
	if get := c.GetConfigForClient; get != nil {
		c.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			picked, err := get(hello)
			if picked != nil && !slices.Contains(picked.NextProtos, "h2") {
				picked = picked.Clone()
				picked.NextProtos = append(picked.NextProtos, "h2")
			}
			return picked, err
		}
	}
	return c
}
