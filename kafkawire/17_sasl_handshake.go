package kafkawire

// SaslHandshake, key 17.
//
// v0-v1. The client names its mechanism; on a SASL listener that offers
// it, the authentication begins: with v1, its tokens come in
// SaslAuthenticate requests; with v0, as bare frames (no request header)
// answered by bare frames. A mechanism not offered is answered
// UNSUPPORTED_SASL_MECHANISM with the ones that are, and the connection
// closed; a handshake on a listener without SASL, or in the middle of an
// authentication, ILLEGAL_SASL_STATE, as Kafka answers it. After an
// authentication a v1 handshake begins a re-authentication (KIP-368).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const saslHandshakeKey = 17

func init() { register(saslHandshakeKey, 0, 1, handleSaslHandshake) }

func handleSaslHandshake(c *conn, kreq kmsg.Request) func() (kmsg.Response, error) {
	req := kreq.(*kmsg.SASLHandshakeRequest)
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	switch {
	case !c.lst.sasl():
		resp.ErrorCode = kerr.IllegalSaslState.Code
		return now(resp, nil)
	case c.sasl.session != nil, c.sasl.authed && req.Version == 0:
		resp.ErrorCode = kerr.IllegalSaslState.Code
		c.closeAfter = "SaslHandshake during an authentication"
		return now(resp, nil)
	}
	resp.SupportedMechanisms = c.lst.Mechanisms
	session, err := c.s.deps.Users.Start(req.Mechanism, c.lst.Mechanisms)
	if err != nil {
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		c.closeAfter = err.Error()
		return now(resp, nil)
	}
	c.sasl.session, c.sasl.mech, c.sasl.unframed = session, req.Mechanism, req.Version == 0
	return now(resp, nil)
}
