package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"time"
)

// KeyRecord is the stored form of an API key: everything but the key
// itself. It is persisted as JSON by the store; zero times mean "not set".
type KeyRecord struct {
	// ID is the public key id (16 lower-case base32 characters), the lookup
	// key; it appears in the key right after "stoa_sk_".
	ID string `json:"id"`
	// Prefix is "stoa_sk_<id>", what `stoa keys list` shows.
	Prefix string `json:"prefix"`
	// Hash is the SHA-256 of the whole key.
	Hash KeyHash `json:"hash"`
	// Tenant owns the key.
	Tenant string `json:"tenant"`
	// Consumer is the application the key belongs to.
	Consumer string `json:"consumer"`
	// ConsumerUID is the identity of the Consumer object the key was made
	// for, assigned by stoad when the Consumer was created: a Consumer
	// deleted and created again under the same name has another UID, and
	// none of the old one's keys.
	ConsumerUID string `json:"consumerUid,omitempty"`
	// Name is an optional human label.
	Name string `json:"name,omitempty"`
	// CreatedAt is when the key was generated.
	CreatedAt time.Time `json:"createdAt"`
	// ExpiresAt, if set, is when the key stops working.
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
	// RevokedAt, if set, is when the key was (or will be) revoked.
	RevokedAt time.Time `json:"revokedAt,omitzero"`
	// RevokedBy and RevokedReason say who revoked the key and why (an
	// operator's request, or the deletion of its consumer).
	RevokedBy     string `json:"revokedBy,omitempty"`
	RevokedReason string `json:"revokedReason,omitempty"`
	// NotAfter, if set, ends the grace period of a key that was rotated:
	// it keeps working until then so clients can switch over.
	NotAfter time.Time `json:"notAfter,omitzero"`
	// RotatedTo is the id of the key that replaced this one.
	RotatedTo string `json:"rotatedTo,omitempty"`
	// LastUsedAt is when the key last authenticated a request, to the
	// second, as last flushed by the store from KeyIndex.RangeUsage.
	LastUsedAt time.Time `json:"lastUsedAt,omitzero"`
}

// KeyState is the lifecycle state of a record at a given time.
type KeyState string

// The key states.
const (
	KeyActive  KeyState = "active"
	KeyGrace   KeyState = "grace" // rotated, still accepted until NotAfter
	KeyRotated KeyState = "rotated"
	KeyExpired KeyState = "expired"
	KeyRevoked KeyState = "revoked"
)

// State reports r's lifecycle state at now, in the order Lookup checks it.
func (r *KeyRecord) State(now time.Time) KeyState {
	switch {
	case !r.RevokedAt.IsZero() && !now.Before(r.RevokedAt):
		return KeyRevoked
	case !r.ExpiresAt.IsZero() && !now.Before(r.ExpiresAt):
		return KeyExpired
	case !r.NotAfter.IsZero() && !now.Before(r.NotAfter):
		return KeyRotated
	case !r.NotAfter.IsZero() || r.RotatedTo != "":
		return KeyGrace
	}
	return KeyActive
}

// KeyIndex is an immutable snapshot of API keys, indexed by public id. Build
// a new one when keys change and swap it in atomically (Authenticator does).
// A nil *KeyIndex knows no keys.
type KeyIndex struct {
	byID map[string]*keyEntry
}

type keyEntry struct {
	rec       KeyRecord
	principal Principal
	// Deadlines as Unix nanoseconds; 0 means none.
	revoked, expires, notAfter int64
	// lastUsed is a Unix second, written at most once a second per key.
	lastUsed atomic.Int64
	// verified is the SipHash-128 (under verifiedKey) of the key whose
	// SHA-256 matched rec.Hash, set by the first successful lookup. Later
	// lookups of that key compare it instead of hashing with SHA-256 (5k
	// instructions, the largest single cost of a proxied request).
	verified atomic.Pointer[[2]uint64]
}

// verifiedKey keys the SipHash of verified keys: random per process, so
// that nobody can compute a key's tag, nor make another string collide
// with it (SipHash is a PRF under a secret key; a 128-bit tag leaves a
// guess 2^-128). Like the SHA-256 the index holds, a tag reveals nothing
// of the 256-bit secret in the key.
var verifiedKey = func() sipKey {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand crashes instead)
	return sipKey{binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])}
}()

