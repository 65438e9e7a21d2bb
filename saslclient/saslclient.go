// Package saslclient builds the SASL mechanism meshka authenticates to an
// upstream Kafka cluster with (config.SASL): franz-go's PLAIN, SCRAM and
// OAUTHBEARER, fed secrets from the configuration, from files read at each
// authentication, or from an OAuth client-credentials flow.
package saslclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/meshka/meshka/config"
)

// Options are what the configuration does not say.
type Options struct {
	// HTTPClient asks the token endpoint; nil: one that checks its
	// certificate against the system's roots.
	HTTPClient *http.Client
	// Timeout bounds one token request; 0 is 30s.
	Timeout time.Duration
	// Now, set by tests, is the clock that decides when a token is renewed.
	Now func() time.Time
}

// New returns the mechanism s describes. Files it names are read now, so
// a missing one fails the start rather than every connection, and again
// at each authentication, so a rotated secret is used by the next one.
// A token endpoint is not asked before the first authentication. The
// mechanism is safe for concurrent use, as kgo's connections need.
func New(s config.SASL, opts Options) (sasl.Mechanism, error) {
	secret := func(value, file, what string) (func() (string, error), error) {
		if file == "" {
			return func() (string, error) { return value, nil }, nil
		}
		read := func() (string, error) { return firstLine(file, what) }
		if _, err := read(); err != nil {
			return nil, err
		}
		return read, nil
	}
	switch s.Mechanism {
	case config.SASLPlain, config.SASLScramSHA256, config.SASLScramSHA512:
		password, err := secret(s.Password, s.PasswordFile, "password")
		if err != nil {
			return nil, err
		}
		if s.Mechanism == config.SASLPlain {
			return plain.Plain(func(context.Context) (plain.Auth, error) {
				p, err := password()
				return plain.Auth{User: s.Username, Pass: p}, err
			}), nil
		}
		auth := func(context.Context) (scram.Auth, error) {
			p, err := password()
			return scram.Auth{User: s.Username, Pass: p}, err
		}
		if s.Mechanism == config.SASLScramSHA256 {
			return scram.Sha256(auth), nil
		}
		return scram.Sha512(auth), nil

	case config.SASLOAuthBearer:
		var token func(context.Context) (string, error)
		if s.TokenURL != "" {
			token = newTokens(s, opts).token
		} else {
			read, err := secret(s.Token, s.TokenFile, "token")
			if err != nil {
				return nil, err
			}
			token = func(context.Context) (string, error) { return read() }
		}
		return oauth.Oauth(func(ctx context.Context) (oauth.Auth, error) {
			t, err := token(ctx)
			return oauth.Auth{Token: t, Extensions: s.Extensions}, err
		}), nil
	}
	return nil, fmt.Errorf("sasl: unknown mechanism %q", s.Mechanism)
}

// firstLine is a secret file's first line, without its line ending.
func firstLine(path, what string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("sasl: %s file: %w", what, err)
	}
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		data = data[:i]
	}
	data = bytes.TrimSuffix(data, []byte("\r"))
	if len(data) == 0 {
		return "", fmt.Errorf("sasl: %s file %s: the first line is empty", what, path)
	}
	return string(data), nil
}

// tokens asks an OAuth token endpoint for tokens with the
// client-credentials grant, and keeps the last one for the connections
// and re-authentications that follow, until four fifths of its lifetime
// have passed: a broker ends a session when its token expires (KIP-368),
// so a connection authenticating late in a token's life would have to
// authenticate again soon after.
type tokens struct {
	cfg     clientcredentials.Config
	http    *http.Client
	timeout time.Duration
	now     func() time.Time

	mu      sync.Mutex // held across a request: one at a time
	cached  string
	renewAt time.Time // zero: the endpoint named no lifetime, ask each time
}

func newTokens(s config.SASL, opts Options) *tokens {
	t := &tokens{
		cfg:     clientcredentials.Config{ClientID: s.ClientID, ClientSecret: s.ClientSecret, TokenURL: s.TokenURL, Scopes: s.Scopes},
		http:    opts.HTTPClient,
		timeout: opts.Timeout,
		now:     opts.Now,
	}
	if t.http == nil {
		t.http = &http.Client{}
	}
	if t.timeout <= 0 {
		t.timeout = 30 * time.Second
	}
	if t.now == nil {
		t.now = time.Now
	}
	return t
}

func (t *tokens) token(ctx context.Context) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cached != "" && !t.renewAt.IsZero() && t.now().Before(t.renewAt) {
		return t.cached, nil
	}
	ctx, cancel := context.WithTimeout(context.WithValue(ctx, oauth2.HTTPClient, t.http), t.timeout)
	defer cancel()
	asked := t.now()
	tok, err := t.cfg.Token(ctx)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode != "" {
			return "", fmt.Errorf("sasl: OAuth token endpoint %s refused: %s %s", t.cfg.TokenURL, re.ErrorCode, re.ErrorDescription)
		}
		return "", fmt.Errorf("sasl: OAuth token endpoint %s: %w", t.cfg.TokenURL, err)
	}
	if tok.AccessToken == "" {
		return "", fmt.Errorf("sasl: OAuth token endpoint %s answered no access_token", t.cfg.TokenURL)
	}
	t.cached, t.renewAt = tok.AccessToken, time.Time{}
	if !tok.Expiry.IsZero() {
		// Expiry is on the real clock, from when the answer came.
		t.renewAt = asked.Add(time.Until(tok.Expiry) * 4 / 5)
	}
	return t.cached, nil
}
