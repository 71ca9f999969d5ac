package controlplane

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/fleet"
	"github.com/stoa-gateway/stoa/pkg/store"
)

// TokenPrefix starts every join token, so that secret scanners (and
// people) recognise one.
const TokenPrefix = "stoajoin_"

// Token lifetimes.
const (
	DefaultTokenTTL = time.Hour
	MaxTokenTTL     = 7 * 24 * time.Hour
	// retryWindow is how long after its use a token still admits the
	// same key again: a data plane whose join answer was lost retries
	// with the key it sent, and gets a certificate instead of a dead end.
	retryWindow = 10 * time.Minute
	// tokenRetention is how long used and expired tokens stay listed.
	tokenRetention = 24 * time.Hour
)

const tokenKeyPrefix = "token/"

// tokenRecord is a stored join token; the secret itself is never stored,
// only its SHA-256 (the key), which is enough for a 256-bit random
// secret.
type tokenRecord struct {
	Name      string    `json:"name,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	ExpiresAt time.Time `json:"expiresAt"`
	CreatedBy string    `json:"createdBy,omitempty"`
	UsedAt    time.Time `json:"usedAt,omitzero"`
	UsedBy    string    `json:"usedBy,omitempty"`
	// UsedKey is the hash of the public key the token admitted.
	UsedKey string `json:"usedKey,omitempty"`
}

func (r tokenRecord) info(hash string, now time.Time) fleet.JoinToken {
	t := fleet.JoinToken{ID: hash[:12], Name: r.Name, CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt,
		CreatedBy: r.CreatedBy, UsedAt: r.UsedAt, UsedBy: r.UsedBy, State: fleet.TokenActive}
	switch {
	case !r.UsedAt.IsZero():
		t.State = fleet.TokenUsed
	case !now.Before(r.ExpiresAt):
		t.State = fleet.TokenExpired
	}
	return t
}

func hashToken(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// Tokens are the join tokens of one control plane, in the store's Meta
// domain (namespace fleet), so that every replica sharing the store
// accepts every token, once.
type Tokens struct {
	st  store.Store
	now func() time.Time
}

// NewTokens returns the join tokens kept in st.
func NewTokens(st store.Store, now func() time.Time) *Tokens {
	if now == nil {
		now = time.Now
	}
	return &Tokens{st: st, now: now}
}

// CreateTokenOptions shape a new join token.
type CreateTokenOptions struct {
	// Name, when set, is the only data plane name the token admits.
	Name string
	// TTL is how long it may be used (default 1h, at most 7 days).
	TTL time.Duration
	// CreatedBy is the actor, for listings.
	CreatedBy string
}

// Create makes a join token, for `stoa fleet join-token create [--name N]
// [--ttl 1h]`. The returned secret is shown once and never again.
func (t *Tokens) Create(ctx context.Context, o CreateTokenOptions) (fleet.NewJoinToken, error) {
	if o.Name != "" {
		if err := fleet.CheckName(o.Name); err != nil {
			return fleet.NewJoinToken{}, &api.Error{Code: api.CodeInvalid, Message: "create join token: " + err.Error(), Hint: "name the data plane like a host: --name edge-1"}
		}
	}
	switch {
	case o.TTL == 0:
		o.TTL = DefaultTokenTTL
	case o.TTL < time.Minute || o.TTL > MaxTokenTTL:
		return fleet.NewJoinToken{}, &api.Error{Code: api.CodeInvalid, Message: fmt.Sprintf("create join token: --ttl %s is out of range", o.TTL), Hint: "a join token lives from 1m to 168h (7 days); make one when the data plane is about to join"}
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return fleet.NewJoinToken{}, fmt.Errorf("create join token: %w", err)
	}
	secret := TokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	hash := hashToken(secret)
	now := t.now().UTC()
	rec := tokenRecord{Name: o.Name, CreatedAt: now, ExpiresAt: now.Add(o.TTL), CreatedBy: o.CreatedBy}
	b, err := json.Marshal(rec)
	if err != nil {
		return fleet.NewJoinToken{}, err
	}
	err = t.st.Update(ctx, func(tx store.Tx) error {
		if err := t.gc(ctx, tx.Meta(), now); err != nil {
			return err
		}
		return tx.Meta().Put(ctx, store.MetaFleet, tokenKeyPrefix+hash, b)
	})
	if err != nil {
		return fleet.NewJoinToken{}, fmt.Errorf("create join token: %w", err)
	}
	return fleet.NewJoinToken{JoinToken: rec.info(hash, now), Token: secret}, nil
}

// gc drops tokens used or expired longer than tokenRetention ago.
func (t *Tokens) gc(ctx context.Context, m store.Meta, now time.Time) error {
	var drop []string
	err := m.List(ctx, store.MetaFleet, func(k string, v []byte) error {
		if !strings.HasPrefix(k, tokenKeyPrefix) {
			return nil
		}
		var r tokenRecord
		if json.Unmarshal(v, &r) != nil {
			drop = append(drop, k)
			return nil
		}
		end := r.ExpiresAt
		if !r.UsedAt.IsZero() {
			end = r.UsedAt
		}
		if now.Sub(end) > tokenRetention {
			drop = append(drop, k)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range drop {
		if err := m.Delete(ctx, store.MetaFleet, k); err != nil {
			return err
		}
	}
	return nil
}

// List returns every token still kept (active, and used or expired within
// the last day), newest first.
func (t *Tokens) List(ctx context.Context) ([]fleet.JoinToken, error) {
	now := t.now().UTC()
	out := []fleet.JoinToken{}
	err := t.st.View(ctx, func(tx store.Tx) error {
		return tx.Meta().List(ctx, store.MetaFleet, func(k string, v []byte) error {
			hash, ok := strings.CutPrefix(k, tokenKeyPrefix)
			if !ok {
				return nil
			}
			var r tokenRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("%w: join token %s: %v", store.ErrCorrupt, hash[:12], err)
			}
			out = append(out, r.info(hash, now))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list join tokens: %w", err)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.After(out[j].CreatedAt) })
	return out, nil
}

// Revoke deletes the token whose ID (or a unique prefix of it, at least
// six hex digits) is id.
func (t *Tokens) Revoke(ctx context.Context, id string) error {
	id = strings.ToLower(strings.TrimSpace(id))
	if len(id) < 6 || strings.Trim(id, "0123456789abcdef") != "" {
		return &api.Error{Code: api.CodeInvalid, Message: fmt.Sprintf("revoke join token: %q is not a token ID", id), Hint: "give the ID that stoa fleet join-token list shows (at least 6 hex digits)"}
	}
	return t.st.Update(ctx, func(tx store.Tx) error {
		var match []string
		err := tx.Meta().List(ctx, store.MetaFleet, func(k string, _ []byte) error {
			if strings.HasPrefix(k, tokenKeyPrefix+id) {
				match = append(match, k)
			}
			return nil
		})
		if err != nil {
			return err
		}
		switch len(match) {
		case 0:
			return &api.Error{Code: api.CodeNotFound, Message: fmt.Sprintf("revoke join token: no token %s", id), Hint: "list the tokens: stoa fleet join-token list"}
		case 1:
			return tx.Meta().Delete(ctx, store.MetaFleet, match[0])
		default:
			return &api.Error{Code: api.CodeInvalid, Message: fmt.Sprintf("revoke join token: %q matches %d tokens", id, len(match)), Hint: "give more of the ID"}
		}
	})
}

// consume spends a token inside the join's transaction, so that two
// joins with one token cannot both succeed: the store serialises them,
// and the second sees the first's mark. It returns the token's record
// and whether this is a retry: keyHash is the joining key, which may
// spend the token again within retryWindow (a join whose answer was
// lost). name is the data plane's name, "" if it gave none. dryRun
// checks without spending.
func consume(ctx context.Context, m store.Meta, secret, keyHash, name string, now time.Time, dryRun bool) (tokenRecord, bool, error) {
	unauth := func(msg, hint string) error {
		return &api.Error{Code: api.CodeUnauthorized, Message: "join: " + msg, Hint: hint}
	}
	const newToken = "ask the control plane's operator for a new one: stoa fleet join-token create --name NAME"
	if !strings.HasPrefix(secret, TokenPrefix) {
		return tokenRecord{}, false, unauth("the join token is not one (it starts with "+TokenPrefix+")", "pass the token stoa fleet join-token create printed, whole")
	}
	key := tokenKeyPrefix + hashToken(secret)
	v, err := m.Get(ctx, store.MetaFleet, key)
	if errors.Is(err, store.ErrNotFound) {
		return tokenRecord{}, false, unauth("the join token is not known to this control plane (revoked, or used and expired more than a day ago)", newToken)
	} else if err != nil {
		return tokenRecord{}, false, err
	}
	var r tokenRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return tokenRecord{}, false, fmt.Errorf("%w: join token: %v", store.ErrCorrupt, err)
	}
	if name == "" {
		name = r.Name
	}
	if !r.UsedAt.IsZero() {
		if r.UsedKey == keyHash && r.UsedBy == name && now.Sub(r.UsedAt) < retryWindow {
			return r, true, nil
		}
		return tokenRecord{}, false, unauth(fmt.Sprintf("the join token was already used, by data plane %q at %s; a join token admits one data plane once", r.UsedBy, r.UsedAt.Format(time.RFC3339)), newToken)
	}
	if !now.Before(r.ExpiresAt) {
		return tokenRecord{}, false, unauth(fmt.Sprintf("the join token expired at %s", r.ExpiresAt.Format(time.RFC3339)), newToken)
	}
	if name == "" {
		return tokenRecord{}, false, &api.Error{Code: api.CodeInvalid, Message: "join: the data plane has no name and the join token names none; the token was not spent",
			Hint: "start the data plane with --name NAME, or make a token for a name: stoa fleet join-token create --name NAME"}
	}
	if r.Name != "" && r.Name != name {
		return tokenRecord{}, false, &api.Error{Code: api.CodeForbidden, Message: fmt.Sprintf("join: the join token admits only data plane %q, not %q; the token was not spent", r.Name, name), Hint: fmt.Sprintf("start the data plane with --name %s, or use a token made for %s", r.Name, name)}
	}
	if dryRun {
		return r, false, nil
	}
	r.UsedAt, r.UsedBy, r.UsedKey = now, name, keyHash
	b, err := json.Marshal(r)
	if err != nil {
		return tokenRecord{}, false, err
	}
	return r, false, m.Put(ctx, store.MetaFleet, key, b)
}

// checkToken runs consume's checks in a read-only transaction, so that
// a join with a bad token (anyone can send one) costs a read, not a
// write transaction that would queue behind applies. It returns the
// token's record.
func checkToken(ctx context.Context, st store.Store, secret, keyHash, name string, now time.Time) (tokenRecord, error) {
	var rec tokenRecord
	err := st.View(ctx, func(tx store.Tx) error {
		var err error
		rec, _, err = consume(ctx, tx.Meta(), secret, keyHash, name, now, true)
		return err
	})
	return rec, err
}
