package webhook

import (
	"errors"

	"github.com/stoa-gateway/stoa/pkg/store"
)

// Delivery states.
const (
	StatePending   = store.DeliveryPending
	StateSucceeded = store.DeliverySucceeded
	StateFailed    = store.DeliveryFailed
)

// Delivery is one event on its way to one webhook: the outbox record (the
// store owns the type, so every backend keeps the same fields).
type Delivery = store.Delivery

// ErrNotFound is returned for unknown deliveries and webhooks.
var ErrNotFound = errors.New("not found")

// ParseID accepts "dlv_42" or "42".
func ParseID(id string) (int64, bool) { return store.DeliveryIDs.Parse(id) }

func formatID(n int64) string { return store.DeliveryIDs.Format(n) }
