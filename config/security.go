package config

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Listener is one more Kafka listener of the node, beside node.listen
// (the listener named "default", PLAINTEXT).
type Listener struct {
	// Name tells the listener's addresses apart in what Metadata
	// answers: a client is told, for every node, the address of the
	// listener of the same name it came in on, as Kafka does.
	Name      string `yaml:"name"`
	Listen    string `yaml:"listen"`
	Advertise string `yaml:"advertise"`
	// SecurityProtocol is PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.
	SecurityProtocol string `yaml:"security_protocol"`
	TLS              TLS    `yaml:"tls"`
	// SASLMechanisms are the mechanisms offered (SASL_ listeners): PLAIN,
	// SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER; when empty, all of those
	// the security section configures (Listener.Mechanisms).
	SASLMechanisms []string `yaml:"sasl_mechanisms,omitempty"`
	// PrincipalMappingRules turn a client certificate's subject into a
	// principal name on an SSL listener, as Kafka's
	// ssl.principal.mapping.rules: "RULE:pattern/replacement/[LU]" tried
	// in order, and "DEFAULT" (the whole subject).
	PrincipalMappingRules []string `yaml:"principal_mapping_rules,omitempty"`
}

// Security protocols of a listener, as Kafka names them.
const (
	Plaintext     = "PLAINTEXT"
	SSL           = "SSL"
	SASLPlaintext = "SASL_PLAINTEXT"
	SASLSSL       = "SASL_SSL"
)

// SASL mechanisms meshka's listeners offer.
var SASLMechanisms = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"}

// userMechanisms are the mechanisms that check security.users.
var userMechanisms = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}

// TLSOn says whether the listener speaks TLS.
func (l Listener) TLSOn() bool { return l.SecurityProtocol == SSL || l.SecurityProtocol == SASLSSL }

// SASLOn says whether the listener authenticates with SASL.
func (l Listener) SASLOn() bool {
	return l.SecurityProtocol == SASLPlaintext || l.SecurityProtocol == SASLSSL
}

// Mechanisms are the SASL mechanisms the listener offers: its
// sasl_mechanisms, or when none are named, those s configures: PLAIN and
// both SCRAMs when there are users, OAUTHBEARER when
// security.oauthbearer is set.
func (l Listener) Mechanisms(s Security) []string {
	if len(l.SASLMechanisms) > 0 {
		return slices.Clone(l.SASLMechanisms)
	}
	var out []string
	if len(s.Users) > 0 {
		out = append(out, userMechanisms...)
	}
	if s.OAuthBearer != nil {
		out = append(out, SASLOAuthBearer)
	}
	return out
}

// Security holds who may connect, the users SASL checks, and what each
// principal may do.
type Security struct {
	Users []User       `yaml:"users"`
	SASL  SASLSettings `yaml:"sasl"`
	// OAuthBearer, when set, checks OAUTHBEARER tokens.
	OAuthBearer *OAuthBearer `yaml:"oauthbearer"`
	// SuperUsers are principals (User:<name>) no ACL binds, as Kafka's
	// super.users.
	SuperUsers []string `yaml:"super_users,omitempty"`
	ACLs       ACLs     `yaml:"acls"`
}

// ACLs are the rules of what each principal may do at the Kafka edge,
// checked as Kafka's StandardAuthorizer checks its ACLs.
type ACLs struct {
	// Enabled turns checking on; off, every principal may do everything.
	Enabled bool `yaml:"enabled"`
	// AllowIfNoMatch allows what no rule names the resource of, as
	// Kafka's allow.everyone.if.no.acl.found.
	AllowIfNoMatch bool      `yaml:"allow_if_no_match"`
	Rules          []ACLRule `yaml:"rules,omitempty"`
}

// ACLRule is one ACL: a principal may (allow) or may not (deny) do some
// operations on resources, from a host.
type ACLRule struct {
	Principal  string   `yaml:"principal"` // User:<name>, or User:* for every principal
	Resource   string   `yaml:"resource"`  // topic, group, cluster or transactional_id
	Name       string   `yaml:"name"`      // a name, "*" for all; a prefix when pattern is prefixed
	Pattern    string   `yaml:"pattern"`   // literal (the default) or prefixed
	Operations []string `yaml:"operations"`
	Permission string   `yaml:"permission"` // allow (the default) or deny
	Host       string   `yaml:"host"`       // "*" (the default) or an IP address
}

