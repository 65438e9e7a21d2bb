package node

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/schema/remote"
	"github.com/meshka/meshka/schema/validate"
	"github.com/meshka/meshka/tlsfiles"
)

// registryRequests registers meshka_schema_registry_requests_total, every
// outcome from the start (at 0 without an external registry), and is what
// counts them.
func registryRequests(reg prometheus.Registerer) func(outcome string) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshka_schema_registry_requests_total",
		Help: "Requests to the external schema registry (schema.registry.url), by outcome.",
	}, []string{"outcome"})
	for _, o := range []string{remote.OutcomeOK, remote.OutcomeNo, remote.OutcomeUnavailable} {
		vec.WithLabelValues(o)
	}
	reg.MustRegister(vec)
	return func(outcome string) { vec.WithLabelValues(outcome).Inc() }
}

// externalRegistry is the source reading schema.registry.
func externalRegistry(r config.SchemaRegistry, observe func(string), log *slog.Logger) (*remote.Source, error) {
	rc := remote.Config{URLs: r.URL, BearerToken: r.BearerToken, Timeout: r.Timeout.D(), CacheTTL: r.CacheTTL.D(), Observe: observe}
	if r.BasicAuth != nil {
		rc.Username, rc.Password = r.BasicAuth.Username, r.BasicAuth.Password
	}
	if r.TLS != nil {
		t, err := tlsfiles.Client(*r.TLS, log.With("client", "schema registry"))
		if err != nil {
			return nil, fmt.Errorf("schema.registry.tls: %w", err)
		}
		rc.TLS = t
	}
	src, err := remote.New(rc)
	if err != nil {
		return nil, fmt.Errorf("schema.registry: %w", err)
	}
	return src, nil
}

// registryAuth names how meshka authenticates to the registry, for logs.
func registryAuth(r config.SchemaRegistry) string {
	switch {
	case r.BasicAuth != nil:
		return "basic"
	case r.BearerToken != "":
		return "bearer"
	}
	return "none"
}

// closeSchemas ends the external registry's requests.
func (n *Node) closeSchemas() {
	if n.schemas != nil {
		n.schemas.Close()
	}
}

// validator builds what the Kafka listeners check produced records with
// from the topics rules; nil without rules. A rule naming a schema format
// needs src.
func validator(rules []config.TopicRule, src validate.Source) (*validate.Validator, error) {
	if len(rules) == 0 {
		return nil, nil
	}
	out := make([]validate.Rule, len(rules))
	for i, r := range rules {
		out[i] = validate.Rule{Topic: r.Topic, Prefix: r.Prefix, ValidateProduce: r.ValidateProduce, ValidateFetch: r.ValidateFetch}
		var err error
		if out[i].Key, err = formatSpec(r.Key); err != nil {
			return nil, fmt.Errorf("topics[%d].key: %w", i, err)
		}
		if out[i].Value, err = formatSpec(r.Value); err != nil {
			return nil, fmt.Errorf("topics[%d].value: %w", i, err)
		}
	}
	v, err := validate.New(out, src)
	if errors.Is(err, validate.ErrNoSource) {
		return nil, errors.New("topics: a rule names avro, protobuf or json, and this node has no schema registry to find the schemas in")
	}
	return v, err
}

func formatSpec(f *config.FormatSpec) (*validate.Spec, error) {
	if f == nil {
		return nil, nil
	}
	version, err := config.ParseSchemaVersion(f.Version)
	if err != nil {
		return nil, err
	}
	return &validate.Spec{Format: validate.Format(f.Format), Subject: f.Subject, Version: version}, nil
}
