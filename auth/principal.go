package auth

import (
	"crypto/x509"
	"fmt"

	"github.com/meshka/meshka/config"
)

// Anonymous is the principal of a client that did not authenticate, as
// Kafka names it.
const Anonymous = "User:ANONYMOUS"

// UserPrincipal is the principal of a SASL user.
func UserPrincipal(user string) string { return "User:" + user }

// CertPrincipal is the principal of a client certificate: its subject in
// RFC 2253 form ("CN=alice,OU=apps,O=example"), mapped by rules (Kafka's
// ssl.principal.mapping.rules). An error when no rule matches: the
// client is refused, as Kafka refuses it.
func CertPrincipal(cert *x509.Certificate, rules []config.PrincipalRule) (string, error) {
	subject := cert.Subject.String()
	name, ok := config.MapPrincipal(rules, subject)
	if !ok {
		return "", fmt.Errorf("%w: no principal mapping rule matches the certificate subject %q", ErrFailed, subject)
	}
	return UserPrincipal(name), nil
}
