package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"
)

// NodeStatus is one node's view of itself: what the status page shows
// for it, and what `meshka status` prints.
type NodeStatus struct {
	ID        int32             `json:"id"`
	Cluster   string            `json:"cluster"`
	Version   string            `json:"version"`
	Started   time.Time         `json:"started"`
	Kafka     string            `json:"kafka"`
	Admin     string            `json:"admin"`
	Listeners map[string]string `json:"listeners,omitempty"` // by protocol: mqtt, http, kafka/<name>
	Ready     bool              `json:"ready"`
	Reasons   []string          `json:"reasons,omitempty"`
	Upstream  UpstreamStatus    `json:"upstream"`
	// Members are the node ids this node sees live, itself included.
	Members []int32 `json:"members"`
	// Partitions are the partitions whose actor runs here: this node
	// leads them for Kafka clients and fetches them from upstream.
	Partitions []Partition `json:"partitions"`
	// Groups are the consumer groups this node coordinates.
	Groups []string `json:"groups"`
	// Actors counts the actors active here by kind.
	Actors map[string]int `json:"actors"`
	Cache  CacheStatus    `json:"cache"`
	// Connections are the client connections open now, by protocol.
	Connections map[string]int `json:"connections"`
}

// Partition is one topic partition.
type Partition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
}

// UpstreamStatus is whether upstream answers, and the brokers meshka
// was given.
type UpstreamStatus struct {
	Up      bool     `json:"up"`
	Brokers []string `json:"brokers"`
	Error   string   `json:"error,omitempty"`
}

// CacheStatus is the node's partition caches.
type CacheStatus struct {
	Bytes     int64   `json:"bytes"`
	Limit     int64   `json:"limit"`
	Hits      int64   `json:"hits"`
	Misses    int64   `json:"misses"`
	Evictions int64   `json:"evictions"`
	HitRatio  float64 `json:"hit_ratio"` // hits ÷ (hits + misses); 0 before any read
}

// Peer is another live node, by the admin address it gossips.
type Peer struct {
	ID    int32  `json:"id"`
	Admin string `json:"admin"`
	Error string `json:"error,omitempty"`
}

// ClusterStatus is every node's view merged: the answer of /api/status.
type ClusterStatus struct {
	// Node is the id of the node that answered and asked the others.
	Node  int32        `json:"node"`
	Time  time.Time    `json:"time"`
	Nodes []NodeStatus `json:"nodes"`
	// Unreachable are the live members whose admin listener did not
	// answer (or that gossip none).
	Unreachable []Peer `json:"unreachable,omitempty"`
}

// peerTimeout bounds asking one peer for its status.
const peerTimeout = 2 * time.Second

// status answers this node's status with ?scope=node, else every node's:
// the peers are asked at once, each within peerTimeout, with the
// request's own credentials.
func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	self := s.deps.Local(r.Context())
	if r.URL.Query().Get("scope") == "node" {
		writeJSON(w, http.StatusOK, self)
		return
	}
	out := ClusterStatus{Node: self.ID, Time: time.Now().UTC(), Nodes: []NodeStatus{self}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, p := range s.deps.Peers() {
		if p.Admin == "" {
			p.Error = "it serves no admin listener"
			out.Unreachable = append(out.Unreachable, p)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ns, err := s.askPeer(r.Context(), p.Admin, r.Header.Get("Authorization"))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				p.Error = err.Error()
				out.Unreachable = append(out.Unreachable, p)
				return
			}
			out.Nodes = append(out.Nodes, ns)
		}()
	}
	wg.Wait()
	slices.SortFunc(out.Nodes, func(a, b NodeStatus) int { return int(a.ID) - int(b.ID) })
	slices.SortFunc(out.Unreachable, func(a, b Peer) int { return int(a.ID) - int(b.ID) })
	writeJSON(w, http.StatusOK, out)
}

// maxPeerStatus bounds a peer's answer.
const maxPeerStatus = 8 << 20

func (s *Server) askPeer(ctx context.Context, addr, authorization string) (NodeStatus, error) {
	scheme := "http"
	if s.cfg.PeerTLS != nil {
		scheme = "https"
	}
	ctx, cancel := context.WithTimeout(ctx, peerTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+addr+"/api/status?scope=node", nil)
	if err != nil {
		return NodeStatus{}, err
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := s.peers.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is the peer's address, already named
		}
		return NodeStatus{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return NodeStatus{}, fmt.Errorf("%s answered %s", addr, resp.Status)
	}
	ns, err := decodeNodeStatus(resp.Body)
	if err != nil {
		return NodeStatus{}, fmt.Errorf("%s: %w", addr, err)
	}
	return ns, nil
}

// decodeNodeStatus reads a peer's answer: at most maxPeerStatus bytes of
// one JSON NodeStatus.
func decodeNodeStatus(r io.Reader) (NodeStatus, error) {
	var ns NodeStatus
	if err := json.NewDecoder(io.LimitReader(r, maxPeerStatus)).Decode(&ns); err != nil {
		return NodeStatus{}, err
	}
	return ns, nil
}
