package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/auth"
)

// MaxEvents is how many events the log keeps; older ones are dropped.
const MaxEvents = 10000

// Events is the event log.
type Events interface {
	// Append stores e, assigning its sequence number, and drops the
	// oldest events beyond MaxEvents. Sequence numbers follow commit
	// order: once a reader has seen an event, no event committed later
	// gets a smaller number (so a follower at "after N" misses nothing).
	Append(ctx context.Context, e api.Event) (api.Event, error)
	// Since returns the events with Seq > after, oldest first, at most
	// limit (0: all).
	Since(ctx context.Context, after int64, limit int) ([]api.Event, error)
	// Last returns the last n events, oldest first.
	Last(ctx context.Context, n int) ([]api.Event, error)
}

// Keys are the API key records (hashes, never keys).
type Keys interface {
	// Get returns one key record; ErrNotFound if unknown.
	Get(ctx context.Context, id string) (auth.KeyRecord, error)
	// Put stores records, replacing those with the same ID.
	Put(ctx context.Context, recs ...auth.KeyRecord) error
	// List returns every key record.
	List(ctx context.Context) ([]auth.KeyRecord, error)
}

// AuditRecord is one stored audit entry: its sequence number and its
// bytes, kept verbatim (the chain's hashes cover an exact encoding, and
// verifying must see exactly what was stored).
type AuditRecord struct {
	Seq  int64
	Data []byte
}

// AuditHead is the end of the audit chain.
type AuditHead struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}

// Audit is the append-only audit log.
type Audit interface {
	// Head returns the end of the chain (zero before the first entry);
	// ErrCorrupt if it does not decode. Within an Update it is the head
	// this transaction will extend: implementations shared by replicas
	// lock it until commit.
	Head(ctx context.Context) (AuditHead, error)
	// Append stores recs and the new head. A record whose Seq is already
	// stored is refused with ErrConflict: entries are never overwritten.
	Append(ctx context.Context, recs []AuditRecord, head AuditHead) error
	// Scan calls fn with every record in Seq order (newest first with
	// reverse) until fn returns false. Data is valid only during fn.
	Scan(ctx context.Context, reverse bool, fn func(AuditRecord) bool) error
	// Cursor returns a named position stored with SetCursor, and whether
	// one was.
	Cursor(ctx context.Context, name string) (int64, bool, error)
	// SetCursor stores a named position (a consumer of another log records
	// what it has audited in the transaction that appends the entries).
	SetCursor(ctx context.Context, name string, n int64) error
}

// SnapshotRecord is one stored error snapshot: the fields the store
// indexes and the snapshot's JSON document (which carries the same
// tenant, tool and time: the bbolt layout reads them from it).
type SnapshotRecord struct {
	ID     int64
	Tenant string
	Tool   string
	Time   time.Time
	Data   []byte
}

// SnapshotFilter selects snapshots for List.
type SnapshotFilter struct {
	Tenant string // "" is every tenant
	Tool   string
	Since  time.Time
	Limit  int // newest N (0: all)
}

// Snapshots are the error snapshots, grouped by tenant.
type Snapshots interface {
	// NextID reserves a snapshot id, greater than every earlier one.
	NextID(ctx context.Context) (int64, error)
	// Put stores rec under rec.ID (from NextID), replacing what was
	// stored under it.
	Put(ctx context.Context, rec SnapshotRecord) error
	// Get returns one snapshot; ErrNotFound if unknown.
	Get(ctx context.Context, id int64) (SnapshotRecord, error)
	// List returns matching snapshots, newest first.
	List(ctx context.Context, f SnapshotFilter) ([]SnapshotRecord, error)
	// Trim drops one tenant's oldest snapshots beyond the newest keep
	// (keep <= 0: no count bound), then, oldest first, those not taken
	// after before (zero: no age bound), and returns how many it dropped.
	Trim(ctx context.Context, tenant string, keep int, before time.Time) (int, error)
	// Tenants lists the tenants that have snapshots.
	Tenants(ctx context.Context) ([]string, error)
}

