package httpmap

// The Confluent REST Proxy's v3 API (api/v3/openapi.yaml of
// confluentinc/kafka-rest), as far as the mesh API can answer it: the
// cluster, its topics and their partitions, and producing records, one
// request at a time or streamed. Content type application/json
// throughout; a body's records are decoded in confluent_v3_decode.go, the
// schema formats encoded in confluent_v3_schemas.go. Not served (404 in
// v3's shape): ACLs, brokers, configs, consumer groups, reassignments,
// creating and deleting topics, and records:batch.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/meshka/meshka/acl"
	"github.com/meshka/meshka/mesh"
)

const v3ContentType = "application/json"

// v3StreamInFlight and v3StreamBytes bound the records of one streamed
// produce whose delivery reports are not written yet, in number and in
// JSON bytes (a record past the bytes goes alone): past them the body
// is not read, and TCP holds the client back.
const (
	v3StreamInFlight = 256
	v3StreamBytes    = 8 << 20
)

// noClusterID is the cluster id served when upstream names none (Kafka
// before 0.10.1).
const noClusterID = "meshka"

func (s *Server) v3Routes(mux *http.ServeMux) {
	ct := v3ContentType
	get := func(h http.HandlerFunc) map[string]http.HandlerFunc {
		return map[string]http.HandlerFunc{http.MethodGet: h}
	}
	confluentRoutes(mux, ct, "/v3/clusters", get(s.v3Clusters))
	confluentRoutes(mux, ct, "/v3/clusters/{cluster_id}", get(s.v3Cluster))
	confluentRoutes(mux, ct, "/v3/clusters/{cluster_id}/topics", get(s.v3Topics))
	confluentRoutes(mux, ct, "/v3/clusters/{cluster_id}/topics/{topic_name}", get(s.v3Topic))
	confluentRoutes(mux, ct, "/v3/clusters/{cluster_id}/topics/{topic_name}/partitions", get(s.v3Partitions))
	confluentRoutes(mux, ct, "/v3/clusters/{cluster_id}/topics/{topic_name}/partitions/{partition_id}", get(s.v3Partition))
	confluentRoutes(mux, ct, "/v3/clusters/{cluster_id}/topics/{topic_name}/records",
		map[string]http.HandlerFunc{http.MethodPost: s.v3Produce})
	mux.HandleFunc("/v3/", func(w http.ResponseWriter, r *http.Request) {
		writeConfluent(w, ct, http.StatusNotFound, errorf(http.StatusNotFound,
			"HTTP 404 Not Found: meshka serves clusters, topics, partitions and records of the v3 API, not %s %s", r.Method, r.URL.Path))
	})
}

// v3 resources, in the shapes of the API's ClusterData, TopicData and
// PartitionData.
type (
	v3Meta struct {
		Self         string `json:"self"`
		ResourceName string `json:"resource_name,omitempty"`
	}
	v3ListMeta struct {
		Self string  `json:"self"`
		Next *string `json:"next"`
	}
	v3Related struct {
		Related string `json:"related"`
	}
	v3List[T any] struct {
		Kind     string     `json:"kind"`
		Metadata v3ListMeta `json:"metadata"`
		Data     []T        `json:"data"`
	}
	v3ClusterData struct {
		Kind                   string    `json:"kind"`
		Metadata               v3Meta    `json:"metadata"`
		ClusterID              string    `json:"cluster_id"`
		ACLs                   v3Related `json:"acls"`
		Brokers                v3Related `json:"brokers"`
		BrokerConfigs          v3Related `json:"broker_configs"`
		ConsumerGroups         v3Related `json:"consumer_groups"`
		Topics                 v3Related `json:"topics"`
		PartitionReassignments v3Related `json:"partition_reassignments"`
	}
	v3TopicData struct {
		Kind      string `json:"kind"`
		Metadata  v3Meta `json:"metadata"`
		ClusterID string `json:"cluster_id"`
		TopicName string `json:"topic_name"`
		// Upstream's internal flag and replication (omitted when
		// upstream names no replicas).
		IsInternal             bool      `json:"is_internal"`
		ReplicationFactor      int16     `json:"replication_factor,omitempty"`
		PartitionsCount        int32     `json:"partitions_count"`
		Partitions             v3Related `json:"partitions"`
		Configs                v3Related `json:"configs"`
		PartitionReassignments v3Related `json:"partition_reassignments"`
	}
	// v3PartitionData has no leader: the mesh API does not say which
	// node serves a partition.
	v3PartitionData struct {
		Kind         string    `json:"kind"`
		Metadata     v3Meta    `json:"metadata"`
		ClusterID    string    `json:"cluster_id"`
		TopicName    string    `json:"topic_name"`
		PartitionID  int32     `json:"partition_id"`
		Replicas     v3Related `json:"replicas"`
		Reassignment v3Related `json:"reassignment"`
	}
)