// NewKeyIndex builds an index from records. Records are copied. Every
// record needs a valid id, a hash, a tenant and a consumer; ids must be
// unique.
func NewKeyIndex(records []KeyRecord) (*KeyIndex, error) {
	ix := &KeyIndex{byID: make(map[string]*keyEntry, len(records))}
	for i := range records {
		r := records[i]
		if len(r.ID) != keyIDLen || !allIn(r.ID, &keyAlphabet) {
			return nil, fmt.Errorf("build key index: record %d: invalid key id %q", i, r.ID)
		}
		if r.Hash.IsZero() || r.Tenant == "" || r.Consumer == "" {
			return nil, fmt.Errorf("build key index: key %s: hash, tenant and consumer are required", r.ID)
		}
		if _, dup := ix.byID[r.ID]; dup {
			return nil, fmt.Errorf("build key index: duplicate key id %s", r.ID)
		}
		if r.Prefix == "" {
			r.Prefix = KeyPrefix + r.ID
		}
		e := &keyEntry{
			rec:      r,
			revoked:  unixNano(r.RevokedAt),
			expires:  unixNano(r.ExpiresAt),
			notAfter: unixNano(r.NotAfter),
		}
		e.principal = Principal{
			Method:   MethodAPIKey,
			Tenant:   r.Tenant,
			Consumer: r.Consumer,
			KeyID:    r.ID,
		}
		if !r.LastUsedAt.IsZero() {
			e.lastUsed.Store(r.LastUsedAt.Unix())
		}
		ix.byID[r.ID] = e
	}
	return ix, nil
}

// Len is the number of keys in the index.
func (ix *KeyIndex) Len() int {
	if ix == nil {
		return 0
	}
	return len(ix.byID)
}

// Lookup authenticates the raw API key (as taken from the request header)
// at now and returns its record, which callers must not modify. It does not
// allocate, but once per key (its verified tag, on its first success). Errors: ErrKeyMalformed, ErrKeyUnknown, ErrKeyMismatch,
// ErrKeyRevoked, ErrKeyExpired, ErrKeyRotated — all of them 401 for the
// client.
func (ix *KeyIndex) Lookup(raw []byte, now time.Time) (*KeyRecord, error) {
	e, err := ix.lookup(raw, now)
	if err != nil {
		return nil, err
	}
	return &e.rec, nil
}

// Authenticate is Lookup returning the key's Principal (shared, read-only).
func (ix *KeyIndex) Authenticate(raw []byte, now time.Time) (*Principal, error) {
	e, err := ix.lookup(raw, now)
	if err != nil {
		return nil, err
	}
	return &e.principal, nil
}

func (ix *KeyIndex) lookup(raw []byte, now time.Time) (*keyEntry, error) {
	if e := ix.verifiedEntry(raw); e != nil {
		return e.live(now)
	}
	id, ok := ParseKeyID(raw)
	if !ok {
		return nil, ErrKeyMalformed
	}
	if ix == nil {
		return nil, ErrKeyUnknown
	}
	// The id is public, so finding it by map lookup leaks nothing; the
	// secret is checked by comparing hashes in constant time.
	e := ix.byID[string(id)]
	if e == nil {
		return nil, ErrKeyUnknown
	}
	sum := sha256.Sum256(raw)
	if subtle.ConstantTimeCompare(sum[:], e.rec.Hash[:]) != 1 {
		return nil, ErrKeyMismatch
	}
	if e.verified.Load() == nil {
		h0, h1 := sipHash128(verifiedKey, raw)
		e.verified.Store(&[2]uint64{h0, h1})
	}
	return e.live(now)
}

// verifiedEntry returns the entry of raw when raw is the key a previous
// lookup verified by its SHA-256 (the tags compared in constant time),
// and nil otherwise: a key never seen, another string with the same id,
// anything malformed (the full lookup then decides).
func (ix *KeyIndex) verifiedEntry(raw []byte) *keyEntry {
	if ix == nil || len(raw) != KeyLen || raw[keyIDEnd] != '_' {
		return nil
	}
	e := ix.byID[string(raw[keyIDStart:keyIDEnd])]
	if e == nil {
		return nil
	}
	v := e.verified.Load()
	if v == nil {
		return nil
	}
	h0, h1 := sipHash128(verifiedKey, raw)
	if (h0^v[0])|(h1^v[1]) != 0 {
		return nil
	}
	return e
}

// live checks e's lifecycle at now and records its use. Lifecycle is
// checked only once the secret matched, so key states are revealed (even
// in logs) only to holders of the key.
func (e *keyEntry) live(now time.Time) (*keyEntry, error) {
	t := now.UnixNano()
	switch {
	case e.revoked != 0 && t >= e.revoked:
		return nil, ErrKeyRevoked
	case e.expires != 0 && t >= e.expires:
		return nil, ErrKeyExpired
	case e.notAfter != 0 && t >= e.notAfter:
		return nil, ErrKeyRotated
	}
	// Record use at most once a second per key, to keep the hot path free
	// of contended writes.
	if s := now.Unix(); e.lastUsed.Load() < s {
		e.lastUsed.Store(s)
	}
	return e, nil
}

// RangeUsage calls fn with every key's last-used time (zero if never used),
// for the store to persist periodically. Stop by returning false.
func (ix *KeyIndex) RangeUsage(fn func(id string, lastUsed time.Time) bool) {
	if ix == nil {
		return
	}
	for id, e := range ix.byID {
		var t time.Time
		if s := e.lastUsed.Load(); s != 0 {
			t = time.Unix(s, 0).UTC()
		}
		if !fn(id, t) {
			return
		}
	}
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func allIn(s string, set *[256]bool) bool {
	for i := 0; i < len(s); i++ {
		if !set[s[i]] {
			return false
		}
	}
	return true
}