// Delivery states.
const (
	DeliveryPending   = "pending"
	DeliverySucceeded = "succeeded"
	DeliveryFailed    = "failed"
)

// Delivery is one event on its way to one webhook: the outbox record.
type Delivery struct {
	ID            string          `json:"id"` // DeliveryIDs
	Tenant        string          `json:"tenant"`
	Webhook       string          `json:"webhook"`
	EventID       string          `json:"eventId"`
	EventType     string          `json:"eventType"`
	State         string          `json:"state"`
	Attempts      int             `json:"attempts"`
	CreatedAt     time.Time       `json:"createdAt"`
	NextAttemptAt time.Time       `json:"nextAttemptAt,omitzero"`
	LastAttemptAt time.Time       `json:"lastAttemptAt,omitzero"`
	LastStatus    int             `json:"lastStatus,omitempty"`
	LastError     string          `json:"lastError,omitempty"`
	LastDuration  time.Duration   `json:"lastDurationNs,omitempty"`
	LastResponse  string          `json:"lastResponse,omitempty"`
	CompletedAt   time.Time       `json:"completedAt,omitzero"`
	RedeliveryOf  string          `json:"redeliveryOf,omitempty"`
	Body          json.RawMessage `json:"body,omitempty"`
}

// DeliveryFilter selects deliveries for List.
type DeliveryFilter struct {
	Tenant, Webhook, State string
	Limit                  int // newest N (0: all)
}

// DueDelivery is a pending delivery and when it is next due.
type DueDelivery struct {
	ID            int64
	NextAttemptAt time.Time
}

// Outbox is the durable queue of webhook deliveries. Any number of
// dispatchers (one per replica) share it: a delivery is attempted by
// whoever claims it, and a claim lapses after its lease, so a dispatcher
// that dies mid-attempt delays its deliveries but never loses them.
type Outbox interface {
	// Insert stores new pending deliveries, assigning their IDs.
	Insert(ctx context.Context, ds []*Delivery) error
	// Get returns one delivery with its body; ErrNotFound if unknown.
	Get(ctx context.Context, id int64) (Delivery, error)
	// List returns matching deliveries, newest first, without bodies.
	List(ctx context.Context, f DeliveryFilter) ([]Delivery, error)
	// Pending returns every pending delivery and when it is due.
	Pending(ctx context.Context) ([]DueDelivery, error)
	// Claim takes pending delivery id for owner for lease (renewing
	// owner's own claim). ErrNotFound if unknown; ErrConflict if it is
	// no longer pending or another owner's claim has not lapsed.
	Claim(ctx context.Context, id int64, owner string, lease time.Duration) (Delivery, error)
	// Ack records a finished delivery (d.State succeeded or failed): it
	// is no longer pending and its claim is released. ErrConflict if
	// another owner holds a live claim on it.
	Ack(ctx context.Context, owner string, d Delivery) error
	// Retry records an attempt that will be repeated at d.NextAttemptAt
	// (d.State pending) and releases the claim. ErrConflict as for Ack.
	Retry(ctx context.Context, owner string, d Delivery) error
	// Trim drops finished deliveries older than the newest keep, oldest
	// first, looking at no more than the limit oldest ones (pending ones
	// are looked at, never dropped), and returns how many it dropped.
	// Called after each Insert with a limit a little above the number
	// inserted, it keeps the log near keep without ever doing much work.
	Trim(ctx context.Context, keep, limit int) (int, error)
}

// QuotaUsage is the stored form of one subscription's usage counters.
type QuotaUsage struct {
	Day            int64 `json:"day"`
	DayCount       int64 `json:"dayCount"`
	Month          int64 `json:"month"`
	MonthCount     int64 `json:"monthCount"`
	DayExhausted   int64 `json:"dayExhausted,omitempty"`
	MonthExhausted int64 `json:"monthExhausted,omitempty"`
}