func v3Fail(w http.ResponseWriter, e *confluentError) {
	writeConfluent(w, v3ContentType, e.status(), e)
}

// v3ClusterID is the id of the one cluster served: upstream's.
func (s *Server) v3ClusterID(ctx context.Context) (string, *confluentError) {
	id, err := s.env.Mesh.ClusterID(ctx)
	if err != nil {
		return "", upstreamError("", err)
	}
	if id == "" {
		id = noClusterID
	}
	return id, nil
}

// v3Check answers 404 for a cluster id that is not upstream's; ok: it is.
func (s *Server) v3Check(w http.ResponseWriter, r *http.Request) (string, bool) {
	id, e := s.v3ClusterID(r.Context())
	if e != nil {
		v3Fail(w, e)
		return "", false
	}
	if got := r.PathValue("cluster_id"); got != id {
		v3Fail(w, errorf(http.StatusNotFound, "Cluster %s cannot be found.", got))
		return "", false
	}
	return id, true
}

func (s *Server) v3ClusterData(r *http.Request, id string) v3ClusterData {
	self := s.confluentBase(r) + "/v3/clusters/" + id
	return v3ClusterData{Kind: "KafkaCluster", Metadata: v3Meta{Self: self, ResourceName: "crn:///kafka=" + id}, ClusterID: id,
		ACLs: v3Related{self + "/acls"}, Brokers: v3Related{self + "/brokers"}, BrokerConfigs: v3Related{self + "/broker-configs"},
		ConsumerGroups: v3Related{self + "/consumer-groups"}, Topics: v3Related{self + "/topics"},
		PartitionReassignments: v3Related{self + "/topics/-/partitions/-/reassignment"}}
}

func (s *Server) v3TopicData(r *http.Request, id string, t mesh.TopicInfo) v3TopicData {
	self := s.confluentBase(r) + "/v3/clusters/" + id + "/topics/" + t.Name
	return v3TopicData{Kind: "KafkaTopic", Metadata: v3Meta{Self: self, ResourceName: "crn:///kafka=" + id + "/topic=" + t.Name},
		ClusterID: id, TopicName: t.Name, IsInternal: t.Internal, ReplicationFactor: t.Replication, PartitionsCount: t.Partitions,
		Partitions: v3Related{self + "/partitions"}, Configs: v3Related{self + "/configs"},
		PartitionReassignments: v3Related{self + "/partitions/-/reassignment"}}
}

func (s *Server) v3PartitionData(r *http.Request, id, topic string, p int32) v3PartitionData {
	n := strconv.Itoa(int(p))
	self := s.confluentBase(r) + "/v3/clusters/" + id + "/topics/" + topic + "/partitions/" + n
	return v3PartitionData{Kind: "KafkaPartition",
		Metadata:  v3Meta{Self: self, ResourceName: "crn:///kafka=" + id + "/topic=" + topic + "/partition=" + n},
		ClusterID: id, TopicName: topic, PartitionID: p, Replicas: v3Related{self + "/replicas"}, Reassignment: v3Related{self + "/reassignment"}}
}

// GET /v3/clusters: the one cluster.
func (s *Server) v3Clusters(w http.ResponseWriter, r *http.Request) {
	id, e := s.v3ClusterID(r.Context())
	if e != nil {
		v3Fail(w, e)
		return
	}
	writeConfluent(w, v3ContentType, http.StatusOK, v3List[v3ClusterData]{Kind: "KafkaClusterList",
		Metadata: v3ListMeta{Self: s.confluentBase(r) + "/v3/clusters"}, Data: []v3ClusterData{s.v3ClusterData(r, id)}})
}

// GET /v3/clusters/{cluster_id}
func (s *Server) v3Cluster(w http.ResponseWriter, r *http.Request) {
	if id, ok := s.v3Check(w, r); ok {
		writeConfluent(w, v3ContentType, http.StatusOK, s.v3ClusterData(r, id))
	}
}

