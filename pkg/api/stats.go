package api

import "time"

// PathStats serves live statistics: GET one sample, or with ?follow=1 an
// NDJSON stream of samples about once a second (stoa top, stoa dashboard).
const PathStats = "/v1/stats"

// StatsSample is one sample of the live statistics. Counters are cumulative
// since stoad started (or since the tool first appeared); rates and
// latency quantiles cover the interval since the previous sample.
type StatsSample struct {
	// Time the sample was taken.
	Time time.Time `json:"time"`
	// IntervalSeconds is the span the rates and quantiles cover; 0 in the
	// first sample of a stream, whose rates are therefore all 0.
	IntervalSeconds float64 `json:"intervalSeconds"`
	// Revision is the live configuration revision.
	Revision int64 `json:"revision"`
	// Daemon describes the stoad that answered.
	Daemon DaemonInfo `json:"daemon"`
	// Totals sums every tenant's HTTP traffic.
	Totals Traffic `json:"totals"`
	// Tenants lists every tenant with live tools, by name.
	Tenants []TenantStats `json:"tenants"`
	// MCP lists MCP tools/call figures by MCP tool name.
	MCP []MCPToolStats `json:"mcp"`
	// XDP carries the kernel limiter's figures; nil when no XDP runtime
	// reports them.
	XDP *XDPStats `json:"xdp,omitempty"`
}

// DaemonInfo is the header of a stats sample.
type DaemonInfo struct {
	Version       string      `json:"version"`
	Commit        string      `json:"commit,omitempty"`
	PID           int         `json:"pid"`
	StartedAt     time.Time   `json:"startedAt"`
	UptimeSeconds float64     `json:"uptimeSeconds"`
	Listeners     []Listener  `json:"listeners"`
	Components    []Component `json:"components,omitempty"`
}

// Traffic is the figures of one tool, tenant or operation.
type Traffic struct {
	// Requests is the cumulative number of finished requests.
	Requests uint64 `json:"requests"`
	// RPS is requests per second over the interval.
	RPS float64 `json:"rps"`
	// P50Ms and P99Ms are latency quantiles over the interval, in
	// milliseconds (0 when nothing finished in it).
	P50Ms float64 `json:"p50Ms"`
	P99Ms float64 `json:"p99Ms"`
	// Codes are cumulative responses by status class (4xx includes 429).
	Codes StatusClasses `json:"codes"`
	// CodeRates are responses per second by status class.
	CodeRates StatusRates `json:"codeRates"`
	// Limited counts 429s from rate limits and quotas; LimitedRate per second.
	Limited     uint64  `json:"limited"`
	LimitedRate float64 `json:"limitedRate"`
	// UpstreamErrors counts connect failures, resets and timeouts.
	UpstreamErrors uint64 `json:"upstreamErrors,omitempty"`
	// Errors counts MCP results with isError.
	Errors uint64 `json:"errors,omitempty"`
}

// StatusClasses counts responses by status class.
type StatusClasses struct {
	S2xx  uint64 `json:"2xx"`
	S3xx  uint64 `json:"3xx"`
	S4xx  uint64 `json:"4xx"`
	S5xx  uint64 `json:"5xx"`
	Other uint64 `json:"other,omitempty"`
}

// StatusRates are responses per second by status class.
type StatusRates struct {
	S2xx float64 `json:"2xx"`
	S3xx float64 `json:"3xx"`
	S4xx float64 `json:"4xx"`
	S5xx float64 `json:"5xx"`
}

// TenantStats is one tenant's traffic and its tools.
type TenantStats struct {
	Name  string      `json:"name"`
	Total Traffic     `json:"total"`
	Tools []ToolStats `json:"tools"`
}

// ToolStats is one tool's proxied traffic and upstream health.
type ToolStats struct {
	Tenant string `json:"tenant"`
	Name   string `json:"name"`
	Traffic
	// Health summarises the upstreams: ok, degraded (some unavailable),
	// down (none available) or unknown.
	Health    string           `json:"health"`
	Upstreams []UpstreamHealth `json:"upstreams,omitempty"`
}

// UpstreamHealth is one upstream of a tool.
type UpstreamHealth struct {
	URL       string `json:"url"`
	Weight    int    `json:"weight,omitempty"`
	Available bool   `json:"available"`
}

// MCPToolStats is the tools/call figures of one MCP tool (one operation).
type MCPToolStats struct {
	Tenant string `json:"tenant"`
	// Name is the MCP tool name ({tenant}__{tool}__{operation} or mcpName).
	Name string `json:"name"`
	// Tool and Operation locate the operation when the name is known.
	Tool      string `json:"tool,omitempty"`
	Operation string `json:"operation,omitempty"`
	Traffic
}

// XDPStats is the kernel limiter's figures.
type XDPStats struct {
	// Mode is native, generic, mixed, or off; Fallback reports the
	// userspace limiter in force instead, Reason why XDP is off.
	Mode     string `json:"mode"`
	Attached bool   `json:"attached"`
	Fallback bool   `json:"fallback,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// Passed and Dropped are cumulative packet (or connection) counts;
	// the rates are per second over the interval.
	Passed      uint64  `json:"passed"`
	Dropped     uint64  `json:"dropped"`
	PassedRate  float64 `json:"passedRate"`
	DroppedRate float64 `json:"droppedRate"`
	// DroppedBy splits Dropped by reason: rate, deny, block.
	DroppedBy map[string]uint64 `json:"droppedBy,omitempty"`
	// Blocks is the number of active timed blocks; TrackedSources the
	// number of sources with a token bucket.
	Blocks         int         `json:"blocks"`
	TrackedSources int         `json:"trackedSources"`
	TopSources     []XDPSource `json:"topSources,omitempty"`
}

// XDPSource is one source address's use of its bucket.
type XDPSource struct {
	Addr    string `json:"addr"`
	Passed  uint64 `json:"passed"`
	Dropped uint64 `json:"dropped"`
}
