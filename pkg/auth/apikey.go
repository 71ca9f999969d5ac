package auth

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"time"
)

// API key layout: "stoa_sk_" + id + "_" + secret + checksum, where id is 10
// random bytes and secret 32 random bytes, both in unpadded lower-case
// base32, and checksum is the CRC-32 (IEEE) of everything before it, as 7
// base32 characters. The fixed prefix lets secret scanners find leaked keys
// and the checksum lets them (and us) reject look-alikes without a lookup.
const (
	// KeyPrefix starts every API key.
	KeyPrefix = "stoa_sk_"

	keyIDBytes     = 10
	keySecretBytes = 32
	keyIDLen       = 16 // base32 of 10 bytes
	keySecretLen   = 52 // base32 of 32 bytes
	keyCRCLen      = 7  // base32 of 4 bytes
	keyIDStart     = len(KeyPrefix)
	keyIDEnd       = keyIDStart + keyIDLen
	keySecretStart = keyIDEnd + 1
	keyCRCStart    = keySecretStart + keySecretLen
	// KeyLen is the length of every API key.
	KeyLen = keyCRCStart + keyCRCLen
)

var keyEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

var keyPrefixBytes = []byte(KeyPrefix)

// KeyHash is the SHA-256 of a whole API key. It is the only form in which
// a key is stored. In JSON it reads "sha256:<hex>".
type KeyHash [sha256.Size]byte

// HashKey returns the stored form of raw.
func HashKey(raw []byte) KeyHash { return sha256.Sum256(raw) }

// String renders h as "sha256:<hex>".
func (h KeyHash) String() string { return "sha256:" + hex.EncodeToString(h[:]) }

// IsZero reports whether h is unset.
func (h KeyHash) IsZero() bool { return h == KeyHash{} }

// MarshalText implements encoding.TextMarshaler.
func (h KeyHash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (h *KeyHash) UnmarshalText(b []byte) error {
	s, ok := strings.CutPrefix(string(b), "sha256:")
	if !ok || hex.DecodedLen(len(s)) != len(h) {
		return errors.New("parse key hash: want sha256:<64 hex digits>")
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return fmt.Errorf("parse key hash: %w", err)
	}
	return nil
}

// KeyOptions describe a new API key.
type KeyOptions struct {
	// Tenant owning the key (required).
	Tenant string
	// Consumer the key belongs to (required).
	Consumer string
	// ConsumerUID is the identity of that Consumer object (see
	// KeyRecord.ConsumerUID).
	ConsumerUID string
	// Name is an optional human label ("ci", "laptop").
	Name string
	// Now is the creation time; zero means time.Now().
	Now time.Time
	// TTL, when positive, sets ExpiresAt = Now + TTL.
	TTL time.Duration
}

// GenerateKey creates a new API key from crypto/rand. It returns the key,
// which must be shown to the user once and never stored or logged, and the
// record to persist.
func GenerateKey(o KeyOptions) (string, KeyRecord, error) {
	if o.Tenant == "" || o.Consumer == "" {
		return "", KeyRecord{}, errors.New("generate api key: tenant and consumer are required")
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	now = now.UTC()
	var rnd [keyIDBytes + keySecretBytes]byte
	// crypto/rand.Read never fails (it crashes the program instead).
	_, _ = rand.Read(rnd[:])

	buf := make([]byte, KeyLen)
	copy(buf, KeyPrefix)
	keyEncoding.Encode(buf[keyIDStart:keyIDEnd], rnd[:keyIDBytes])
	buf[keyIDEnd] = '_'
	keyEncoding.Encode(buf[keySecretStart:keyCRCStart], rnd[keyIDBytes:])
	putKeyChecksum(buf[keyCRCStart:], buf[:keyCRCStart])
	clear(rnd[:])

	id := string(buf[keyIDStart:keyIDEnd])
	rec := KeyRecord{
		ID:          id,
		Prefix:      KeyPrefix + id,
		Hash:        HashKey(buf),
		Tenant:      o.Tenant,
		Consumer:    o.Consumer,
		ConsumerUID: o.ConsumerUID,
		Name:        o.Name,
		CreatedAt:   now,
	}
	if o.TTL > 0 {
		rec.ExpiresAt = now.Add(o.TTL)
	}
	return string(buf), rec, nil
}

// RotateKey creates the successor of old (same tenant, consumer, consumer
// UID and name; o.Tenant and o.Consumer may be left empty) and returns it
// with old's updated record: old stays valid until now+grace (its
// NotAfter) and records the successor's id. A zero grace ends old at once.
func RotateKey(old KeyRecord, grace time.Duration, o KeyOptions) (key string, next, prev KeyRecord, err error) {
	if !old.RevokedAt.IsZero() {
		return "", KeyRecord{}, KeyRecord{}, fmt.Errorf("rotate api key %s: key is revoked", old.ID)
	}
	if o.Tenant == "" {
		o.Tenant = old.Tenant
	}
	if o.Consumer == "" {
		o.Consumer, o.ConsumerUID = old.Consumer, old.ConsumerUID
	}
	if o.Name == "" {
		o.Name = old.Name
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	key, next, err = GenerateKey(o)
	if err != nil {
		return "", KeyRecord{}, KeyRecord{}, fmt.Errorf("rotate api key %s: %w", old.ID, err)
	}
	prev = old
	prev.RotatedTo = next.ID
	end := next.CreatedAt.Add(max(grace, 0))
	if prev.NotAfter.IsZero() || end.Before(prev.NotAfter) {
		prev.NotAfter = end
	}
	return key, next, prev, nil
}

// ParseKeyID returns the public id of a well-formed API key (prefix,
// length, alphabet and checksum are checked). It returns a sub-slice of raw
// and does not allocate.
func ParseKeyID(raw []byte) ([]byte, bool) {
	if len(raw) != KeyLen || !bytes.HasPrefix(raw, keyPrefixBytes) || raw[keyIDEnd] != '_' {
		return nil, false
	}
	for _, c := range raw[keyIDStart:keyIDEnd] {
		if !keyAlphabet[c] {
			return nil, false
		}
	}
	for _, c := range raw[keySecretStart:] {
		if !keyAlphabet[c] {
			return nil, false
		}
	}
	var sum [keyCRCLen]byte
	putKeyChecksum(sum[:], raw[:keyCRCStart])
	if !bytes.Equal(sum[:], raw[keyCRCStart:]) {
		return nil, false
	}
	return raw[keyIDStart:keyIDEnd], true
}

// KeyDisplayPrefix returns "stoa_sk_<id>" for a well-formed key, the only
// part of a key that may be logged or shown, and "" otherwise.
func KeyDisplayPrefix(raw []byte) string {
	id, ok := ParseKeyID(raw)
	if !ok {
		return ""
	}
	return KeyPrefix + string(id)
}

// hasKeyPrefix reports whether b looks like an API key rather than a token.
func hasKeyPrefix(b []byte) bool { return bytes.HasPrefix(b, keyPrefixBytes) }

func putKeyChecksum(dst, body []byte) {
	var c [4]byte
	binary.BigEndian.PutUint32(c[:], crc32.ChecksumIEEE(body))
	keyEncoding.Encode(dst[:keyCRCLen], c[:])
}

var keyAlphabet = func() (t [256]bool) {
	for _, c := range "abcdefghijklmnopqrstuvwxyz234567" {
		t[c] = true
	}
	return t
}()