// GET /v3/clusters/{cluster_id}/topics: upstream's topics but its
// internal ones, as the REST Proxy lists them; with ACLs on, only those
// the principal may describe, as Kafka's Metadata lists them.
func (s *Server) v3Topics(w http.ResponseWriter, r *http.Request) {
	id, ok := s.v3Check(w, r)
	if !ok {
		return
	}
	ts, err := s.env.Mesh.Topics(r.Context())
	if err != nil {
		v3Fail(w, upstreamError("", err))
		return
	}
	list := v3List[v3TopicData]{Kind: "KafkaTopicList", Metadata: v3ListMeta{Self: s.confluentBase(r) + "/v3/clusters/" + id + "/topics"},
		Data: []v3TopicData{}}
	for _, t := range ts {
		if !t.Internal && s.allowed(r, acl.Describe, acl.Topic, t.Name) {
			list.Data = append(list.Data, s.v3TopicData(r, id, t))
		}
	}
	writeConfluent(w, v3ContentType, http.StatusOK, list)
}

// v3TopicOf is the request's topic; ok false: answered 404 or 503.
func (s *Server) v3TopicOf(w http.ResponseWriter, r *http.Request) (string, mesh.TopicInfo, bool) {
	id, ok := s.v3Check(w, r)
	if !ok {
		return "", mesh.TopicInfo{}, false
	}
	name := r.PathValue("topic_name")
	if !s.mayTopic(w, r, v3ContentType, acl.Describe, name) {
		return "", mesh.TopicInfo{}, false
	}
	t, err := s.env.Mesh.Topic(r.Context(), name)
	if err != nil {
		v3Fail(w, upstreamError(name, err))
		return "", mesh.TopicInfo{}, false
	}
	return id, t, true
}

// GET /v3/clusters/{cluster_id}/topics/{topic_name}
func (s *Server) v3Topic(w http.ResponseWriter, r *http.Request) {
	if id, t, ok := s.v3TopicOf(w, r); ok {
		writeConfluent(w, v3ContentType, http.StatusOK, s.v3TopicData(r, id, t))
	}
}

// GET /v3/clusters/{cluster_id}/topics/{topic_name}/partitions
func (s *Server) v3Partitions(w http.ResponseWriter, r *http.Request) {
	id, t, ok := s.v3TopicOf(w, r)
	if !ok {
		return
	}
	list := v3List[v3PartitionData]{Kind: "KafkaPartitionList",
		Metadata: v3ListMeta{Self: s.confluentBase(r) + "/v3/clusters/" + id + "/topics/" + t.Name + "/partitions"},
		Data:     make([]v3PartitionData, 0, t.Partitions)}
	for p := range t.Partitions {
		list.Data = append(list.Data, s.v3PartitionData(r, id, t.Name, p))
	}
	writeConfluent(w, v3ContentType, http.StatusOK, list)
}

// GET /v3/clusters/{cluster_id}/topics/{topic_name}/partitions/{partition_id}
func (s *Server) v3Partition(w http.ResponseWriter, r *http.Request) {
	id, t, ok := s.v3TopicOf(w, r)
	if !ok {
		return
	}
	p, err := strconv.ParseInt(r.PathValue("partition_id"), 10, 32)
	if err != nil || p < 0 || p >= int64(t.Partitions) {
		v3Fail(w, errorf(codePartitionNotFound, "Partition not found: topic %s has partitions 0 to %d, not %s.",
			t.Name, t.Partitions-1, r.PathValue("partition_id")))
		return
	}
	writeConfluent(w, v3ContentType, http.StatusOK, s.v3PartitionData(r, id, t.Name, int32(p)))
}

// v3Report is a record's delivery report, or its error (error_code and
// message only).
type v3Report struct {
	ErrorCode   int     `json:"error_code"`
	Message     string  `json:"message,omitempty"`
	ClusterID   string  `json:"cluster_id,omitempty"`
	TopicName   string  `json:"topic_name,omitempty"`
	PartitionID *int32  `json:"partition_id,omitempty"`
	Offset      *int64  `json:"offset,omitempty"`
	Timestamp   string  `json:"timestamp,omitempty"`
	Key         *v3Size `json:"key,omitempty"`
	Value       *v3Size `json:"value,omitempty"`
}

