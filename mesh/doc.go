// Package mesh is meshka's API for protocol bindings: what the MQTT and
// HTTP mappers, and a binding of your own, use to write records to Kafka
// topics and read them back, on any node of a meshka cluster.
//
// The API speaks in records (key, value, headers, timestamp, partition,
// offset), never in Kafka's record batches. A Producer batches the
// records it is given per partition, compresses each batch and hands it to
// the partition's actor on whichever node owns it, which forwards it
// upstream in its ordered pipeline. A Subscription reads a topic's
// partitions from the owners' caches: on each node, one reader per
// partition decodes each batch once for all the node's subscribers of
// that partition and hands each the records its Filter matches, through
// a bounded queue. A Share is one member of a consumer group: the
// group's partitions are split over its members on any node, rebalanced
// as they come and go, and their offsets committed upstream. A Table is a topic as the latest value of each key,
// held by one table actor per topic in the cluster, with Get, Scan by
// key prefix, Watch, and Put and Delete that read their own writes. A
// Lease is exclusive, cluster-wide ownership of a name (an MQTT session's
// client id), which a later Acquire anywhere revokes. Actors is a
// binding's own kind of cluster-wide actor, one per identity, called
// from any node (the HTTP mapper's v2 consumer instances). CreateTopics
// creates the topics a binding needs upstream; ClusterID, Topics and
// Topic describe what upstream has.
//
// RegisterBinding makes a binding of the program's own available to its
// nodes, which start it when their configuration names it under
// bindings.
package mesh
