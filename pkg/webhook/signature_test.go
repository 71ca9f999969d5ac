package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// receiverCheck verifies like a receiver written from the docs alone.
func receiverCheck(secret, header string, body []byte) bool {
	var ts, sig string
	for _, p := range strings.Split(header, ",") {
		if v, ok := strings.CutPrefix(p, "t="); ok {
			ts = v
		}
		if v, ok := strings.CutPrefix(p, "v1="); ok {
			sig = v
		}
	}
	m := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(m, "%s.%s", ts, body)
	return hmac.Equal([]byte(hex.EncodeToString(m.Sum(nil))), []byte(sig))
}

func TestSignVerify(t *testing.T) {
	now := time.Unix(1767225600, 0)
	body := []byte(`{"id":"evt_1","type":"key.created"}`)
	h := Sign([]byte("s3cret"), now, body)
	if !strings.HasPrefix(h, "t=1767225600,v1=") || len(h) != len("t=1767225600,v1=")+64 {
		t.Fatalf("header %q", h)
	}
	if !receiverCheck("s3cret", h, body) {
		t.Fatal("an independent receiver rejects the signature")
	}
	if err := Verify([]byte("s3cret"), h, body, now.Add(time.Minute), 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		secret string
		header string
		body   string
		now    time.Time
		want   error
	}{
		{"wrong secret", "other", h, string(body), now, ErrSignatureMismatch},
		{"body changed", "s3cret", h, string(body) + " ", now, ErrSignatureMismatch},
		{"replayed later", "s3cret", h, string(body), now.Add(10 * time.Minute), ErrSignatureExpired},
		{"from the future", "s3cret", h, string(body), now.Add(-10 * time.Minute), ErrSignatureExpired},
		{"timestamp changed", "s3cret", strings.Replace(h, "t=1767225600", "t=1767225601", 1), string(body), now, ErrSignatureMismatch},
		{"second v1 matches", "s3cret", "t=1767225600,v1=" + strings.Repeat("0", 64) + "," + h[len("t=1767225600,"):], string(body), now, nil},
		{"unknown scheme ignored", "s3cret", h + ",v0=abc", string(body), now, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Verify([]byte(tc.secret), tc.header, []byte(tc.body), tc.now, 5*time.Minute)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestParseSignatureErrors(t *testing.T) {
	v1 := strings.Repeat("ab", 32)
	for _, h := range []string{
		"", "t=1", "v1=" + v1, "t=x,v1=" + v1, "t=-1,v1=" + v1, "t=1,t=2,v1=" + v1,
		"t=1,v1=zz", "t=1,v1=abcd", "t=1;v1=" + v1, "garbage", "t=1234567890123,v1=" + v1,
		"t=1,v1=" + v1 + strings.Repeat(",x=y", 2000),
	} {
		if _, err := ParseSignature(h); !errors.Is(err, ErrSignatureFormat) {
			t.Errorf("ParseSignature(%.40q) = %v, want a format error", h, err)
		}
	}
	s, err := ParseSignature(" t=5 , v1=" + v1 + " ")
	if err != nil || s.Timestamp != "5" || len(s.V1) != 1 {
		t.Fatalf("spaces: %+v %v", s, err)
	}
}

func FuzzParseSignature(f *testing.F) {
	f.Add("t=1767225600,v1=" + strings.Repeat("0a", 32))
	f.Add("t=1,v1=" + strings.Repeat("ff", 32) + ",v1=" + strings.Repeat("00", 32))
	f.Add("t=,v1=")
	f.Add(",,,=")
	f.Add("t=99999999999,v0=x,v1=" + strings.Repeat("AB", 32))
	f.Fuzz(func(t *testing.T, h string) {
		s, err := ParseSignature(h)
		if err != nil {
			if !errors.Is(err, ErrSignatureFormat) {
				t.Fatalf("error %v does not wrap ErrSignatureFormat", err)
			}
			return
		}
		if s.Timestamp == "" || len(s.V1) == 0 {
			t.Fatalf("accepted without t or v1: %q", h)
		}
		for _, v := range s.V1 {
			if len(v) != sha256.Size {
				t.Fatalf("v1 of %d bytes accepted", len(v))
			}
		}
		// Whatever parses must verify only with the right MAC.
		if Verify([]byte("k"), h, []byte("body"), s.Time, 0) == nil {
			want := hex.EncodeToString(mac([]byte("k"), s.Timestamp, []byte("body")))
			if !strings.Contains(strings.ToLower(h), want) {
				t.Fatalf("%q verified without the MAC", h)
			}
		}
	})
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		patterns []string
		typ      string
		want     bool
	}{
		{[]string{"*"}, "key.created", true},
		{[]string{"key.created"}, "key.created", true},
		{[]string{"key.created"}, "key.revoked", false},
		{[]string{"subscription.*"}, "subscription.expired", true},
		{[]string{"subscription.*"}, "subscriptionx.expired", false},
		{[]string{"subscription.*"}, "subscription", false},
		{[]string{"sub*"}, "subscription.created", false},
		{[]string{"quota.exhausted", "key.*"}, "key.rotated", true},
		{nil, "key.created", false},
	} {
		if got := Match(tc.patterns, tc.typ); got != tc.want {
			t.Errorf("Match(%v, %q) = %v", tc.patterns, tc.typ, got)
		}
	}
}