// v3Size is the type a key or value was given in and its size as
// written: -1 for a null, as Kafka's producers report it; for the schema
// formats, the schema's id, and its subject and version when known.
type v3Size struct {
	Type          string `json:"type"`
	Subject       string `json:"subject,omitempty"`
	SchemaID      *int   `json:"schema_id,omitempty"`
	SchemaVersion *int   `json:"schema_version,omitempty"`
	Size          int    `json:"size"`
}

func errReport(e *confluentError) *v3Report { return &v3Report{ErrorCode: e.Code, Message: e.Message} }

func (rep *v3Report) status() int {
	if rep.ErrorCode == http.StatusOK {
		return http.StatusOK
	}
	return (&confluentError{Code: rep.ErrorCode}).status()
}

// POST /v3/clusters/{cluster_id}/topics/{topic_name}/records: one or
// more records, their JSON objects one after another. A body of known
// length is read whole (http.max_body_bytes bounds it) and checked before
// anything is produced; the answer is the delivery report, with the
// error's HTTP status when one record failed, or the reports one after
// another, 200 (a record that is not JSON fails the whole body). A
// body without a length (Transfer-Encoding: chunked) is
// a stream: 200 at once, then each record's report as it is delivered,
// in order.
func (s *Server) v3Produce(w http.ResponseWriter, r *http.Request) {
	id, ok := s.v3Check(w, r)
	if !ok {
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != v3ContentType {
			v3Fail(w, errorf(http.StatusUnsupportedMediaType, "HTTP 415 Unsupported Media Type: records are sent as %s, not %s", v3ContentType, ct))
			return
		}
	}
	topic := r.PathValue("topic_name")
	if !s.mayTopic(w, r, v3ContentType, acl.Write, topic) {
		return
	}
	if r.ContentLength < 0 {
		s.v3Stream(w, r, id, topic)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(s.cfg.MaxBodyBytes)))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			v3Fail(w, errorf(http.StatusRequestEntityTooLarge,
				"The request included a message larger than the maximum message size the server can accept (http.max_body_bytes, %d bytes); stream larger requests with Transfer-Encoding: chunked", tooLarge.Limit))
			return
		}
		v3Fail(w, errorf(http.StatusBadRequest, "reading the body: %v", err))
		return
	}
	var recs []v3Record
	fr := newFramer(bytes.NewReader(body), int(s.cfg.MaxBodyBytes))
	for {
		frame, err := fr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			v3Fail(w, errorf(http.StatusBadRequest, "Error processing message: %v", err))
			return
		}
		if rec := decodeV3Record(frame); rec.err == nil || json.Valid(frame) {
			recs = append(recs, rec)
		} else {
			v3Fail(w, rec.err) // JSON that does not parse: nothing is produced
			return
		}
	}
	if len(recs) == 0 {
		v3Fail(w, errorf(http.StatusUnprocessableEntity, "Payload error. Request body is empty. Data is required."))
		return
	}
	slots := make([]<-chan *v3Report, len(recs))
	may := s.mayRegister(r)
	for i := range recs {
		slots[i] = s.v3Send(r.Context(), id, topic, &recs[i], may)
	}
	if len(slots) == 1 {
		rep := <-slots[0]
		writeConfluent(w, v3ContentType, rep.status(), rep)
		return
	}
	w.Header().Set("Content-Type", v3ContentType)
	enc := json.NewEncoder(w)
	for _, slot := range slots {
		enc.Encode(<-slot)
	}
}

