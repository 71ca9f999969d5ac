package webhook

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Store buckets: every delivery keyed by its big-endian sequence number,
// and the index of those still pending.
var (
	BucketDeliveries = []byte("webhook_deliveries")
	BucketPending    = []byte("webhook_pending")
	bucketMeta       = []byte("webhook_meta")
)

// Delivery states.
const (
	StatePending   = "pending"
	StateSucceeded = "succeeded"
	StateFailed    = "failed"
)

// Delivery is one event on its way to one webhook: the outbox record.
type Delivery struct {
	ID            string          `json:"id"`
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

// ErrNotFound is returned for unknown deliveries and webhooks.
var ErrNotFound = errors.New("not found")

func u64(n int64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	return b[:]
}

// ParseID accepts "dlv_42" or "42".
func ParseID(id string) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimPrefix(id, "dlv_"), 10, 64)
	return n, err == nil && n > 0
}

func formatID(n int64) string { return "dlv_" + strconv.FormatInt(n, 10) }

func createBuckets(tx *bolt.Tx) error {
	for _, b := range [][]byte{BucketDeliveries, BucketPending, bucketMeta} {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	return nil
}

// insert stores new pending deliveries, assigning ids, and trims the log
// to keep deliveries (finished ones only: pending ones are never dropped).
func insert(tx *bolt.Tx, ds []*Delivery, keep int) error {
	b, p := tx.Bucket(BucketDeliveries), tx.Bucket(BucketPending)
	var last uint64
	for _, d := range ds {
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		last = seq
		d.ID = formatID(int64(seq))
		if err := put(tx, d); err != nil {
			return err
		}
		if err := p.Put(u64(int64(seq)), nil); err != nil {
			return err
		}
	}
	if keep > 0 && last > uint64(keep) {
		// Trim in small steps so one insert never does much work.
		limit, c := last-uint64(keep), b.Cursor()
		k, _ := c.First()
		for steps := 0; k != nil && binary.BigEndian.Uint64(k) <= limit && steps < 2*len(ds)+8; steps++ {
			if p.Get(k) != nil {
				k, _ = c.Next()
				continue
			}
			key := bytes.Clone(k)
			if err := b.Delete(key); err != nil {
				return err
			}
			k, _ = c.Seek(key)
		}
	}
	return nil
}

func put(tx *bolt.Tx, d *Delivery) error {
	n, ok := ParseID(d.ID)
	if !ok {
		return fmt.Errorf("bad delivery id %q", d.ID)
	}
	v, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return tx.Bucket(BucketDeliveries).Put(u64(n), v)
}

func get(tx *bolt.Tx, id string) (*Delivery, error) {
	n, ok := ParseID(id)
	if !ok {
		return nil, fmt.Errorf("delivery %q: %w", id, ErrNotFound)
	}
	v := tx.Bucket(BucketDeliveries).Get(u64(n))
	if v == nil {
		return nil, fmt.Errorf("delivery %s: %w", id, ErrNotFound)
	}
	d := new(Delivery)
	if err := json.Unmarshal(v, d); err != nil {
		return nil, fmt.Errorf("decode delivery %s: %w", id, err)
	}
	return d, nil
}