// ACL names as the configuration writes them.
var (
	ACLResources  = []string{"topic", "group", "cluster", "transactional_id"}
	ACLOperations = []string{"read", "write", "create", "delete", "alter", "describe", "cluster_action",
		"describe_configs", "alter_configs", "idempotent_write", "all"}
)

// SASLSettings apply to every SASL listener.
type SASLSettings struct {
	// SessionLifetime is how long an authentication holds (KIP-368,
	// Kafka's connections.max.reauth.ms): a client is told it, and a
	// connection that has not authenticated again by then is closed at
	// its next request. 0: forever.
	SessionLifetime Duration `yaml:"session_lifetime"`
}

// User is one SASL user. Its password is not stored: only SCRAM's salted
// credentials (`meshka user add` prints them), against which PLAIN
// checks a password too.
type User struct {
	Name        string           `yaml:"name"`
	ScramSHA256 *ScramCredential `yaml:"scram_sha_256"`
	ScramSHA512 *ScramCredential `yaml:"scram_sha_512"`
}

// ScramCredential is a user's stored SCRAM credential (RFC 5802), its
// byte strings in base64.
type ScramCredential struct {
	Salt       string `yaml:"salt"`
	Iterations int    `yaml:"iterations"`
	StoredKey  string `yaml:"stored_key"`
	ServerKey  string `yaml:"server_key"`
}

// DefaultListenerName is node.listen's listener.
const DefaultListenerName = "default"

var listenerName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

func (v *validator) validateListeners(c *Config) {
	names := map[string]bool{DefaultListenerName: true}
	for i, l := range c.Kafka.Listeners {
		path := fmt.Sprintf("kafka.listeners[%d]", i)
		switch {
		case !listenerName.MatchString(l.Name):
			v.add(path+".name", "%q: want 1 to 32 letters, digits, '_' or '-'", l.Name)
		case names[strings.ToLower(l.Name)]:
			v.add(path+".name", "%q is taken (%q is node.listen's)", l.Name, DefaultListenerName)
		}
		names[strings.ToLower(l.Name)] = true
		listenOK := v.hostPort(path+".listen", l.Listen, addrRules{})
		if l.Advertise != "" {
			v.hostPort(path+".advertise", l.Advertise, addrRules{needHost: true})
		} else if what := allInterfaces(l.Listen); listenOK && what != "" {
			v.add(path+".listen", "listens on all interfaces (%s); set advertise to the host:port clients should connect to", what)
		}
		switch l.SecurityProtocol {
		case Plaintext, SSL, SASLPlaintext, SASLSSL:
		default:
			v.add(path+".security_protocol", "%q: want PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", l.SecurityProtocol)
		}
		if l.TLSOn() {
			v.validateTLS(path+".tls", l.TLS, true)
		} else if l.TLS.Enabled() {
			v.add(path+".tls", "set, but security_protocol %s does not use TLS", l.SecurityProtocol)
		}
		for j, m := range l.SASLMechanisms {
			if !slices.Contains(SASLMechanisms, m) {
				v.add(fmt.Sprintf("%s.sasl_mechanisms[%d]", path, j), "%q: want one of %s", m, strings.Join(SASLMechanisms, ", "))
			}
		}
		if len(l.SASLMechanisms) > 0 && !l.SASLOn() {
			v.add(path+".sasl_mechanisms", "set, but security_protocol %s does not use SASL", l.SecurityProtocol)
		}
		switch {
		case !l.SASLOn():
		case len(l.SASLMechanisms) == 0 && len(c.Security.Users) == 0 && c.Security.OAuthBearer == nil:
			v.add(path+".security_protocol", "%s needs users to check (security.users) or tokens to check (security.oauthbearer)", l.SecurityProtocol)
		default:
			for j, m := range l.SASLMechanisms {
				p := fmt.Sprintf("%s.sasl_mechanisms[%d]", path, j)
				switch {
				case m == SASLOAuthBearer && c.Security.OAuthBearer == nil:
					v.add(p, "OAUTHBEARER needs security.oauthbearer (how tokens are checked)")
				case slices.Contains(userMechanisms, m) && len(c.Security.Users) == 0:
					v.add(p, "%s needs users to check (security.users)", m)
				}
			}
		}
		for j, r := range l.PrincipalMappingRules {
			if _, err := ParsePrincipalRule(r); err != nil {
				v.add(fmt.Sprintf("%s.principal_mapping_rules[%d]", path, j), "%v", err)
			}
		}
	}
	users := map[string]bool{}
	for i, u := range c.Security.Users {
		path := fmt.Sprintf("security.users[%d]", i)
		if u.Name == "" {
			v.add(path+".name", "a user needs a name")
		} else if users[u.Name] {
			v.add(path+".name", "%q is named twice", u.Name)
		}
		users[u.Name] = true
		if u.ScramSHA256 == nil && u.ScramSHA512 == nil {
			v.add(path, "a user needs scram_sha_256 or scram_sha_512 credentials (meshka user add prints them)")
		}
		for name, sc := range map[string]*ScramCredential{"scram_sha_256": u.ScramSHA256, "scram_sha_512": u.ScramSHA512} {
			if sc == nil {
				continue
			}
			if sc.Iterations < 4096 {
				v.add(path+"."+name+".iterations", "%d: at least 4096, as Kafka requires", sc.Iterations)
			}
			for field, val := range map[string]string{"salt": sc.Salt, "stored_key": sc.StoredKey, "server_key": sc.ServerKey} {
				if b, err := base64.StdEncoding.DecodeString(val); err != nil || len(b) == 0 {
					v.add(path+"."+name+"."+field, "want base64 bytes")
				}
			}
		}
	}
	v.durationRange("security.sasl.session_lifetime", c.Security.SASL.SessionLifetime, 0, 365*24*time.Hour)
	if c.Security.OAuthBearer != nil {
		v.validateOAuthBearer("security.oauthbearer", *c.Security.OAuthBearer)
	}
	v.validateACLs(c.Security)
}

