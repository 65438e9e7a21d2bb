package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Record is one record of the _schemas topic. A nil Value is a tombstone.
type Record struct {
	Key, Value []byte
}

// The key types of Confluent's _schemas topic that meshka writes or reads.
const (
	keySchema        = "SCHEMA"
	keyConfig        = "CONFIG"
	keyMode          = "MODE"
	keyDeleteSubject = "DELETE_SUBJECT"
	keyNoop          = "NOOP"
	// Written by Confluent and read as nothing by meshka.
	keyClearSubject = "CLEAR_SUBJECT"
	keyContext      = "CONTEXT"
)

// key is every key type's JSON, fields in Confluent's order. A key's bytes
// must not vary for one logical key: compaction goes by bytes.
type key struct {
	KeyType string `json:"keytype"`
	Subject string `json:"subject,omitempty"`
	Version int    `json:"version,omitempty"`
	Magic   int    `json:"magic"`
}

type schemaValue struct {
	Subject    string      `json:"subject"`
	Version    int         `json:"version"`
	ID         int         `json:"id"`
	SchemaType string      `json:"schemaType,omitempty"` // absent for Avro, as in Confluent's API
	References []Reference `json:"references,omitempty"`
	Schema     string      `json:"schema"`
	Deleted    bool        `json:"deleted"`
}

type configValue struct {
	Subject            string `json:"subject,omitempty"`
	CompatibilityLevel Level  `json:"compatibilityLevel,omitempty"`
	Normalize          *bool  `json:"normalize,omitempty"`
}

type modeValue struct {
	Subject string `json:"subject,omitempty"`
	Mode    Mode   `json:"mode"`
}

type deleteSubjectValue struct {
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

// noopValue is meshka's own: Confluent's NOOP records have no value. It
// keeps the highest id ever given once the tombstones of the schemas that
// held it are compacted away, so ids are never given twice.
type noopValue struct {
	MaxID int `json:"maxId"`
}

func schemaKey(subject string, version int) []byte {
	return encode(key{KeyType: keySchema, Subject: subject, Version: version, Magic: 1})
}

func configKey(subject string) []byte {
	return encode(key{KeyType: keyConfig, Subject: subject})
}

func modeKey(subject string) []byte {
	return encode(key{KeyType: keyMode, Subject: subject})
}

func deleteSubjectKey(subject string) []byte {
	return encode(key{KeyType: keyDeleteSubject, Subject: subject})
}

func noopKey() []byte { return encode(key{KeyType: keyNoop}) }

func encode(v any) []byte {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		panic(err) // only meshka's own types are encoded here
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// decode reads one JSON object into v, refusing trailing data.
func decode(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return fmt.Errorf("data after the JSON object")
	}
	return nil
}
