package api

import "time"

// API management routes: subscriptions and quotas, webhook deliveries,
// error snapshots and the audit trail.
const (
	PathQuotas            = "/v1/quotas"              // GET ?namespace=
	PathWebhookDeliveries = "/v1/webhooks/deliveries" // GET ?namespace=&webhook=&state=&limit=; GET /{id}; POST /{id}/redeliver
	PathWebhookTest       = "/v1/webhooks/test"       // POST WebhookTestRequest
	PathSnapshots         = "/v1/snapshots"           // GET ?namespace=&tool=&since=&limit=; GET /{id}; POST /{id}/replay
	PathAudit             = "/v1/audit"               // GET ?since=&actor=&action=&namespace=&limit= (NDJSON)
	PathAuditVerify       = "/v1/audit/verify"        // GET
)

// QuotaStatus is one subscription's effective state and quota usage.
type QuotaStatus struct {
	Tenant       string    `json:"tenant"`
	Name         string    `json:"name"`
	Consumer     string    `json:"consumer"`
	Plan         string    `json:"plan"`
	Tool         string    `json:"tool,omitempty"`
	ToolSet      string    `json:"toolSet,omitempty"`
	State        string    `json:"state"`
	ExpiresAt    time.Time `json:"expiresAt,omitzero"`
	Daily        int64     `json:"daily,omitempty"`
	DailyUsed    int64     `json:"dailyUsed"`
	DailyReset   time.Time `json:"dailyReset"`
	Monthly      int64     `json:"monthly,omitempty"`
	MonthlyUsed  int64     `json:"monthlyUsed"`
	MonthlyReset time.Time `json:"monthlyReset"`
}

// QuotaList is the answer of GET /v1/quotas. Now is the daemon's clock.
type QuotaList struct {
	Now   time.Time     `json:"now"`
	Items []QuotaStatus `json:"items"`
}

// WebhookDelivery is one outbox entry: an event on its way to a webhook.
type WebhookDelivery struct {
	ID            string        `json:"id"`
	Tenant        string        `json:"tenant"`
	Webhook       string        `json:"webhook"`
	EventID       string        `json:"eventId"`
	EventType     string        `json:"eventType"`
	State         string        `json:"state"` // pending, succeeded, failed
	Attempts      int           `json:"attempts"`
	CreatedAt     time.Time     `json:"createdAt"`
	NextAttemptAt time.Time     `json:"nextAttemptAt,omitzero"`
	LastAttemptAt time.Time     `json:"lastAttemptAt,omitzero"`
	LastStatus    int           `json:"lastStatus,omitempty"`
	LastError     string        `json:"lastError,omitempty"`
	LastDuration  time.Duration `json:"lastDurationNs,omitempty"`
	LastResponse  string        `json:"lastResponse,omitempty"`
	CompletedAt   time.Time     `json:"completedAt,omitzero"`
	RedeliveryOf  string        `json:"redeliveryOf,omitempty"`
	// Body is the signed JSON payload (only from GET /{id}).
	Body any `json:"body,omitempty"`
}

// WebhookDeliveryList is the answer of GET /v1/webhooks/deliveries.
type WebhookDeliveryList struct {
	Items []WebhookDelivery `json:"items"`
}

// WebhookTestRequest sends a webhook.test event to one webhook.
type WebhookTestRequest struct {
	Tenant string `json:"tenant"`
	Name   string `json:"name"`
	// NoWait returns as soon as the delivery is queued.
	NoWait bool `json:"noWait,omitempty"`
}

// WebhookRedeliverRequest options for POST /{id}/redeliver.
type WebhookRedeliverRequest struct {
	NoWait bool `json:"noWait,omitempty"`
}

// WebhookAttemptResponse reports a queued delivery and, unless NoWait, its
// first attempt (Waited says whether it finished in time).
type WebhookAttemptResponse struct {
	Delivery WebhookDelivery `json:"delivery"`
	Waited   bool            `json:"waited"`
}

// SnapshotHeader is one header field of a snapshot.
type SnapshotHeader struct {
	Name     string `json:"name"`
	Value    string `json:"value"`
	Redacted bool   `json:"redacted,omitempty"`
}

