// Package remote reads schemas from an external registry that speaks
// Confluent's Schema Registry API (schema.registry.url), for the topics
// rules and the HTTP mapper's value conversion: a validate.Source.
//
// A schema id always stands for the same schema, so what an id compiles
// to is kept, the most recently used MaxSchemas of them, and asked for
// once. What a subject's versions are changes, and an unknown id may be
// registered later, so those answers are kept for CacheTTL only. Lookups of one id or one subject that overlap share
// one request. Errors are of two kinds: the registry said no (no such
// id, subject or version; a schema that does not compile), an ordinary
// error, for which the record is refused; or the registry could not be
// asked (unreachable, timed out, a 5xx or 429, meshka's credentials
// refused), a *validate.UnavailableError, which is not the record's
// fault. Only answers of the first kind are kept.
package remote

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
	"golang.org/x/sync/singleflight"

	"github.com/meshka/meshka/schema"
	"github.com/meshka/meshka/schema/format"
	"github.com/meshka/meshka/schema/validate"
)

// Defaults of Config's zero fields.
const (
	DefaultTimeout    = 10 * time.Second
	DefaultMaxSchemas = 10000
	// maxAnswers bounds the subject answers kept (by subject and
	// version, and by id for subject membership).
	maxAnswers = 10000
	// maxResponseBytes bounds one answer of the registry.
	maxResponseBytes = 16 << 20
	// maxReferences bounds the schemas one schema's references pull in,
	// and maxReferenceDepth their nesting (a registry could even hold a
	// cycle).
	maxReferences     = 1000
	maxReferenceDepth = 32
)

// Config says how to reach the registry.
type Config struct {
	// URLs serve the same registry; a request that cannot reach one
	// tries the next.
	URLs []string
	// Username and Password, when Username is set, are sent as Basic
	// credentials; else BearerToken, when set, as a bearer token.
	Username, Password string
	BearerToken        string
	// TLS is for https URLs; nil: Go's defaults.
	TLS *tls.Config
	// Timeout bounds each request (0: DefaultTimeout).
	Timeout time.Duration
	// CacheTTL is how long a subject's answers are kept (0: not kept).
	CacheTTL time.Duration
	// MaxSchemas bounds the compiled schemas kept by id (0:
	// DefaultMaxSchemas).
	MaxSchemas int
	// Observe, when set, is told the outcome of every request to the
	// registry: OutcomeOK, OutcomeNo or OutcomeUnavailable.
	Observe func(outcome string)
}

// The outcomes Config.Observe is told.
const (
	OutcomeOK          = "ok"
	OutcomeNo          = "no"          // the registry's no: not found, or another 4xx
	OutcomeUnavailable = "unavailable" // not reached, timed out, 5xx, 429, 401, 403
)

// Source is a validate.Source over an external registry. Safe for
// concurrent use; Close ends its requests.
type Source struct {
	cl      *sr.Client
	hc      *http.Client
	observe func(string)
	timeout time.Duration
	ttl     time.Duration
	now     func() time.Time

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	group  singleflight.Group

	mu      sync.Mutex
	schemas *lru[int, compiled]       // id → what it compiles to
	answers *lru[string, answerEntry] // subject answers and unknown ids, with when they were read
}

type compiled struct {
	s   schema.Schema
	err error // why the schema does not compile
}

type answerEntry struct {
	at  time.Time
	id  int             // VersionID's
	has map[string]bool // SubjectHasID's: the subjects of an id
	err error           // the registry's no
}

var _ validate.Source = (*Source)(nil)

