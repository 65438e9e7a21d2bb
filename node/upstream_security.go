package node

import (
	"fmt"
	"log/slog"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/saslclient"
	"github.com/meshka/meshka/tlsfiles"
	"github.com/meshka/meshka/upstream"
)

// upstreamSecurity sets the TLS and SASL of every upstream connection
// from the configuration; files that do not load fail the start.
func upstreamSecurity(cfg config.Upstream, up *upstream.Config, log *slog.Logger) error {
	if cfg.TLS != nil {
		t, err := tlsfiles.Client(*cfg.TLS, log)
		if err != nil {
			return fmt.Errorf("upstream.tls: %w", err)
		}
		up.TLS = t
	}
	if cfg.SASL != nil {
		m, err := saslclient.New(*cfg.SASL, saslclient.Options{Timeout: cfg.RequestTimeout.D()})
		if err != nil {
			return fmt.Errorf("upstream.sasl: %w", err)
		}
		up.SASL = m
		if cfg.TLS == nil && cfg.SASL.Mechanism == config.SASLPlain {
			log.Warn("upstream SASL PLAIN without upstream.tls sends the password in clear")
		}
	}
	return nil
}
