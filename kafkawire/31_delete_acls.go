package kafkawire

// DeleteAcls, key 31.
//
// v0-v3, answered by meshka as CreateAcls is: no ACL is deleted over the
// wire, since the rules are meshka's configuration. Each filter gets
// CLUSTER_AUTHORIZATION_FAILED without ALTER on the cluster, else
// SECURITY_DISABLED with a message naming the configuration.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/acl"
	"github.com/meshka/meshka/internal/answer"
)

const deleteACLsKey = 31

func init() { register(deleteACLsKey, 0, 3, handleDeleteACLs) }

func handleDeleteACLs(c *conn, kreq kmsg.Request) func() (kmsg.Response, error) {
	req := kreq.(*kmsg.DeleteACLsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	code, msg := kerr.SecurityDisabled.Code, kmsg.StringPtr(aclsInConfig)
	if !c.allowedCluster(acl.Alter) {
		code, msg = clusterRefused, nil
	}
	resp.Results = answer.Each(req.Filters, func(r *kmsg.DeleteACLsResponseResult, _ *kmsg.DeleteACLsRequestFilter) {
		r.ErrorCode, r.ErrorMessage = code, msg
	})
	return now(resp, nil)
}