// New is a Source over the registry of cfg. It sends nothing yet.
func New(cfg Config) (*Source, error) {
	if len(cfg.URLs) == 0 {
		return nil, errors.New("schema registry: no URL")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxSchemas <= 0 {
		cfg.MaxSchemas = DefaultMaxSchemas
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg.TLS
	tr.MaxIdleConnsPerHost = 16
	hc := &http.Client{Timeout: cfg.Timeout, Transport: boundedTransport{tr}}
	opts := []sr.ClientOpt{sr.URLs(append([]string(nil), cfg.URLs...)...), sr.HTTPClient(hc), sr.UserAgent("meshka")}
	switch {
	case cfg.Username != "":
		opts = append(opts, sr.BasicAuth(cfg.Username, cfg.Password))
	case cfg.BearerToken != "":
		opts = append(opts, sr.BearerToken(cfg.BearerToken))
	}
	cl, err := sr.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("schema registry: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	observe := cfg.Observe
	if observe == nil {
		observe = func(string) {}
	}
	return &Source{cl: cl, hc: hc, observe: observe, timeout: cfg.Timeout, ttl: cfg.CacheTTL, now: time.Now,
		ctx: ctx, cancel: cancel,
		schemas: newLRU[int, compiled](cfg.MaxSchemas), answers: newLRU[string, answerEntry](maxAnswers)}, nil
}

// Close ends the requests under way (they answer unavailable) and the
// idle connections.
func (s *Source) Close() {
	s.cancel()
	s.hc.CloseIdleConnections()
}

// boundedTransport refuses answers larger than maxResponseBytes, so a
// misbehaving registry cannot make meshka read without end.
type boundedTransport struct{ rt http.RoundTripper }

func (b boundedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := b.rt.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > maxResponseBytes {
		resp.Body.Close()
		return nil, fmt.Errorf("the registry's answer is %d bytes, more than %d", resp.ContentLength, maxResponseBytes)
	}
	resp.Body = &limitedBody{r: io.LimitReader(resp.Body, maxResponseBytes+1), c: resp.Body}
	return resp, nil
}

type limitedBody struct {
	r io.Reader
	c io.Closer
	n int64
}

func (l *limitedBody) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.n += int64(n)
	if l.n > maxResponseBytes {
		return n, fmt.Errorf("the registry's answer is more than %d bytes", maxResponseBytes)
	}
	return n, err
}

func (l *limitedBody) Close() error { return l.c.Close() }

// share runs fn once for the concurrent callers of one key, under a
// context of the Source (not the first caller's, whose end must not fail
// the others) bounded by the timeout, for all of fn's requests (a schema
// and its references); a caller whose own ctx ends first stops waiting.
func (s *Source) share(ctx context.Context, key string, fn func(ctx context.Context) (any, error)) (any, error) {
	ch := s.group.DoChan(key, func() (any, error) {
		rctx, cancel := context.WithTimeout(s.ctx, s.timeout)
		defer cancel()
		return fn(rctx)
	})
	select {
	case r := <-ch:
		return r.Val, r.Err
	case <-ctx.Done():
		return nil, &validate.UnavailableError{Err: ctx.Err()}
	}
}

// result is classify, the outcome observed.
func (s *Source) result(err error) error {
	err = classify(err)
	switch {
	case err == nil:
		s.observe(OutcomeOK)
	case validate.Unavailable(err):
		s.observe(OutcomeUnavailable)
	default:
		s.observe(OutcomeNo)
	}
	return err
}

// classify turns a client error into the registry's no (kept as it is)
// or an *validate.UnavailableError.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var re *sr.ResponseError
	if errors.As(err, &re) {
		switch {
		case re.StatusCode == http.StatusUnauthorized || re.StatusCode == http.StatusForbidden:
			return &validate.UnavailableError{Err: fmt.Errorf("the registry refused meshka's credentials (HTTP %d): %s", re.StatusCode, re.Error())}
		case re.StatusCode >= 500 || re.StatusCode == http.StatusTooManyRequests || re.StatusCode == http.StatusRequestTimeout:
			return &validate.UnavailableError{Err: fmt.Errorf("the registry answered HTTP %d: %s", re.StatusCode, re.Error())}
		}
		return registryNo{re}
	}
	return &validate.UnavailableError{Err: err}
}

// registryNo is the registry's answer that what was asked for is not
// there (or the question is not one it takes).
type registryNo struct{ re *sr.ResponseError }

func (e registryNo) Error() string {
	if e.re.ErrorCode != 0 {
		return fmt.Sprintf("%s (registry error %d)", e.re.Error(), e.re.ErrorCode)
	}
	return fmt.Sprintf("%s (HTTP %d)", e.re.Error(), e.re.StatusCode)
}

// ByID implements validate.Source.
func (s *Source) ByID(ctx context.Context, id int) (schema.Schema, schema.Type, error) {
	s.mu.Lock()
	c, ok := s.schemas.get(id)
	s.mu.Unlock()
	if !ok {
		if a, ok := s.kept(noIDKey(id)); ok {
			return nil, "", a.err
		}
		v, err := s.share(ctx, "id/"+strconv.Itoa(id), func(ctx context.Context) (any, error) {
			return s.compile(ctx, id)
		})
		if err != nil {
			return nil, "", err
		}
		c = v.(compiled)
	}
	if c.err != nil {
		return nil, "", c.err
	}
	return c.s, c.s.Type(), nil
}

func noIDKey(id int) string { return "n/" + strconv.Itoa(id) }

// compile reads id's schema and its references and compiles them. What
// it compiles to, or why it does not, is kept for good; the registry's
// answer that there is no such id is kept for the TTL only (an instance
// of the registry may not have read a new id yet); an unavailable
// registry is the error, and nothing is kept.
func (s *Source) compile(ctx context.Context, id int) (compiled, error) {
	s.mu.Lock()
	c, ok := s.schemas.get(id) // read while the previous call finished
	s.mu.Unlock()
	if ok {
		return c, nil
	}
	sc, err := s.cl.SchemaByID(ctx, id)
	if err = s.result(err); validate.Unavailable(err) {
		return compiled{}, err
	}
	if err != nil {
		err = fmt.Errorf("schema id %d: %w", id, err)
		s.keep(noIDKey(id), answerEntry{err: err})
		return compiled{err: err}, nil
	}
	refs, err := s.resolve(ctx, sc.References)
	if validate.Unavailable(err) {
		return compiled{}, err
	}
	if err == nil {
		c.s, err = format.Parse(schemaType(sc.Type), sc.Schema, refs)
	}
	if err != nil {
		c = compiled{err: fmt.Errorf("schema id %d does not compile: %w", id, err)}
	}
	s.mu.Lock()
	s.schemas.put(id, c)
	s.mu.Unlock()
	return c, nil
}

func schemaType(t sr.SchemaType) schema.Type {
	switch t {
	case sr.TypeProtobuf:
		return schema.Protobuf
	case sr.TypeJSON:
		return schema.JSON
	}
	return schema.Avro
}

// resolve reads the transitive closure of refs, dependencies first, as
// format.Parse takes it.
func (s *Source) resolve(ctx context.Context, refs []sr.SchemaReference) ([]schema.Reference, error) {
	var out []schema.Reference
	type key struct {
		subject string
		version int
	}
	seen := map[key]bool{}
	var visit func(refs []sr.SchemaReference, depth int) error
	visit = func(refs []sr.SchemaReference, depth int) error {
		if depth > maxReferenceDepth {
			return fmt.Errorf("references nest deeper than %d", maxReferenceDepth)
		}
		for _, r := range refs {
			k := key{r.Subject, r.Version}
			if seen[k] {
				continue
			}
			seen[k] = true
			if len(seen) > maxReferences {
				return fmt.Errorf("more than %d references", maxReferences)
			}
			if r.Name == "" || r.Subject == "" {
				return fmt.Errorf("a reference needs a name and a subject, got %q of subject %q", r.Name, r.Subject)
			}
			ss, err := s.cl.SchemaByVersion(ctx, r.Subject, r.Version)
			if err = s.result(err); err != nil {
				if validate.Unavailable(err) {
					return err
				}
				return fmt.Errorf("reference %q (subject %s version %d): %w", r.Name, r.Subject, r.Version, err)
			}
			if err := visit(ss.References, depth+1); err != nil {
				return err
			}
			out = append(out, schema.Reference{Name: r.Name, Schema: ss.Schema.Schema})
		}
		return nil
	}
	return out, visit(refs, 0)
}

// kept is the answer kept under key, while within the TTL.
func (s *Source) kept(key string) (answerEntry, bool) {
	if s.ttl <= 0 {
		return answerEntry{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.answers.get(key)
	if ok && s.now().Sub(a.at) >= s.ttl {
		s.answers.remove(key)
		ok = false
	}
	return a, ok
}

// keep keeps a (read now) under key for the TTL.
func (s *Source) keep(key string, a answerEntry) {
	if s.ttl <= 0 {
		return
	}
	a.at = s.now()
	s.mu.Lock()
	s.answers.put(key, a)
	s.mu.Unlock()
}

// answer is the subject answer kept for key, or the registry's answer
// read now with read (shared between concurrent callers) and kept.
func (s *Source) answer(ctx context.Context, key string, read func(ctx context.Context) answerEntry) (answerEntry, error) {
	if a, ok := s.kept(key); ok {
		return a, nil
	}
	v, err := s.share(ctx, key, func(ctx context.Context) (any, error) {
		a := read(ctx)
		if validate.Unavailable(a.err) {
			return nil, a.err
		}
		s.keep(key, a)
		return a, nil
	})
	if err != nil {
		return answerEntry{}, err
	}
	return v.(answerEntry), nil
}

// VersionID implements validate.Source.
func (s *Source) VersionID(ctx context.Context, subject string, version int) (int, error) {
	if version == validate.Latest {
		version = -1 // sr's latest
	} else if version <= 0 {
		return 0, fmt.Errorf("subject %s: no version %d", subject, version)
	}
	a, err := s.answer(ctx, "v/"+strconv.Itoa(version)+"/"+subject, func(ctx context.Context) answerEntry {
		ss, err := s.cl.SchemaByVersion(ctx, subject, version)
		return answerEntry{id: ss.ID, err: s.result(err)}
	})
	if err != nil {
		return 0, err
	}
	return a.id, a.err
}

// SubjectHasID implements validate.Source. It asks which live subject
// versions carry id, one request for every subject.
func (s *Source) SubjectHasID(ctx context.Context, subject string, id int) (bool, error) {
	a, err := s.answer(ctx, "s/"+strconv.Itoa(id), func(ctx context.Context) answerEntry {
		svs, err := s.cl.SchemaVersionsByID(ctx, id)
		if err = s.result(err); err != nil {
			if re, ok := err.(registryNo); ok && re.re.StatusCode == http.StatusNotFound {
				return answerEntry{has: map[string]bool{}} // no subject has it
			}
			return answerEntry{err: err}
		}
		has := make(map[string]bool, len(svs))
		for _, sv := range svs {
			has[sv.Subject] = true
		}
		return answerEntry{has: has}
	})
	if err != nil {
		return false, err
	}
	if a.err != nil {
		return false, a.err
	}
	return a.has[subject], nil
}
