package kafkawire

// AlterConfigs, key 33.
//
// Forwarded at the client's version: broker resources to the upstream
// broker they name, topic resources to any broker. With ACLs, a resource
// the principal may not ALTER_CONFIGS is answered with the authorization
// error of its kind (configRefusal) and the rest forwarded.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshka/meshka/acl"
)

func init() { register(33, 0, maxOf(33), handleAlterConfigs) }

func handleAlterConfigs(c *conn, kreq kmsg.Request) func() (kmsg.Response, error) {
	req := kreq.(*kmsg.AlterConfigsRequest)
	return c.forwardConfigs(req, acl.AlterConfigs, len(req.Resources),
		func(i int) (kmsg.ConfigResourceType, string) {
			return req.Resources[i].ResourceType, req.Resources[i].ResourceName
		},
		func(idx []int) kmsg.Request {
			up := *req
			up.Resources = nil
			for _, i := range idx {
				up.Resources = append(up.Resources, req.Resources[i])
			}
			return &up
		},
		func(kresp kmsg.Response, i int, code int16) {
			resp := kresp.(*kmsg.AlterConfigsResponse)
			r := kmsg.NewAlterConfigsResponseResource()
			r.ResourceType, r.ResourceName, r.ErrorCode = req.Resources[i].ResourceType, req.Resources[i].ResourceName, code
			resp.Resources = append(resp.Resources, r)
		})
}
