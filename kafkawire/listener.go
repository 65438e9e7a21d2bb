package kafkawire

import (
	"crypto/tls"

	"github.com/meshka/meshka/cluster"
	"github.com/meshka/meshka/config"
)

// Listener is what a Kafka listener asks of its connections: TLS, SASL,
// and the name by which Metadata picks the addresses it answers with.
type Listener struct {
	Name string
	// TLS, when set, is the listener's TLS (SSL, SASL_SSL): every
	// connection's handshake comes first.
	TLS *tls.Config
	// Mechanisms, when any, are the SASL mechanisms offered (SASL_
	// listeners): a connection must authenticate before any request but
	// ApiVersions, SaslHandshake and SaslAuthenticate.
	Mechanisms []string
	// PrincipalRules map a client certificate's subject to a principal.
	PrincipalRules []config.PrincipalRule
	// Registry names the nodes by their addresses on this listener
	// (cluster.Registry.For); nil: Deps.Registry's, node.listen's.
	Registry *cluster.Registry
}

// registry is the node registry as the connection's clients see it.
func (c *conn) registry() *cluster.Registry {
	if c.lst.Registry != nil {
		return c.lst.Registry
	}
	return c.s.deps.Registry
}

// DefaultListener is node.listen's: PLAINTEXT.
var DefaultListener = Listener{Name: config.DefaultListenerName}

func (l *Listener) sasl() bool { return len(l.Mechanisms) > 0 }

// selfAnswered are the keys meshka answers itself whatever upstream
// supports: ApiVersions, the SASL exchange, which is between the client
// and meshka, and the ACL keys, whose rules are meshka's configuration.
func selfAnswered(key int16) bool {
	switch key {
	case apiVersionsKey, saslHandshakeKey, saslAuthenticateKey, describeACLsKey, createACLsKey, deleteACLsKey:
		return true
	}
	return false
}
