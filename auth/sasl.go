package auth

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
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
	case OAuthBearerName:
		if u.oauth == nil {
			return nil, fmt.Errorf("SASL mechanism %s is not configured (security.oauthbearer)", mechanism)
		}
		return u.oauth.Start(), nil
	case ScramSHA256, ScramSHA512:
		h, _ := hashOf(mechanism)
		return &scramSession{h: h, lookup: func(user string) (scramCredential, bool) {
			return u.lookup(user, mechanism)
		}}, nil
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

// IsFailed reports whether err is a refused authentication.
func IsFailed(err error) bool { return errors.Is(err, ErrFailed) }