// v3Stream serves a streamed produce: records are read as they come and
// each one's report is written and flushed once it is delivered, in
// order, while the client sends more. A body that stops being JSON
// objects gets a last report, 400, and the answer ends; so does a record
// past http.max_body_bytes (413). The stream ends when the client ends
// its body, or when meshka stops.
func (s *Server) v3Stream(w http.ResponseWriter, r *http.Request, cluster, topic string) {
	rc := http.NewResponseController(w)
	rc.EnableFullDuplex() // HTTP/1.1 only; HTTP/2 is full duplex already
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	// A body read blocks past ctx's end; the deadline ends it.
	stop := context.AfterFunc(ctx, func() { rc.SetReadDeadline(time.Now()) })
	defer stop()

	w.Header().Set("Content-Type", v3ContentType)
	w.WriteHeader(http.StatusOK)
	rc.Flush()
	type waiting struct {
		report <-chan *v3Report
		size   int64
	}
	pending := make(chan waiting, v3StreamInFlight)
	var inFlight atomic.Int64 // bytes
	freed := make(chan struct{}, 1)
	written := make(chan struct{})
	go func() {
		defer close(written)
		enc := json.NewEncoder(w)
		for p := range pending {
			rep := <-p.report
			inFlight.Add(-p.size)
			select {
			case freed <- struct{}{}:
			default:
			}
			if ctx.Err() != nil {
				continue // the client is gone: drain
			}
			if enc.Encode(rep) != nil || rc.Flush() != nil {
				cancel()
			}
		}
	}()
	fr := newFramer(r.Body, int(s.cfg.MaxBodyBytes))
	may := s.mayRegister(r)
	for {
		frame, err := fr.next()
		if err == io.EOF || err != nil && ctx.Err() != nil {
			break
		}
		size := int64(len(frame))
		for n := inFlight.Load(); n > 0 && n+size > v3StreamBytes && ctx.Err() == nil; n = inFlight.Load() {
			select {
			case <-freed:
			case <-ctx.Done():
			}
		}
		var slot <-chan *v3Report
		if err != nil {
			code := http.StatusBadRequest
			if errors.Is(err, errFrameTooLarge) {
				code = http.StatusRequestEntityTooLarge
			}
			slot = reported(errReport(errorf(code, "Error processing message: %v", err)))
		} else {
			rec := decodeV3Record(frame)
			slot = s.v3Send(ctx, cluster, topic, &rec, may)
		}
		inFlight.Add(size)
		select {
		case pending <- waiting{slot, size}:
		case <-ctx.Done():
		}
		if err != nil || ctx.Err() != nil {
			break
		}
	}
	close(pending)
	<-written
}

func reported(rep *v3Report) <-chan *v3Report {
	ch := make(chan *v3Report, 1)
	ch <- rep
	return ch
}

// v3Send produces a decoded record (or reports why it cannot be) and
// returns where its report comes, once; a key or value in a schema format
// is encoded first (mayRegister: a schema text may be registered).
func (s *Server) v3Send(ctx context.Context, cluster, topic string, d *v3Record, mayRegister bool) <-chan *v3Report {
	if d.err != nil {
		return reported(errReport(d.err))
	}
	d.rec.Topic = topic
	if d.keySchema != nil {
		d.keySchema.spec.mayRegister = mayRegister
		if d.rec.Key, d.key, d.err = s.v3Encode(ctx, topic, true, d.keySchema); d.err != nil {
			return reported(errReport(d.err))
		}
	}
	if d.valueSchema != nil {
		d.valueSchema.spec.mayRegister = mayRegister
		if d.rec.Value, d.value, d.err = s.v3Encode(ctx, topic, false, d.valueSchema); d.err != nil {
			return reported(errReport(d.err))
		}
	}
	if err := s.env.Mesh.Check(d.rec); err != nil {
		return reported(errReport(produceError(topic, err))) // 40002, as Kafka's INVALID_RECORD
	}
	if d.rec.Partition >= 0 {
		n, err := s.env.Mesh.Partitions(ctx, topic)
		if err != nil {
			return reported(errReport(produceError(topic, err)))
		}
		if d.rec.Partition >= n {
			return reported(errReport(errorf(codePartitionNotFound, "Partition not found: topic %s has partitions 0 to %d, not %d.",
				topic, n-1, d.rec.Partition)))
		}
	}
	out := make(chan *v3Report, 1)
	err := s.producers[mesh.AcksAll].Produce(ctx, d.rec, func(wr mesh.Record, err error) {
		if err != nil {
			out <- errReport(produceError(topic, err))
			return
		}
		out <- &v3Report{ErrorCode: http.StatusOK, ClusterID: cluster, TopicName: topic, PartitionID: &wr.Partition, Offset: &wr.Offset,
			Timestamp: v3Time(wr.Timestamp), Key: d.key, Value: d.value}
	})
	if err != nil {
		out <- errReport(produceError(topic, err))
	}
	return out
}

// v3Time is a record's timestamp as the REST Proxy writes it (Java's
// ISO_INSTANT at Kafka's millisecond precision): UTC, milliseconds when
// there are any.
func v3Time(t time.Time) string {
	t = time.UnixMilli(t.UnixMilli()).UTC()
	if t.Nanosecond() == 0 {
		return t.Format("2006-01-02T15:04:05Z")
	}
	return t.Format("2006-01-02T15:04:05.000Z")
}
