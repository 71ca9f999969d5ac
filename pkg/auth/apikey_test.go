package auth

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

func newKey(t *testing.T, o KeyOptions) (string, KeyRecord) {
	t.Helper()
	if o.Tenant == "" {
		o.Tenant, o.Consumer = "acme", "billing-app"
	}
	if o.Now.IsZero() {
		o.Now = t0
	}
	k, rec, err := GenerateKey(o)
	if err != nil {
		t.Fatal(err)
	}
	return k, rec
}

func TestGenerateKeyFormat(t *testing.T) {
	k, rec := newKey(t, KeyOptions{Name: "ci", TTL: time.Hour})
	if !regexp.MustCompile(`^stoa_sk_[a-z2-7]{16}_[a-z2-7]{59}$`).MatchString(k) || len(k) != KeyLen {
		t.Fatalf("key %q has the wrong shape", k)
	}
	id, ok := ParseKeyID([]byte(k))
	if !ok || string(id) != rec.ID || rec.Prefix != KeyPrefix+rec.ID || KeyDisplayPrefix([]byte(k)) != rec.Prefix {
		t.Fatalf("id %q ok %v record %+v", id, ok, rec)
	}
	if rec.Hash != HashKey([]byte(k)) || !rec.ExpiresAt.Equal(t0.Add(time.Hour)) || rec.Name != "ci" {
		t.Fatalf("record %+v", rec)
	}
	k2, rec2 := newKey(t, KeyOptions{})
	if k2 == k || rec2.ID == rec.ID {
		t.Fatal("two keys alike")
	}
	if _, _, err := GenerateKey(KeyOptions{Tenant: "acme"}); err == nil {
		t.Error("key without consumer generated")
	}
	// Every single-character change is caught by the checksum (or the
	// alphabet) without a lookup.
	for i := len(KeyPrefix); i < len(k); i++ {
		b := []byte(k)
		if b[i] == '_' {
			continue
		}
		b[i] = 'a' + (b[i]-'a'+1)%26
		if _, ok := ParseKeyID(b); ok {
			t.Errorf("changed byte %d accepted", i)
		}
	}
	for _, bad := range []string{"", "stoa_sk_", k[:len(k)-1], k + "a", strings.ToUpper(k), "sk_" + k[len(KeyPrefix):]} {
		if _, ok := ParseKeyID([]byte(bad)); ok || KeyDisplayPrefix([]byte(bad)) != "" {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestKeyRecordJSON(t *testing.T) {
	_, rec := newKey(t, KeyOptions{})
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"hash":"sha256:`) || strings.Contains(string(b), "expiresAt") {
		t.Errorf("json %s", b)
	}
	var back KeyRecord
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Hash != rec.Hash || back.ID != rec.ID || !back.CreatedAt.Equal(rec.CreatedAt) {
		t.Errorf("round trip: %+v", back)
	}
	for _, bad := range []string{`"md5:00"`, `"sha256:zz"`, `"sha256:00"`} {
		var h KeyHash
		if err := json.Unmarshal([]byte(bad), &h); err == nil {
			t.Errorf("hash %s accepted", bad)
		}
	}
}

// forgeSameID returns a well-formed key with k's id but another secret.
func forgeSameID(t *testing.T, k string) string {
	t.Helper()
	other, _ := newKey(t, KeyOptions{})
	b := []byte(k[:keySecretStart] + other[keySecretStart:keyCRCStart] + "aaaaaaa")
	putKeyChecksum(b[keyCRCStart:], b[:keyCRCStart])
	if _, ok := ParseKeyID(b); !ok {
		t.Fatal("forged key malformed")
	}
	return string(b)
}

func TestKeyLifecycle(t *testing.T) {
	active, activeRec := newKey(t, KeyOptions{})
	expiring, expiringRec := newKey(t, KeyOptions{TTL: time.Hour})
	revoked, revokedRec := newKey(t, KeyOptions{})
	revokedRec.RevokedAt = t0.Add(time.Minute) // scheduled revocation
	old, oldRec := newKey(t, KeyOptions{})
	next, nextRec, oldRec, err := RotateKey(oldRec, 24*time.Hour, KeyOptions{Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	if oldRec.RotatedTo != nextRec.ID || !oldRec.NotAfter.Equal(t0.Add(24*time.Hour)) || nextRec.Consumer != "billing-app" {
		t.Fatalf("rotation records: old %+v next %+v", oldRec, nextRec)
	}
	if _, _, _, err := RotateKey(revokedRec, time.Hour, KeyOptions{}); err == nil {
		t.Error("revoked key rotated")
	}
	unknown, _ := newKey(t, KeyOptions{})

	ix, err := NewKeyIndex([]KeyRecord{activeRec, expiringRec, revokedRec, oldRec, nextRec})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		key   string
		now   time.Time
		want  error
		state KeyState
	}{
		{"active", active, t0, nil, KeyActive},
		{"before expiry", expiring, t0.Add(59 * time.Minute), nil, KeyActive},
		{"expired", expiring, t0.Add(time.Hour), ErrKeyExpired, KeyExpired},
		{"before scheduled revocation", revoked, t0, nil, KeyActive},
		{"revoked", revoked, t0.Add(time.Minute), ErrKeyRevoked, KeyRevoked},
		{"rotated, in grace", old, t0.Add(23 * time.Hour), nil, KeyGrace},
		{"rotated, grace over", old, t0.Add(24 * time.Hour), ErrKeyRotated, KeyRotated},
		{"successor", next, t0.Add(48 * time.Hour), nil, KeyActive},
		{"unknown id", unknown, t0, ErrKeyUnknown, ""},
		{"same id, wrong secret", forgeSameID(t, active), t0, ErrKeyMismatch, ""},
		{"wrong secret of revoked key reveals nothing", forgeSameID(t, revoked), t0.Add(time.Hour), ErrKeyMismatch, ""},
		{"malformed", "stoa_sk_nope", t0, ErrKeyMalformed, ""},
		{"jwt in api key header", "eyJhbGciOi.eyJzdWIi.c2ln", t0, ErrKeyMalformed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, err := ix.Lookup([]byte(tt.key), tt.now)
			wantErr(t, err, tt.want)
			if err != nil {
				if HTTPStatus(err) != http.StatusUnauthorized || Challenge(err, "") != `Bearer error="invalid_token"` {
					t.Errorf("client sees %d %q", HTTPStatus(err), Challenge(err, ""))
				}
				if strings.Contains(err.Error(), tt.key) {
					t.Error("error text contains the key")
				}
				return
			}
			if rec.Tenant != "acme" || rec.State(tt.now) != tt.state {
				t.Errorf("record %+v state %s", rec, rec.State(tt.now))
			}
			p, err := ix.Authenticate([]byte(tt.key), tt.now)
			if err != nil || p.Method != MethodAPIKey || p.KeyID != rec.ID || p.Consumer != "billing-app" || !p.CanAccess("acme") || p.CanAccess("globex") {
				t.Errorf("principal %+v %v", p, err)
			}
		})
	}
	var nilIx *KeyIndex
	if _, err := nilIx.Lookup([]byte(active), t0); err != ErrKeyUnknown {
		t.Errorf("nil index: %v", err)
	}
}

func TestKeyIndexUsage(t *testing.T) {
	k, rec := newKey(t, KeyOptions{})
	ix, err := NewKeyIndex([]KeyRecord{rec})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ix.Lookup([]byte(k), t0.Add(1500*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	var got time.Time
	ix.RangeUsage(func(id string, last time.Time) bool { got = last; return true })
	if !got.Equal(t0.Add(time.Second)) {
		t.Errorf("last used %v", got)
	}
	rec.LastUsedAt = got
	ix2, _ := NewKeyIndex([]KeyRecord{rec})
	ix2.RangeUsage(func(id string, last time.Time) bool { got = last; return true })
	if !got.Equal(t0.Add(time.Second)) {
		t.Errorf("last used not carried into a new index: %v", got)
	}
}

func TestNewKeyIndexErrors(t *testing.T) {
	_, rec := newKey(t, KeyOptions{})
	noHash := rec
	noHash.Hash = KeyHash{}
	badID := rec
	badID.ID = "UPPER"
	for name, recs := range map[string][]KeyRecord{
		"duplicate": {rec, rec},
		"no hash":   {noHash},
		"bad id":    {badID},
	} {
		if _, err := NewKeyIndex(recs); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
