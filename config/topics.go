package config

import (
	"fmt"
	"slices"
	"strconv"
)

// TopicRule says what the records of a topic, or of every topic under a
// prefix, are: the formats of their keys and values, and whether meshka
// refuses produced records that are not (docs/schemas.md).
type TopicRule struct {
	// Topic names one topic; Prefix every topic starting with it. Exactly
	// one is set. A topic's own rule beats any prefix's; of the prefixes,
	// the longest matching wins.
	Topic  string `yaml:"topic"`
	Prefix string `yaml:"prefix"`
	// Key and Value are what a record's key and value must be; absent:
	// not checked.
	Key   *FormatSpec `yaml:"key,omitempty"`
	Value *FormatSpec `yaml:"value,omitempty"`
	// ValidateProduce refuses a produced batch holding a record that is
	// not what Key and Value say (default true). A rule with it off
	// still matches, so it exempts its topic from a prefix's rule.
	ValidateProduce bool `yaml:"validate_produce"`
	// ValidateFetch has the MQTT and HTTP mappers' subscribers (and every
	// subscription of the records API) skip records read from the topic
	// that are not what Key and Value say, counted (default false: each
	// record read costs a decode). Kafka fetches are served as they are.
	ValidateFetch bool `yaml:"validate_fetch"`
}

func (r *TopicRule) defaults() { r.ValidateProduce = true }

// FormatSpec is the format of a record's key or value.
type FormatSpec struct {
	// Format is avro, protobuf or json (Confluent's wire format: a magic
	// byte 0 and the schema id, then the payload), or string (UTF-8),
	// int32 or int64 (4 or 8 big-endian bytes), bytes (anything).
	Format string `yaml:"format"`
	// Subject, for the schema formats, is the subject the record's schema
	// id must belong to; empty: any id the registry knows of the format's
	// type. Version pins the subject's version the id must be: a number,
	// or latest; empty: any of its live versions.
	Subject string `yaml:"subject"`
	Version string `yaml:"version"`
	// SchemaID is where the schema id is: record (the wire format's
	// header in the key or value itself), the only place for now.
	SchemaID string `yaml:"schema_id"`
}

func (f *FormatSpec) defaults() { f.SchemaID = "record" }

// RecordFormats are the formats a FormatSpec may name.
var RecordFormats = []string{"avro", "protobuf", "json", "string", "int32", "int64", "bytes"}

// SchemaFormat says whether a format's records carry a schema id.
func SchemaFormat(format string) bool {
	return format == "avro" || format == "protobuf" || format == "json"
}

// ParseSchemaVersion reads FormatSpec.Version: 0 for empty (any version),
// -1 for latest, else the version number.
func ParseSchemaVersion(s string) (int, error) {
	switch s {
	case "":
		return 0, nil
	case "latest":
		return -1, nil
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("must be latest or a version number from 1 to 2147483647, got %q", s)
	}
	return int(n), nil
}

func (v *validator) validateTopics(rules []TopicRule) {
	topics, prefixes := map[string]int{}, map[string]int{}
	for i, r := range rules {
		path := fmt.Sprintf("topics[%d]", i)
		switch {
		case r.Topic == "" && r.Prefix == "":
			v.add(path, "needs a topic or a prefix")
		case r.Topic != "" && r.Prefix != "":
			v.add(path+".prefix", "a rule has a topic or a prefix, not both")
		case r.Topic != "":
			if msg := checkTopic(r.Topic); msg != "" {
				v.add(path+".topic", "%s", msg)
			} else if j, dup := topics[r.Topic]; dup {
				v.add(path+".topic", "duplicate topic %q (also topics[%d])", r.Topic, j)
			} else {
				topics[r.Topic] = i
			}
		default:
			// A prefix is the start of a topic name: the same characters.
			if msg := checkTopic(r.Prefix); msg != "" && r.Prefix != "." && r.Prefix != ".." {
				v.add(path+".prefix", "%s", msg)
			} else if j, dup := prefixes[r.Prefix]; dup {
				v.add(path+".prefix", "duplicate prefix %q (also topics[%d])", r.Prefix, j)
			} else {
				prefixes[r.Prefix] = i
			}
		}
		if r.Key != nil {
			v.validateFormatSpec(path+".key", *r.Key)
		}
		if r.Value != nil {
			v.validateFormatSpec(path+".value", *r.Value)
		}
	}
}

func (v *validator) validateFormatSpec(path string, f FormatSpec) {
	if !slices.Contains(RecordFormats, f.Format) {
		v.oneOf(path+".format", f.Format, RecordFormats...)
		return
	}
	if !SchemaFormat(f.Format) {
		if f.Subject != "" {
			v.add(path+".subject", "only avro, protobuf and json have a subject, not %s", f.Format)
		}
		if f.Version != "" {
			v.add(path+".version", "only avro, protobuf and json have a version, not %s", f.Format)
		}
	} else if f.Version != "" && f.Subject == "" {
		v.add(path+".version", "a version needs a subject")
	} else if _, err := ParseSchemaVersion(f.Version); err != nil {
		v.add(path+".version", "%s", err)
	}
	if f.SchemaID != "record" {
		v.add(path+".schema_id", "must be record (the id in the record's wire format header), got %q", f.SchemaID)
	}
}
