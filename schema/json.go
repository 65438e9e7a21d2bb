package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// NormalizeJSON re-encodes one JSON document compactly with object keys
// sorted and numbers kept as written: the canonical form of Avro and JSON
// Schema texts, under which formatting and key order do not count.
func NormalizeJSON(text string) (string, error) {
	d := json.NewDecoder(bytes.NewReader([]byte(text)))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return "", err
	}
	if _, err := d.Token(); err != io.EOF {
		return "", errors.New("text after the JSON document")
	}
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return "", err
	}
	return string(bytes.TrimSuffix(b.Bytes(), []byte("\n"))), nil
}
