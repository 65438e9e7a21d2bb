package kafkawire

// CreateAcls, key 30.
//
// v0-v3, answered by meshka: its rules live in its configuration
// (security.acls), which a reload puts in force, so no ACL is created
// over the wire. A principal without ALTER on the cluster gets
// CLUSTER_AUTHORIZATION_FAILED for each creation, as from Kafka; any
// other gets SECURITY_DISABLED, with a message naming the configuration.
// Answering, rather than not advertising the key, tells a tool why.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/acl"
	"github.com/meshka/meshka/internal/answer"
)

const createACLsKey = 30

// aclsInConfig is why ACLs cannot be changed over the wire.
const aclsInConfig = "meshka's ACLs are its configuration (security.acls): edit the file and reload it"

func init() { register(createACLsKey, 0, 3, handleCreateACLs) }

func handleCreateACLs(c *conn, kreq kmsg.Request) func() (kmsg.Response, error) {
	req := kreq.(*kmsg.CreateACLsRequest)
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	code, msg := kerr.SecurityDisabled.Code, kmsg.StringPtr(aclsInConfig)
	if !c.allowedCluster(acl.Alter) {
		code, msg = clusterRefused, nil
	}
	resp.Results = answer.Each(req.Creations, func(r *kmsg.CreateACLsResponseResult, _ *kmsg.CreateACLsRequestCreation) {
		r.ErrorCode, r.ErrorMessage = code, msg
	})
	return now(resp, nil)
}
