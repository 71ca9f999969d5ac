package api

import "time"

// XDP routes.
const (
	// PathXDPStatus serves GET: the XDP limiter's XDPStatus.
	PathXDPStatus = "/v1/xdp/status"
	// PathXDPBlocks serves GET (XDPBlockList), POST (XDPBlockRequest: add
	// or replace a timed block) and DELETE (?cidr=, or an XDPUnblockRequest
	// body: lift a block).
	PathXDPBlocks = "/v1/xdp/blocks"
	// PathXDPUnblock serves POST XDPUnblockRequest, for clients that cannot
	// send DELETE with a body.
	PathXDPUnblock = "/v1/xdp/blocks/unblock"
)

// XDPBlock is one timed block of a source prefix.
type XDPBlock struct {
	// Source is the blocked prefix in CIDR notation (a single address is
	// /32 or /128).
	Source string `json:"source"`
	// Reason says who or what blocked it ("escalated: 57 rejections in
	// 10s", or the operator's --reason).
	Reason string `json:"reason,omitempty"`
	// Until is when the block expires.
	Until time.Time `json:"until"`
	// ExpiresInSeconds is the time left when the answer was made.
	ExpiresInSeconds float64 `json:"expiresInSeconds"`
}

// XDPBlockList is the answer of GET /v1/xdp/blocks: the blocks in force,
// sorted by prefix.
type XDPBlockList struct {
	Items []XDPBlock `json:"items"`
}

// XDPBlockRequest blocks a source prefix for a while.
type XDPBlockRequest struct {
	// CIDR is a prefix ("198.51.100.0/24", "2001:db8::/48") or a single
	// address.
	CIDR string `json:"cidr"`
	// For is how long, as a duration ("10m", "1h", "7d").
	For string `json:"for"`
	// Reason is recorded with the block and in its events.
	Reason string `json:"reason,omitempty"`
}

// XDPUnblockRequest lifts the block on a prefix, as it was given to block.
type XDPUnblockRequest struct {
	CIDR string `json:"cidr"`
}

// XDPUnblockResponse reports whether a block was in force.
type XDPUnblockResponse struct {
	Source string `json:"source"`
	// Removed is false when the prefix was not blocked (not an error).
	Removed bool `json:"removed"`
}

// XDPStatus describes the XDP limiter: what the Gateway spec asks for and
// what runs.
type XDPStatus struct {
	// Enabled reports whether the Gateway spec turns XDP on.
	Enabled bool `json:"enabled"`
	// Attached reports whether the program is attached to every
	// configured interface.
	Attached bool `json:"attached"`
	// Mode is native, generic, mixed (interfaces differ) or off.
	Mode string `json:"mode"`
	// Interfaces are the configured interfaces and the mode each got.
	Interfaces []XDPInterface `json:"interfaces"`
	// Reason says why XDP is off; empty while attached.
	Reason string `json:"reason,omitempty"`
	// Error is the last reload the limiter could not apply (the previous
	// config stays in force); empty when the last one succeeded.
	Error string `json:"error,omitempty"`
	// Fallback reports that the userspace accept-time limiter enforces
	// the config instead of the kernel.
	Fallback bool `json:"fallback"`
	// Ports are the protected destination ports.
	Ports []int `json:"ports"`
	// PerSource is the per-source token bucket; nil when unlimited.
	PerSource *XDPRate `json:"perSource,omitempty"`
	// Deny is the deny list.
	Deny []string `json:"deny"`
	// Escalation is the L7 → kernel escalation; nil when off.
	Escalation *XDPEscalation `json:"escalation,omitempty"`
	// Counters are the kernel's packet counters (cumulative). While the
	// fallback is in force, FallbackCounters counts connections instead.
	Counters         XDPCounters `json:"counters"`
	FallbackCounters XDPCounters `json:"fallbackCounters"`
	// TrackedSources is the number of sources with a token bucket; Blocks
	// the number of timed blocks in force.
	TrackedSources int `json:"trackedSources"`
	Blocks         int `json:"blocks"`
	// TopSources are the sources with the most drops.
	TopSources []XDPSource `json:"topSources"`
}

// XDPInterface is one interface and the attach mode it got ("" while not
// attached).
type XDPInterface struct {
	Name string `json:"name"`
	Mode string `json:"mode,omitempty"`
}

// XDPRate is a per-source token bucket.
type XDPRate struct {
	// Rate as written in the spec ("2000/s").
	Rate string `json:"rate"`
	// PerSecond is the rate in tokens per second.
	PerSecond float64 `json:"perSecond"`
	Burst     int     `json:"burst"`
	// Count is what takes a token: packets or connections.
	Count string `json:"count"`
}

// XDPEscalation is the escalation policy in force.
type XDPEscalation struct {
	After         int     `json:"after"`
	WithinSeconds float64 `json:"withinSeconds"`
	BlockSeconds  float64 `json:"blockSeconds"`
	// IPv4PrefixLength and IPv6PrefixLength are how much of a source is
	// counted and blocked as one (0 from a stoad that predates them: 32
	// and 128).
	IPv4PrefixLength int `json:"ipv4PrefixLength,omitempty"`
	IPv6PrefixLength int `json:"ipv6PrefixLength,omitempty"`
}

// XDPCounters are packet (or, for the fallback, connection) counts.
type XDPCounters struct {
	Passed       uint64 `json:"passed"`
	DroppedRate  uint64 `json:"droppedRate"`
	DroppedDeny  uint64 `json:"droppedDeny"`
	DroppedBlock uint64 `json:"droppedBlock"`
	// Passed unjudged (kernel only): not TCP/UDP to a protected port,
	// non-first fragments, truncated headers.
	Other     uint64 `json:"other,omitempty"`
	Fragments uint64 `json:"fragments,omitempty"`
	Malformed uint64 `json:"malformed,omitempty"`
}
