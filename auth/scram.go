package auth

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"hash"
	"strings"
)

// SCRAM (RFC 5802) as Kafka's brokers speak it, server side. meshka has
// its own because Kafka's broker is lenient where the RFC is not, and
// clients depend on it: librdkafka (through 2.x) sends back its own nonce
// before the server's whole nonce in client-final, which Kafka accepts
// (it checks that the nonce ends with the server's), so meshka accepts
// it too. Passwords are not SASLprep-normalised, as in Kafka.

// scramHash is a SCRAM mechanism's hash.
type scramHash struct {
	name string
	new  func() hash.Hash
	size int
}

var (
	sha256Hash = scramHash{ScramSHA256, sha256.New, sha256.Size}
	sha512Hash = scramHash{ScramSHA512, sha512.New, sha512.Size}
)

func hashOf(mechanism string) (scramHash, error) {
	switch mechanism {
	case ScramSHA256:
		return sha256Hash, nil
	case ScramSHA512:
		return sha512Hash, nil
	}
	return scramHash{}, fmt.Errorf("mechanism %q: want SCRAM-SHA-256 or SCRAM-SHA-512", mechanism)
}

// scramCredential is what a server stores for a user: never the
// password, only what checks a proof of it.
type scramCredential struct {
	salt       []byte
	iterations int
	storedKey  []byte
	serverKey  []byte
}

func (h scramHash) hmac(key []byte, data string) []byte {
	m := hmac.New(h.new, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

func (h scramHash) sum(b []byte) []byte {
	d := h.new()
	d.Write(b)
	return d.Sum(nil)
}

// derive is the credential password gives with salt and iterations.
func (h scramHash) derive(password string, salt []byte, iterations int) (scramCredential, error) {
	salted, err := pbkdf2.Key(h.new, password, salt, iterations, h.size)
	if err != nil {
		return scramCredential{}, err
	}
	clientKey := h.hmac(salted, "Client Key")
	return scramCredential{salt: salt, iterations: iterations, storedKey: h.sum(clientKey), serverKey: h.hmac(salted, "Server Key")}, nil
}

// scramSession is one server-side SCRAM conversation.
type scramSession struct {
	h      scramHash
	lookup func(user string) (scramCredential, bool)

	step        int // 0: awaiting client-first; 1: client-final; 2: done
	user        string
	gs2         string // the client-first's GS2 header, which client-final's c= repeats
	clientFirst string // client-first-message-bare
	serverFirst string
	nonce       string
	cred        scramCredential
	ok          bool
}

func (s *scramSession) Step(in []byte) ([]byte, error) {
	switch s.step {
	case 0:
		s.step = 1
		out, err := s.first(string(in))
		if err != nil {
			s.step = 2
		}
		return out, err
	case 1:
		s.step = 2
		return s.final(string(in))
	}
	return nil, fmt.Errorf("%w: %s conversation already over", ErrFailed, s.h.name)
}

func (s *scramSession) Done() bool   { return s.ok }
func (s *scramSession) User() string { return s.user }

func (s *scramSession) fail(format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrFailed, s.h.name, fmt.Sprintf(format, args...))
}

// first takes client-first-message: gs2-header, then n=user,r=nonce and
// optional extensions (Kafka's tokenauth among them, not honoured).
func (s *scramSession) first(msg string) ([]byte, error) {
	cbind, rest, ok := strings.Cut(msg, ",")
	if !ok {
		return nil, s.fail("client-first-message without a GS2 header")
	}
	switch cbind {
	case "n", "y":
	default:
		return nil, s.fail("channel binding %q is not supported", cbind)
	}
	authz, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return nil, s.fail("client-first-message without a GS2 header")
	}
	s.gs2 = cbind + "," + authz + ","
	fields := strings.Split(bare, ",")
	if len(fields) < 2 || !strings.HasPrefix(fields[0], "n=") || !strings.HasPrefix(fields[1], "r=") {
		return nil, s.fail("client-first-message-bare %q: want n=user,r=nonce", bare)
	}
	user, err := saslName(fields[0][2:])
	if err != nil {
		return nil, s.fail("%v", err)
	}
	if authz != "" {
		az, ok := strings.CutPrefix(authz, "a=")
		if !ok {
			return nil, s.fail("GS2 authorization identity %q", authz)
		}
		if az, err = saslName(az); err != nil || az != user {
			return nil, s.fail("user %q may not act as %q", user, authz)
		}
	}
	cnonce := fields[1][2:]
	if cnonce == "" || strings.ContainsAny(cnonce, ",") {
		return nil, s.fail("an empty client nonce")
	}
	cred, ok := s.lookup(user)
	if !ok {
		return nil, s.fail("unknown user %q", user)
	}
	s.user, s.cred, s.clientFirst = user, cred, bare
	s.nonce = cnonce + alphanumericNonce()
	s.serverFirst = fmt.Sprintf("r=%s,s=%s,i=%d", s.nonce, base64.StdEncoding.EncodeToString(cred.salt), cred.iterations)
	return []byte(s.serverFirst), nil
}

// final takes client-final-message: c=gs2-header,r=nonce[,ext],p=proof.
func (s *scramSession) final(msg string) ([]byte, error) {
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return nil, s.fail("client-final-message without a proof")
	}
	withoutProof, proofB64 := msg[:i], msg[i+3:]
	fields := strings.Split(withoutProof, ",")
	if len(fields) < 2 || !strings.HasPrefix(fields[0], "c=") || !strings.HasPrefix(fields[1], "r=") {
		return nil, s.fail("client-final-message %q: want c=,r=,p=", withoutProof)
	}
	cb, err := base64.StdEncoding.DecodeString(fields[0][2:])
	if err != nil || string(cb) != s.gs2 {
		return nil, s.fail("channel binding data does not repeat the GS2 header")
	}
	// Kafka's brokers check that the nonce ends with the server's, and
	// librdkafka relies on it (see the top of this file).
	if !strings.HasSuffix(fields[1][2:], s.nonce) {
		return nil, s.fail("the nonce is not the one sent")
	}
	proof, err := base64.StdEncoding.DecodeString(proofB64)
	if err != nil || len(proof) != s.h.size {
		return nil, s.fail("a malformed proof")
	}
	authMsg := s.clientFirst + "," + s.serverFirst + "," + withoutProof
	signature := s.h.hmac(s.cred.storedKey, authMsg)
	clientKey := make([]byte, len(proof))
	for j := range proof {
		clientKey[j] = proof[j] ^ signature[j]
	}
	if subtle.ConstantTimeCompare(s.h.sum(clientKey), s.cred.storedKey) != 1 {
		return nil, s.fail("wrong password for user %q", s.user)
	}
	s.ok = true
	return []byte("v=" + base64.StdEncoding.EncodeToString(s.h.hmac(s.cred.serverKey, authMsg))), nil
}

// saslName decodes a SCRAM saslname: "=2C" is ',', "=3D" is '=', any
// other '=' is malformed.
func saslName(s string) (string, error) {
	if !strings.Contains(s, "=") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", fmt.Errorf("a malformed user name %q", s)
		}
		i += 2
	}
	return b.String(), nil
}

// alphanumericNonce is the server's part of a SCRAM nonce: 32 letters
// and digits, as Kafka's brokers make theirs.
func alphanumericNonce() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("auth: no randomness: %v", err))
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
