// Package auth checks who a client is: the SASL mechanisms meshka's
// listeners offer (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 against the users
// of the configuration, OAUTHBEARER against an issuer's keys), and the
// principal of a client certificate.
package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"

	"github.com/meshka/meshka/config"
)

// ErrFailed is the error of every authentication that fails, whatever
// the reason (the reason, for the log, is wrapped in it): a client is
// never told whether the user or the password was wrong.
var ErrFailed = errors.New("authentication failed")

// Mechanism names.
const (
	Plain       = "PLAIN"
	ScramSHA256 = "SCRAM-SHA-256"
	ScramSHA512 = "SCRAM-SHA-512"
)

// Users are the SASL users of the configuration, and the OAUTHBEARER
// token check when there is one: what Start authenticates against.
// Safe for concurrent use; Replace swaps the credentials whole (a reload).
type Users struct {
	creds atomic.Pointer[credentials]
	oauth *OAuthBearer
}

// credentials are user → mechanism → credential, read-only once built.
type credentials map[string]map[string]scramCredential

// Replace puts next's credentials in force for every authentication that
// starts from now on; sessions already authenticated stay so.
func (u *Users) Replace(next *Users) { u.creds.Store(next.creds.Load()) }

// Names are the users' names, sorted.
func (u *Users) Names() []string {
	if u == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(*u.creds.Load()))
}

func (u *Users) lookup(user, mechanism string) (scramCredential, bool) {
	cred, ok := (*u.creds.Load())[user][mechanism]
	return cred, ok
}

// CheckPassword checks a user's password against the user's SCRAM
// credentials, as PLAIN does; the error is ErrFailed whatever the cause.
// For protocols that carry a username and password of their own (MQTT).
func (u *Users) CheckPassword(user, password string) error {
	if u == nil {
		return fmt.Errorf("%w: no users", ErrFailed)
	}
	return u.checkPassword(user, password)
}

// SetOAuthBearer makes OAUTHBEARER authentications check tokens with o.
// Call it before the first Start.
func (u *Users) SetOAuthBearer(o *OAuthBearer) { u.oauth = o }

// NewUsers builds the users of cfg (already validated: errors here are
// for credentials that do not decode).
func NewUsers(cfg []config.User) (*Users, error) {
	u := &Users{}
	creds := credentials{}
	for _, user := range cfg {
		m := map[string]scramCredential{}
		for mech, sc := range map[string]*config.ScramCredential{ScramSHA256: user.ScramSHA256, ScramSHA512: user.ScramSHA512} {
			if sc == nil {
				continue
			}
			cred, err := decodeCredential(sc)
			if err != nil {
				return nil, fmt.Errorf("user %q, %s: %w", user.Name, mech, err)
			}
			m[mech] = cred
		}
		creds[user.Name] = m
	}
	u.creds.Store(&creds)
	return u, nil
}

func decodeCredential(sc *config.ScramCredential) (scramCredential, error) {
	salt, err := base64.StdEncoding.DecodeString(sc.Salt)
	if err != nil {
		return scramCredential{}, fmt.Errorf("salt: %w", err)
	}
	stored, err := base64.StdEncoding.DecodeString(sc.StoredKey)
	if err != nil {
		return scramCredential{}, fmt.Errorf("stored_key: %w", err)
	}
	server, err := base64.StdEncoding.DecodeString(sc.ServerKey)
	if err != nil {
		return scramCredential{}, fmt.Errorf("server_key: %w", err)
	}
	return scramCredential{salt: salt, iterations: sc.Iterations, storedKey: stored, serverKey: server}, nil
}

// NewCredential salts password for mechanism (SCRAM-SHA-256 or
// SCRAM-SHA-512) with a new random salt: what `meshka user add` prints.
func NewCredential(mechanism, user, password string, iterations int) (*config.ScramCredential, error) {
	h, err := hashOf(mechanism)
	if err != nil {
		return nil, err
	}
	salt := make([]byte, 24)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	cred, err := h.derive(password, salt, iterations)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", mechanism, err)
	}
	enc := base64.StdEncoding.EncodeToString
	return &config.ScramCredential{Salt: enc(salt), Iterations: iterations, StoredKey: enc(cred.storedKey), ServerKey: enc(cred.serverKey)}, nil
}

// checkPassword says whether password is user's, against any of the
// user's stored credentials (PLAIN has no credential of its own).
func (u *Users) checkPassword(user, password string) error {
	creds, ok := (*u.creds.Load())[user]
	if !ok {
		return fmt.Errorf("%w: unknown user %q", ErrFailed, user)
	}
	for _, mech := range []string{ScramSHA512, ScramSHA256} {
		stored, ok := creds[mech]
		if !ok {
			continue
		}
		h, _ := hashOf(mech)
		got, err := h.derive(password, stored.salt, stored.iterations)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrFailed, err)
		}
		if subtle.ConstantTimeCompare(got.storedKey, stored.storedKey) != 1 {
			return fmt.Errorf("%w: wrong password for user %q", ErrFailed, user)
		}
		return nil
	}
	return fmt.Errorf("%w: user %q has no credential", ErrFailed, user)
}