func (v *validator) validateACLs(s Security) {
	for i, p := range s.SuperUsers {
		if !userPrincipal(p) || p == "User:*" {
			v.add(fmt.Sprintf("security.super_users[%d]", i), "%q: want User:<name>", p)
		}
	}
	for i, r := range s.ACLs.Rules {
		path := fmt.Sprintf("security.acls.rules[%d]", i)
		if !userPrincipal(r.Principal) {
			v.add(path+".principal", "%q: want User:<name> or User:*", r.Principal)
		}
		if !slices.Contains(ACLResources, r.Resource) {
			v.add(path+".resource", "%q: want one of %s", r.Resource, strings.Join(ACLResources, ", "))
		}
		prefixed := false
		switch r.Pattern {
		case "", "literal":
		case "prefixed":
			prefixed = true
		default:
			v.add(path+".pattern", "%q: want literal or prefixed", r.Pattern)
		}
		switch {
		case r.Resource == "cluster":
			if prefixed || r.Name != "" && r.Name != "kafka-cluster" && r.Name != "*" {
				v.add(path+".name", "%q: the cluster is one literal resource, kafka-cluster (or leave name out)", r.Name)
			}
		case r.Name == "":
			v.add(path+".name", "a rule needs the resource's name, \"*\" for all, or a prefix with pattern: prefixed")
		case prefixed && r.Name == "*":
			v.add(path+".name", "\"*\" is every name with pattern literal; a prefixed rule names a prefix")
		}
		if len(r.Operations) == 0 {
			v.add(path+".operations", "a rule needs at least one operation: %s", strings.Join(ACLOperations, ", "))
		}
		for j, op := range r.Operations {
			if !slices.Contains(ACLOperations, op) {
				v.add(fmt.Sprintf("%s.operations[%d]", path, j), "%q: want one of %s", op, strings.Join(ACLOperations, ", "))
			}
		}
		if r.Permission != "" && r.Permission != "allow" && r.Permission != "deny" {
			v.add(path+".permission", "%q: want allow or deny", r.Permission)
		}
		if r.Host != "" && r.Host != "*" {
			if _, err := netip.ParseAddr(r.Host); err != nil {
				v.add(path+".host", "%q: want * or an IP address", r.Host)
			}
		}
	}
}

// userPrincipal says whether p is a principal meshka's clients can be:
// User:<name>, or the wildcard User:*.
func userPrincipal(p string) bool { return strings.HasPrefix(p, "User:") && len(p) > len("User:") }
