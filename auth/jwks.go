package auth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/meshka/meshka/config"
)

// Bounds on reading a key set.
const (
	maxJWKSBytes = 1 << 20 // a set is a few KiB; a larger answer is refused
	jwksTimeout  = 10 * time.Second
	// unknownKIDInterval is how often at most a token naming a key id
	// the set lacks makes it be read again (a rotated key), and how soon
	// a failed read is tried again.
	unknownKIDInterval = 10 * time.Second
)

// OAuthBearer checks OAUTHBEARER tokens against security.oauthbearer.
// It reads the key set at the start, then again every jwks_refresh on a
// goroutine of its own, which Close stops. Safe for concurrent use.
type OAuthBearer struct {
	cfg     config.OAuthBearer
	log     *slog.Logger
	parser  *jwt.Parser
	keys    *jwkset.MemoryJWKSet
	keyfunc keyfunc.Keyfunc
	read    func(ctx context.Context) ([]byte, error) // the set's bytes, from the file or the URL

	gen atomic.Uint64 // counts the sets loaded

	refetchMu   sync.Mutex // one read for an unknown key id at a time
	lastRefetch time.Time

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewOAuthBearer reads cfg's key set and starts refreshing it. A key
// file that cannot be read or holds no usable key is an error; a URL
// that cannot be fetched is not (the node starts while the issuer is
// down): it is logged and tried again, and tokens are refused until a
// set arrives.
func NewOAuthBearer(cfg config.OAuthBearer, log *slog.Logger) (*OAuthBearer, error) {
	if log == nil {
		log = slog.Default()
	}
	o := &OAuthBearer{cfg: cfg, log: log, keys: jwkset.NewMemoryStorage()}
	o.parser = jwt.NewParser(
		jwt.WithValidMethods(cfg.AllowedAlgorithms),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience...),
		jwt.WithLeeway(cfg.ClockSkew.D()),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
	)
	var err error
	if o.keyfunc, err = keyfunc.New(keyfunc.Options{Storage: o.keys}); err != nil {
		return nil, err
	}
	switch {
	case cfg.JWKSURL != "":
		client, err := jwksClient(cfg.JWKSCAFile)
		if err != nil {
			return nil, err
		}
		o.read = func(ctx context.Context) ([]byte, error) { return fetchJWKS(ctx, client, cfg.JWKSURL) }
		o.log = log.With("jwks_url", cfg.JWKSURL)
	default:
		o.read = func(context.Context) ([]byte, error) { return readJWKSFile(cfg.JWKSFile) }
		o.log = log.With("jwks_file", cfg.JWKSFile)
	}
	o.ctx, o.cancel = context.WithCancel(context.Background())
	err = o.load()
	if err != nil && cfg.JWKSFile != "" {
		o.cancel()
		return nil, fmt.Errorf("security.oauthbearer.jwks_file: %w", err)
	}
	o.wg.Add(1)
	go o.refresh(err == nil)
	return o, nil
}

// Close stops the refreshing and waits for it.
func (o *OAuthBearer) Close() {
	if o == nil {
		return
	}
	o.cancel()
	o.wg.Wait()
}

// Start begins an OAUTHBEARER exchange.
func (o *OAuthBearer) Start() Session { return &bearerSession{v: o} }

// refresh reads the set every jwks_refresh, or every unknownKIDInterval
// while the last read failed.
func (o *OAuthBearer) refresh(ok bool) {
	defer o.wg.Done()
	for {
		wait := o.cfg.JWKSRefresh.D()
		if !ok {
			wait = unknownKIDInterval
		}
		t := time.NewTimer(wait)
		select {
		case <-o.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		ok = o.load() == nil
	}
}

// load reads the set and, when it holds a usable key, puts it in place
// of the one before (a key gone from the set no longer verifies).
func (o *OAuthBearer) load() error {
	ctx, cancel := context.WithTimeout(o.ctx, jwksTimeout)
	defer cancel()
	data, err := o.read(ctx)
	if err == nil {
		err = o.replace(ctx, data)
	}
	if err != nil {
		if o.ctx.Err() == nil {
			o.log.Warn("OAUTHBEARER key set not loaded; the keys before it stay", "err", err)
		}
		return err
	}
	o.gen.Add(1)
	return nil
}

func (o *OAuthBearer) replace(ctx context.Context, data []byte) error {
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(data, &set); err != nil {
		return fmt.Errorf("not a JSON Web Key Set: %w", err)
	}
	var keys []jwkset.JWK
	for i, m := range set.Keys {
		// Only public keys that sign: a symmetric (oct) key would be a
		// shared secret, and an encryption key is not for tokens.
		if m.USE == jwkset.UseEnc || m.KTY == jwkset.KtyOct {
			continue
		}
		k, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
		if err != nil {
			o.log.Warn("OAUTHBEARER key skipped", "key", i, "kid", m.KID, "err", err)
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return fmt.Errorf("the key set holds no usable signing key (of %d)", len(set.Keys))
	}
	return o.keys.KeyReplaceAll(ctx, keys)
}

func (o *OAuthBearer) generation() uint64 { return o.gen.Load() }

// refetchFor reads the set again for a token whose key id was not in the
// set of generation seen, and reports whether the token should be tried
// again: when another read already brought a new set, or this one did.
// A key id no set holds makes a read at most every unknownKIDInterval.
func (o *OAuthBearer) refetchFor(seen uint64) bool {
	o.refetchMu.Lock()
	defer o.refetchMu.Unlock()
	if o.gen.Load() != seen {
		return true
	}
	if !o.lastRefetch.IsZero() && time.Since(o.lastRefetch) < unknownKIDInterval {
		return false
	}
	o.lastRefetch = time.Now()
	return o.load() == nil
}

// jwksClient is an HTTPS client trusting the system's roots and caFile's
// CAs, following redirects only to https.
func jwksClient(caFile string) (*http.Client, error) {
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("security.oauthbearer.jwks_ca_file: %w", err)
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("security.oauthbearer.jwks_ca_file %s: no PEM certificate in it", caFile)
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	// A read every few minutes needs no kept connection, and none is left
	// behind (with its goroutines) once the checker is closed.
	tr.DisableKeepAlives = true
	return &http.Client{
		Transport: tr,
		Timeout:   jwksTimeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Scheme != "https" {
				return fmt.Errorf("redirected to %s, not https", req.URL.Redacted())
			}
			if len(via) >= 5 {
				return errors.New("more than 5 redirects")
			}
			return nil
		},
	}, nil
}

func fetchJWKS(ctx context.Context, client *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return readBounded(resp.Body)
}

func readJWKSFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readBounded(f)
}

func readBounded(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxJWKSBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxJWKSBytes {
		return nil, fmt.Errorf("the key set is larger than %d bytes", maxJWKSBytes)
	}
	return data, nil
}
