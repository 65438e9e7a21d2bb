package mqtt_test

import (
	"bytes"
	"testing"

	"github.com/eclipse/paho.golang/paho"
)

// Request and response over MQTT 5 (paho.golang): the Response Topic and
// Correlation Data of a request reach its subscriber, which answers on
// that topic with that data.
func TestResponseTopicAndCorrelationData(t *testing.T) {
	_, addr := start(t)
	responder := connect5(t, addr, "responder", nil)
	responder.subscribe(t, paho.SubscribeOptions{Topic: "requests/+", QoS: 1})
	requester := connect5(t, addr, "requester", nil)
	requester.subscribe(t, paho.SubscribeOptions{Topic: "replies/requester", QoS: 1})

	requester.publish(t, &paho.Publish{Topic: "requests/time", QoS: 1, Payload: []byte("now?"),
		Properties: &paho.PublishProperties{ResponseTopic: "replies/requester", CorrelationData: []byte{0xca, 0xfe}}})
	req := responder.next(t)
	if req.Properties == nil || req.Properties.ResponseTopic != "replies/requester" || !bytes.Equal(req.Properties.CorrelationData, []byte{0xca, 0xfe}) {
		t.Fatalf("the request arrived with properties %+v", req.Properties)
	}
	responder.publish(t, &paho.Publish{Topic: req.Properties.ResponseTopic, QoS: 1, Payload: []byte("noon"),
		Properties: &paho.PublishProperties{CorrelationData: req.Properties.CorrelationData}})
	resp := requester.next(t)
	if resp.Topic != "replies/requester" || string(resp.Payload) != "noon" || resp.Properties == nil ||
		!bytes.Equal(resp.Properties.CorrelationData, []byte{0xca, 0xfe}) {
		t.Fatalf("the response arrived as %s %q with properties %+v", resp.Topic, resp.Payload, resp.Properties)
	}
}
