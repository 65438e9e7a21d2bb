package kafkawire

// DescribeAcls, key 29.
//
// v0-v3, answered by meshka from security.acls, never upstream: the rules
// meshka enforces are its own, and upstream's ACLs bind meshka's upstream
// principal, not its clients. Needs DESCRIBE on the cluster (else
// CLUSTER_AUTHORIZATION_FAILED); with ACLs off the answer is
// SECURITY_DISABLED, as from a broker without an authorizer. The filter
// works as Kafka's: each field matches any value when ANY or null, else
// its own value exactly, but pattern type MATCH finds every rule that
// would bind the named resource: the literal name, the "*" wildcard, and
// prefixes of it. A rule with several operations is listed as one ACL per
// operation, as Kafka stores them; v0 (before prefixed rules) sees literal
// rules only.

import (
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/acl"
)

const describeACLsKey = 29

func init() { register(describeACLsKey, 0, 3, handleDescribeACLs) }

func handleDescribeACLs(c *conn, kreq kmsg.Request) func() (kmsg.Response, error) {
	req := kreq.(*kmsg.DescribeACLsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeACLsResponse)
	refuse := func(code int16, msg string) func() (kmsg.Response, error) {
		resp.ErrorCode, resp.ErrorMessage = code, kmsg.StringPtr(msg)
		return now(resp, nil)
	}
	pol := c.s.deps.ACL.Policy()
	switch {
	case !pol.Enabled():
		return refuse(kerr.SecurityDisabled.Code, "ACLs are off on this meshka node (security.acls.enabled)")
	case !c.allowedCluster(acl.Describe):
		return refuse(clusterRefused, "")
	case !validACLFilter(req):
		return refuse(kerr.InvalidRequest.Code, "unknown resource type, pattern type, operation or permission in the filter")
	}
	if req.Version == 0 {
		req.ResourcePatternType = kmsg.ACLResourcePatternTypeLiteral
	}
	type key struct {
		rt       acl.ResourceType
		name     string
		prefixed bool
	}
	at := map[key]int{} // index in resp.Resources
	for _, r := range pol.Rules() {
		if !aclResourceMatches(req, r) || !aclEntryMatches(req.Principal, r.Principal) || !aclEntryMatches(req.Host, r.Host) {
			continue
		}
		perm := kmsg.ACLPermissionTypeAllow
		if r.Deny {
			perm = kmsg.ACLPermissionTypeDeny
		}
		if req.PermissionType != kmsg.ACLPermissionTypeAny && req.PermissionType != perm {
			continue
		}
		for _, op := range r.Operations {
			if req.Operation != kmsg.ACLOperationAny && req.Operation != kmsg.ACLOperation(op) {
				continue
			}
			k := key{r.Resource, r.Name, r.Prefixed}
			i, ok := at[k]
			if !ok {
				res := kmsg.NewDescribeACLsResponseResource()
				res.ResourceType, res.ResourceName = kmsg.ACLResourceType(r.Resource), r.Name
				res.ResourcePatternType = kmsg.ACLResourcePatternTypeLiteral
				if r.Prefixed {
					res.ResourcePatternType = kmsg.ACLResourcePatternTypePrefixed
				}
				i = len(resp.Resources)
				at[k] = i
				resp.Resources = append(resp.Resources, res)
			}
			a := kmsg.NewDescribeACLsResponseResourceACL()
			a.Principal, a.Host, a.Operation, a.PermissionType = r.Principal, r.Host, kmsg.ACLOperation(op), perm
			resp.Resources[i].ACLs = append(resp.Resources[i].ACLs, a)
		}
	}
	return now(resp, nil)
}

// validACLFilter says whether every field of the filter is one Kafka
// knows; UNKNOWN in any is INVALID_REQUEST, as from Kafka.
func validACLFilter(req *kmsg.DescribeACLsRequest) bool {
	return req.ResourceType >= kmsg.ACLResourceTypeAny && req.ResourceType <= kmsg.ACLResourceTypeUser &&
		(req.Version == 0 || req.ResourcePatternType >= kmsg.ACLResourcePatternTypeAny && req.ResourcePatternType <= kmsg.ACLResourcePatternTypePrefixed) &&
		req.Operation >= kmsg.ACLOperationAny && req.Operation <= kmsg.ACLOperationDescribeTokens &&
		req.PermissionType >= kmsg.ACLPermissionTypeAny && req.PermissionType <= kmsg.ACLPermissionTypeAllow
}

// aclResourceMatches is Kafka's resource pattern filter on a rule.
func aclResourceMatches(req *kmsg.DescribeACLsRequest, r acl.Rule) bool {
	if req.ResourceType != kmsg.ACLResourceTypeAny && req.ResourceType != kmsg.ACLResourceType(r.Resource) {
		return false
	}
	pattern := kmsg.ACLResourcePatternTypeLiteral
	if r.Prefixed {
		pattern = kmsg.ACLResourcePatternTypePrefixed
	}
	switch req.ResourcePatternType {
	case kmsg.ACLResourcePatternTypeAny, kmsg.ACLResourcePatternTypeMatch:
	default:
		if req.ResourcePatternType != pattern {
			return false
		}
	}
	if req.ResourceName == nil {
		return true
	}
	name := *req.ResourceName
	if req.ResourcePatternType != kmsg.ACLResourcePatternTypeMatch {
		return name == r.Name
	}
	if r.Prefixed {
		return strings.HasPrefix(name, r.Name)
	}
	return name == r.Name || r.Name == acl.Wildcard
}

// aclEntryMatches is a principal or host filter: null matches all.
func aclEntryMatches(filter *string, v string) bool { return filter == nil || *filter == v }