// Plus returns the stored usage u with delta added: delta's DayCount
// calls counted in day delta.Day, its MonthCount in month delta.Month.
// A count of the stored period adds to it; a count of a later period
// starts that period; a count of a period already over is dropped (the
// stored period has moved on). The exhaustion marks keep the latest.
func (u QuotaUsage) Plus(delta QuotaUsage) QuotaUsage {
	u.Day, u.DayCount = addPeriod(u.Day, u.DayCount, delta.Day, delta.DayCount)
	u.Month, u.MonthCount = addPeriod(u.Month, u.MonthCount, delta.Month, delta.MonthCount)
	u.DayExhausted = max(u.DayExhausted, delta.DayExhausted)
	u.MonthExhausted = max(u.MonthExhausted, delta.MonthExhausted)
	return u
}

func addPeriod(p, n, dp, dn int64) (int64, int64) {
	switch {
	case dp == p:
		return p, n + dn
	case dp > p:
		return dp, dn
	default:
		return p, n
	}
}

// Quota is the quota usage counters, keyed "tenant/subscription".
type Quota interface {
	// List returns every stored counter.
	List(ctx context.Context) (map[string]QuotaUsage, error)
	// Put stores (inserts or replaces) one counter.
	Put(ctx context.Context, key string, u QuotaUsage) error
	// Add adds the calls one process counted since its last flush and
	// returns the stored total, so that processes sharing the store add
	// up their counts instead of overwriting each other's (see
	// QuotaUsage.Plus for the rules).
	Add(ctx context.Context, key string, delta QuotaUsage) (QuotaUsage, error)
	// Delete drops one counter (no error if absent).
	Delete(ctx context.Context, key string) error
}

// Namespace is a group of Meta entries. The set is closed: a store maps
// each to its own place (a bbolt bucket of the same name).
type Namespace string

// Meta namespaces.
const (
	// MetaMCP: "cursor-key", the HMAC key of MCP list cursors.
	MetaMCP Namespace = "mcp"
	// MetaWebhookFeed: "cursor", the last event turned into deliveries
	// (EncodeSeq).
	MetaWebhookFeed Namespace = "webhook_feed"
	// MetaConsumerUIDs: each live Consumer's identity, "tenant\x00name"
	// → JSON.
	MetaConsumerUIDs Namespace = "consumer_uids"
	// MetaSubscriptionState: each subscription's last announced state,
	// "tenant/name" → JSON.
	MetaSubscriptionState Namespace = "subscription_state"
	// MetaFleet: a control plane's fleet state (pkg/fleet/controlplane):
	// "ca" (the fleet CA), "token/<sha256>" (join tokens), "id/<name>"
	// (data plane identities) and "dp/<name>" (their last heartbeat).
	MetaFleet Namespace = "fleet"
	// MetaXDPBlocks: each runtime XDP block (operator or escalation),
	// its CIDR → JSON with its expiry, so that it outlives a restart.
	MetaXDPBlocks Namespace = "xdp_blocks"
)

// Namespaces lists every Meta namespace.
func Namespaces() []Namespace {
	return []Namespace{MetaMCP, MetaWebhookFeed, MetaConsumerUIDs, MetaSubscriptionState, MetaFleet, MetaXDPBlocks}
}

// Meta is small keyed state of other parts. Keys are arbitrary bytes
// (they may hold NUL).
type Meta interface {
	// Get returns one value; ErrNotFound if absent.
	Get(ctx context.Context, ns Namespace, key string) ([]byte, error)
	// Put stores (inserts or replaces) one value.
	Put(ctx context.Context, ns Namespace, key string, value []byte) error
	// Delete drops one value (no error if absent).
	Delete(ctx context.Context, ns Namespace, key string) error
	// List calls fn with every entry of ns in key order; value is valid
	// only during fn.
	List(ctx context.Context, ns Namespace, fn func(key string, value []byte) error) error
}
