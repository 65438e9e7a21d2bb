package node

import (
	"errors"
	"fmt"

	"github.com/meshka/meshka/config"
	"github.com/meshka/meshka/schema/validate"
)

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
