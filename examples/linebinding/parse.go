package main

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/meshka/meshka/mesh"
)

// verb is a command's first word.
type verb int8

const (
	none verb = iota // a blank line, which is ignored
	pub
	sub
)

// command is one parsed line.
type command struct {
	verb  verb
	topic string
	// PUB's: never nil, so that the record is placed by its key.
	key, value []byte
	filter     mesh.KeyFilter // SUB's; the zero filter takes every key
}

const (
	pubUsage = "usage: PUB topic key value"
	subUsage = "usage: SUB topic [key-pattern]"
)

// parseLine parses one line, without its line end:
//
//	PUB <topic> <key> <value...>
//	SUB <topic> [key-pattern]
//
// The command is case-insensitive. Words are separated by spaces or tabs;
// the value is everything after the one separator that follows the key,
// spaces included, and may be empty. A key, or a value, that starts with
// '"' is a Go string literal ("a b", "line\nbreak", "\x00"), which is how
// MSG lines write what cannot be written plainly, so what a subscriber
// reads can be published again as it was. The error is what the client
// is told after "ERR ". What parseLine returns does not alias line.
func parseLine(line []byte) (command, error) {
	word, rest := cut(line)
	switch {
	case len(word) == 0:
		return command{}, nil
	case eqFold(word, "PUB"):
		return parsePub(rest)
	case eqFold(word, "SUB"):
		return parseSub(rest)
	}
	if len(word) > 32 {
		word = append(word[:32:32], "..."...)
	}
	return command{}, fmt.Errorf("unknown command %q (PUB topic key value, SUB topic [key-pattern])", word)
}

func parsePub(rest []byte) (command, error) {
	topic, rest := cut(rest)
	if len(topic) == 0 {
		return command{}, errors.New(pubUsage)
	}
	if err := checkTopic(topic); err != nil {
		return command{}, err
	}
	rest = trimBlank(rest)
	if len(rest) == 0 {
		return command{}, errors.New(pubUsage)
	}
	var key []byte
	if rest[0] == '"' {
		q, err := strconv.QuotedPrefix(string(rest))
		if err != nil {
			return command{}, errors.New("key: an unterminated or invalid quoted string")
		}
		k, _ := strconv.Unquote(q) // QuotedPrefix checked it
		key, rest = []byte(k), rest[len(q):]
		if len(rest) > 0 && !blank(rest[0]) {
			return command{}, errors.New("key: a quoted key must be followed by a space")
		}
	} else {
		i := bytes.IndexAny(rest, " \t")
		if i < 0 {
			i = len(rest)
		}
		key, rest = bytes.Clone(rest[:i]), rest[i:]
	}
	if len(rest) > 0 {
		rest = rest[1:] // the one separator before the value
	}
	value := bytes.Clone(rest)
	if len(rest) > 0 && rest[0] == '"' {
		v, err := strconv.Unquote(string(rest))
		if err != nil {
			return command{}, errors.New("value: a value starting with '\"' must be one quoted string")
		}
		value = []byte(v)
	}
	if key == nil {
		key = []byte{}
	}
	if value == nil {
		value = []byte{}
	}
	return command{verb: pub, topic: string(topic), key: key, value: value}, nil
}

func parseSub(rest []byte) (command, error) {
	topic, rest := cut(rest)
	if len(topic) == 0 {
		return command{}, errors.New(subUsage)
	}
	if err := checkTopic(topic); err != nil {
		return command{}, err
	}
	c := command{verb: sub, topic: string(topic)}
	pattern, rest := cut(rest)
	if len(trimBlank(rest)) > 0 {
		return command{}, errors.New(subUsage)
	}
	if len(pattern) > 0 {
		f, err := mesh.KeyPattern(string(pattern))
		if err != nil {
			return command{}, errors.New(strings.TrimPrefix(err.Error(), "mesh: "))
		}
		c.filter = f
	}
	return c, nil
}

// cut splits off the first word, skipping the blanks before it.
func cut(b []byte) (word, rest []byte) {
	b = trimBlank(b)
	i := bytes.IndexAny(b, " \t")
	if i < 0 {
		return b, nil
	}
	return b[:i], b[i:]
}

func trimBlank(b []byte) []byte { return bytes.TrimLeft(b, " \t") }

func blank(c byte) bool { return c == ' ' || c == '\t' }

func eqFold(b []byte, s string) bool { return len(b) == len(s) && strings.EqualFold(string(b), s) }

// checkTopic applies Kafka's rules for topic names, so that a mistyped
// name is told at once rather than by upstream.
func checkTopic(t []byte) error {
	if len(t) > 249 {
		return fmt.Errorf("topic name must be at most 249 characters, got %d", len(t))
	}
	if string(t) == "." || string(t) == ".." {
		return fmt.Errorf("topic name %q is not allowed", t)
	}
	for _, c := range t {
		ok := c == '.' || c == '_' || c == '-' ||
			c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !ok {
			return fmt.Errorf("invalid topic name %q: only letters, digits, '.', '_' and '-' are allowed", t)
		}
	}
	return nil
}

// appendMsg appends the MSG line of r, line end included:
//
//	MSG <topic> <partition> <offset> <key> <value>
//
// A key that is empty or null, starts with '"', or holds a space, a
// control character or invalid UTF-8 is written as a Go string literal;
// so is such a value, spaces allowed. Null and empty read the same.
func appendMsg(b []byte, r mesh.Record) []byte {
	b = append(b, "MSG "...)
	b = append(b, r.Topic...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(r.Partition), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, r.Offset, 10)
	b = append(b, ' ')
	b = appendField(b, r.Key, true)
	b = append(b, ' ')
	b = appendField(b, r.Value, false)
	return append(b, '\n')
}

func appendField(b, f []byte, key bool) []byte {
	if plain(f, key) {
		return append(b, f...)
	}
	return strconv.AppendQuote(b, string(f))
}

// plain reports whether f can be written as it is.
func plain(f []byte, key bool) bool {
	if len(f) == 0 || f[0] == '"' || !utf8.Valid(f) {
		return false
	}
	for _, c := range f {
		if c < 0x20 || c == 0x7f || key && c == ' ' {
			return false
		}
	}
	return true
}
