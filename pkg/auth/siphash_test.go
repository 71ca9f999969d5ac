package auth

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"testing"
	"time"
)

// TestSipHash128Vectors checks sipHash128 against vectors_sip128 of the
// SipHash reference implementation (veorq/SipHash, vectors.h): key
// 00 01 .. 0f, message 00 01 .. len-1.
func TestSipHash128Vectors(t *testing.T) {
	vectors := map[int]string{
		0:  "a3817f04ba25a8e66df67214c7550293",
		1:  "da87c1d86b99af44347659119b22fc45",
		7:  "a1f1ebbed8dbc153c0b84aa61ff08239",
		8:  "3b62a9ba6258f5610f83e264f31497b4",
		15: "5493e99933b0a8117e08ec0f97cfc3d9",
		16: "6ee2a4ca67b054bbfd3315bf85230577",
		17: "473d06e8738db89854c066c47ae47740",
		31: "2939b0183223fafc1723de4f52c43d35",
		63: "5150d1772f50834a503e069a973fbd7c",
	}
	var kb [16]byte
	msg := make([]byte, 64)
	for i := range kb {
		kb[i] = byte(i)
	}
	for i := range msg {
		msg[i] = byte(i)
	}
	k := sipKey{binary.LittleEndian.Uint64(kb[:8]), binary.LittleEndian.Uint64(kb[8:])}
	for n, want := range vectors {
		h0, h1 := sipHash128(k, msg[:n])
		var out [16]byte
		binary.LittleEndian.PutUint64(out[:8], h0)
		binary.LittleEndian.PutUint64(out[8:], h1)
		if got := hex.EncodeToString(out[:]); got != want {
			t.Errorf("len %d: got %s, want %s", n, got, want)
		}
	}
}

// TestVerifiedKeyFastPath: once a key has been verified by its SHA-256,
// the index recognises it by its SipHash tag; everything else still takes
// (and fails) the full check, and lifecycle is checked on every lookup.
func TestVerifiedKeyFastPath(t *testing.T) {
	key, rec := newKey(t, KeyOptions{TTL: time.Hour})
	ix, err := NewKeyIndex([]KeyRecord{rec})
	if err != nil {
		t.Fatal(err)
	}
	e := ix.byID[rec.ID]
	if ix.verifiedEntry([]byte(key)) != nil || e.verified.Load() != nil {
		t.Fatal("a key nobody presented is verified")
	}
	var a Authenticator
	a.SetKeys(ix)
	if _, err := a.Authenticate(context.Background(), nil, []byte(key), t0); err != nil {
		t.Fatal(err)
	}
	if ix.verifiedEntry([]byte(key)) != e {
		t.Fatal("a verified key is not recognised")
	}
	flipped := []byte(key)
	// Same id, same length, another character of the key alphabet (a bit
	// flip could leave it, which is a different refusal): only the tag
	// tells.
	if flipped[keySecretStart] == 'a' {
		flipped[keySecretStart] = 'b'
	} else {
		flipped[keySecretStart] = 'a'
	}
	for _, tt := range []struct {
		name  string
		authz string
		key   string
		now   time.Time
		want  error
	}{
		{"verified", "", key, t0, nil},
		{"verified, with whitespace", "", " \t" + key + " ", t0, nil},
		{"verified, as a bearer", "Bearer " + key, "", t0, nil},
		{"same id, wrong secret", "", forgeSameID(t, key), t0, ErrKeyMismatch},
		{"same id, one byte changed", "", string(flipped), t0, ErrKeyMalformed},
		{"verified, then expired", "", key, t0.Add(time.Hour), ErrKeyExpired},
		{"verified and a bearer token", "Bearer x.y.z", key, t0, ErrAmbiguousCredential},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := a.Authenticate(context.Background(), []byte(tt.authz), []byte(tt.key), tt.now)
			wantErr(t, err, tt.want)
			if err == nil && (p.KeyID != rec.ID || p.Tenant != "acme") {
				t.Errorf("principal %+v", p)
			}
		})
	}
	// A new index (a revocation, or any key change) trusts no tag of the
	// old one.
	rec.RevokedAt = t0
	ix2, err := NewKeyIndex([]KeyRecord{rec})
	if err != nil {
		t.Fatal(err)
	}
	if ix2.verifiedEntry([]byte(key)) != nil {
		t.Fatal("a new index trusts a tag it never computed")
	}
	if _, err := ix2.Lookup([]byte(key), t0.Add(time.Second)); !errors.Is(err, ErrKeyRevoked) {
		t.Errorf("revoked key: %v", err)
	}
	if _, err := ix2.Lookup([]byte(key), t0.Add(time.Second)); !errors.Is(err, ErrKeyRevoked) {
		t.Errorf("revoked key, verified: %v", err)
	}
}

// TestGrantRenew: a Grant renews the key it was filled for while its index
// is installed, with the key's lifecycle checked each time; any failure or
// another kind of credential leaves it empty.
func TestGrantRenew(t *testing.T) {
	key, rec := newKey(t, KeyOptions{TTL: time.Hour})
	ix, err := NewKeyIndex([]KeyRecord{rec})
	if err != nil {
		t.Fatal(err)
	}
	var a Authenticator
	a.SetKeys(ix)
	var g Grant
	if _, ok, _ := a.Renew(&g, t0); ok {
		t.Fatal("an empty grant renews")
	}
	p, err := a.AuthenticateGrant(context.Background(), nil, []byte(key), t0, &g)
	if err != nil {
		t.Fatal(err)
	}
	if q, ok, err := a.Renew(&g, t0.Add(time.Minute)); !ok || err != nil || q != p {
		t.Fatalf("renew: %v %v %v", q, ok, err)
	}
	if _, ok, err := a.Renew(&g, t0.Add(time.Hour)); !ok || !errors.Is(err, ErrKeyExpired) {
		t.Fatalf("renew after expiry: %v %v", ok, err)
	}
	ix2, _ := NewKeyIndex([]KeyRecord{rec})
	a.SetKeys(ix2)
	if _, ok, _ := a.Renew(&g, t0); ok {
		t.Fatal("a grant of a replaced index renews")
	}
	for _, tt := range []struct{ authz, key string }{
		{"", forgeSameID(t, key)},
		{"", "stoa_sk_short"},
		{"Bearer x.y.z", ""},
		{"Basic dXNlcjpwdw==", ""},
	} {
		g = Grant{ix: ix2, e: ix2.byID[rec.ID]}
		if _, err := a.AuthenticateGrant(context.Background(), []byte(tt.authz), []byte(tt.key), t0, &g); err == nil {
			t.Errorf("%+v accepted", tt)
		}
		if g != (Grant{}) {
			t.Errorf("%+v left a grant", tt)
		}
	}
	if _, err := a.AuthenticateGrant(context.Background(), []byte("Bearer "+key), nil, t0, &g); err != nil || g.e == nil {
		t.Errorf("bearer API key: %v, grant %+v", err, g)
	}
}