// SnapshotMessage is the request or the response of a snapshot.
type SnapshotMessage struct {
	Method    string           `json:"method,omitempty"`
	URL       string           `json:"url,omitempty"`
	Target    string           `json:"target,omitempty"`
	Injected  []string         `json:"injected,omitempty"`
	Status    int              `json:"status,omitempty"`
	Headers   []SnapshotHeader `json:"headers,omitempty"`
	Body      string           `json:"body,omitempty"`
	BodyBytes int              `json:"bodyBytes"`
	Truncated bool             `json:"truncated,omitempty"`
	Omitted   string           `json:"omitted,omitempty"`
}

// Snapshot is a stored, redacted error snapshot.
type Snapshot struct {
	ID             string          `json:"id"`
	Time           time.Time       `json:"time"`
	Source         string          `json:"source"`
	Tenant         string          `json:"tenant"`
	Tool           string          `json:"tool"`
	Operation      string          `json:"operation,omitempty"`
	Consumer       string          `json:"consumer,omitempty"`
	Revision       int64           `json:"revision"`
	RequestID      string          `json:"requestId,omitempty"`
	Upstream       string          `json:"upstream,omitempty"`
	Reason         string          `json:"reason"`
	Error          string          `json:"error,omitempty"`
	Duration       time.Duration   `json:"durationNs"`
	UpstreamStatus int             `json:"upstreamStatus,omitempty"`
	Request        SnapshotMessage `json:"request"`
	Response       SnapshotMessage `json:"response"`
	Redactions     []string        `json:"redactions,omitempty"`
	// Origin is "upstream" (an upstream was tried) or "gateway" (the
	// gateway answered itself: no healthy upstream).
	Origin string `json:"origin,omitempty"`
	// Route is the tool's route (path prefix).
	Route string `json:"route,omitempty"`
	// Count is how many identical failures this snapshot stands for;
	// Time is the first, LastSeen the last.
	Count    int64     `json:"count,omitempty"`
	LastSeen time.Time `json:"lastSeen,omitzero"`
	// Curl reproduces the request; redacted values read [REDACTED].
	Curl string `json:"curl,omitempty"`
}

// SnapshotSummary is a snapshot's line in a listing.
type SnapshotSummary struct {
	ID        string        `json:"id"`
	Time      time.Time     `json:"time"`
	Tenant    string        `json:"tenant"`
	Tool      string        `json:"tool"`
	Consumer  string        `json:"consumer,omitempty"`
	Method    string        `json:"method"`
	Target    string        `json:"target"`
	Status    int           `json:"status"`
	Reason    string        `json:"reason"`
	Duration  time.Duration `json:"durationNs"`
	RequestID string        `json:"requestId,omitempty"`
	// Count is how many identical failures the snapshot stands for (first
	// at Time, last at LastSeen).
	Count    int64     `json:"count"`
	LastSeen time.Time `json:"lastSeen,omitzero"`
}

// SnapshotList is the answer of GET /v1/snapshots.
type SnapshotList struct {
	Items []SnapshotSummary `json:"items"`
	// Dropped counts captures skipped since stoad started (rate or queue
	// bound).
	Dropped int64 `json:"dropped,omitempty"`
}

// ReplayResult is the answer of POST /v1/snapshots/{id}/replay.
type ReplayResult struct {
	Snapshot    string        `json:"snapshot"`
	URL         string        `json:"url"`
	OldStatus   int           `json:"oldStatus"`
	OldReason   string        `json:"oldReason"`
	Status      int           `json:"status"`
	Error       string        `json:"error,omitempty"`
	Duration    time.Duration `json:"durationNs"`
	OldDuration time.Duration `json:"oldDurationNs"`
	Body        string        `json:"body,omitempty"`
	Warnings    []string      `json:"warnings,omitempty"`
}

// AuditEntry is one entry of the audit trail; Hash covers the entry's
// canonical JSON without "hash" and Prev is the previous entry's Hash
// (see docs/audit.md).
type AuditEntry struct {
	Seq      int64             `json:"seq"`
	Time     time.Time         `json:"time"`
	Actor    string            `json:"actor"`
	Action   string            `json:"action"`
	Target   string            `json:"target"`
	Tenant   string            `json:"tenant,omitempty"`
	Revision int64             `json:"revision"`
	Details  map[string]string `json:"details,omitempty"`
	Prev     string            `json:"prev"`
	Hash     string            `json:"hash,omitempty"`
}

// AuditVerify is the answer of GET /v1/audit/verify.
type AuditVerify struct {
	OK       bool   `json:"ok"`
	Entries  int64  `json:"entries"`
	Head     string `json:"head,omitempty"`
	BrokenAt int64  `json:"brokenAt,omitempty"`
	Problem  string `json:"problem,omitempty"`
}
