package auth

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"

	"github.com/xdg-go/scram"
)

// Session is one SASL authentication in progress on a connection: the
// client's tokens go to Step, each answered with the server's token,
// until Done. Not safe for concurrent use (a connection's read goroutine
// drives it).
type Session interface {
	// Step takes the client's next token and returns the server's. An
	// error (wrapping ErrFailed) ends the authentication: the client is
	// refused.
	Step(in []byte) (out []byte, err error)
	// Done reports that the client is authenticated, as User.
	Done() bool
	User() string
}

// Start begins an authentication with mechanism, one of offered.
func (u *Users) Start(mechanism string, offered []string) (Session, error) {
	if !slices.Contains(offered, mechanism) {
		return nil, fmt.Errorf("SASL mechanism %q is not offered here (offered: %v)", mechanism, offered)
	}
	switch mechanism {
	case Plain:
		return &plainSession{users: u}, nil
	case ScramSHA256, ScramSHA512:
		hash, _ := hashOf(mechanism)
		server, err := hash.NewServer(func(user string) (scram.StoredCredentials, error) {
			if cred, ok := u.creds[user][mechanism]; ok {
				return cred, nil
			}
			return scram.StoredCredentials{}, fmt.Errorf("unknown user %q for %s", user, mechanism)
		})
		if err != nil {
			return nil, err
		}
		return &scramSession{conv: server.NewConversation(), mechanism: mechanism}, nil
	}
	return nil, fmt.Errorf("SASL mechanism %q is not supported", mechanism)
}

// plainSession is RFC 4616: one token, [authzid] NUL authcid NUL passwd.
type plainSession struct {
	users *Users
	user  string
	done  bool
}

// ParsePlain splits a PLAIN token. An authorization identity other than
// the user's own is refused: a client acts as itself only.
func ParsePlain(in []byte) (user, password string, err error) {
	parts := bytes.Split(in, []byte{0})
	if len(parts) != 3 {
		return "", "", fmt.Errorf("%w: a PLAIN token holds authzid NUL user NUL password", ErrFailed)
	}
	authz, user, password := string(parts[0]), string(parts[1]), string(parts[2])
	if user == "" || password == "" {
		return "", "", fmt.Errorf("%w: a PLAIN token with an empty user or password", ErrFailed)
	}
	if authz != "" && authz != user {
		return "", "", fmt.Errorf("%w: user %q may not act as %q", ErrFailed, user, authz)
	}
	return user, password, nil
}

func (s *plainSession) Step(in []byte) ([]byte, error) {
	if s.done {
		return nil, fmt.Errorf("%w: PLAIN takes one token", ErrFailed)
	}
	user, password, err := ParsePlain(in)
	if err != nil {
		return nil, err
	}
	if err := s.users.checkPassword(user, password); err != nil {
		return nil, err
	}
	s.user, s.done = user, true
	return nil, nil
}

func (s *plainSession) Done() bool   { return s.done }
func (s *plainSession) User() string { return s.user }

// scramSession is RFC 5802 over the xdg-go/scram server conversation:
// client-first, server-first, client-final, server-final.
type scramSession struct {
	conv      *scram.ServerConversation
	mechanism string
}

func (s *scramSession) Step(in []byte) ([]byte, error) {
	if s.conv.Done() {
		return nil, fmt.Errorf("%w: %s conversation already over", ErrFailed, s.mechanism)
	}
	out, err := s.conv.Step(string(in))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrFailed, s.mechanism, err)
	}
	if s.conv.Done() && !s.conv.Valid() {
		return nil, fmt.Errorf("%w: %s: the client's proof does not hold", ErrFailed, s.mechanism)
	}
	if az := s.conv.AuthzID(); az != "" && az != s.conv.Username() {
		return nil, fmt.Errorf("%w: user %q may not act as %q", ErrFailed, s.conv.Username(), az)
	}
	return []byte(out), nil
}

func (s *scramSession) Done() bool { return s.conv.Done() && s.conv.Valid() }

func (s *scramSession) User() string { return s.conv.Username() }

func equalKeys(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

// IsFailed reports whether err is a refused authentication.
func IsFailed(err error) bool { return errors.Is(err, ErrFailed) }
