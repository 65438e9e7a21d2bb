package kafkawire

// SaslAuthenticate, key 36.
//
// v0-v2. Each request carries the client's next token of the mechanism
// SaslHandshake v1 chose; the answer carries meshka's. A token that
// fails the authentication (an unknown user, a wrong password or proof)
// is answered SASL_AUTHENTICATION_FAILED, never saying which, and the
// connection is closed; answers to repeated failures from one address
// come slower and slower (up to 3 s). Once authenticated, v1+ answers
// with security.sasl.session_lifetime, or the OAUTHBEARER token's
// remaining validity when shorter (KIP-368): the client must authenticate
// again within it, or its connection is closed at its next request.

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const saslAuthenticateKey = 36

func init() { register(saslAuthenticateKey, 0, 2, handleSaslAuthenticate) }

func handleSaslAuthenticate(c *conn, kreq kmsg.Request) func() (kmsg.Response, error) {
	req := kreq.(*kmsg.SASLAuthenticateRequest)
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	if !c.lst.sasl() || c.sasl.session == nil || c.sasl.unframed {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		msg := "SaslAuthenticate without a SaslHandshake v1 first"
		resp.ErrorMessage = &msg
		c.closeAfter = msg
		return now(resp, nil)
	}
	out, err := c.sasl.session.Step(req.SASLAuthBytes)
	if err == nil && c.sasl.session.Done() {
		err = c.authenticated(c.sasl.session.User())
	}
	if err != nil {
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		msg := "Authentication failed: invalid credentials with SASL mechanism " + c.sasl.mech
		resp.ErrorMessage = &msg
		c.closeAfter = "SASL authentication failed: " + err.Error()
		c.sasl.session = nil
		wait := c.s.authFailed(c.remote)
		return func() (kmsg.Response, error) {
			if !sleepCtx(c.ctx, wait) {
				return nil, errors.New("connection closed while its failed authentication waited")
			}
			return resp, nil
		}
	}
	resp.SASLAuthBytes = out
	if c.sasl.authed && req.Version >= 1 && !c.sasl.expires.IsZero() {
		// A token accepted within the clock skew may have run out
		// already: 1 ms, as 0 would tell the client no lifetime at all.
		resp.SessionLifetimeMillis = max(time.Until(c.sasl.expires).Milliseconds(), 1)
	}
	return now(resp, nil)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
