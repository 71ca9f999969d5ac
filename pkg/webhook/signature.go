package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Headers of every delivery.
const (
	HeaderEvent     = "X-Stoa-Event"
	HeaderDelivery  = "X-Stoa-Delivery"
	HeaderSignature = "X-Stoa-Signature"
)

// maxSignatureHeader bounds what ParseSignature reads.
const maxSignatureHeader = 4096

// Sign returns the X-Stoa-Signature value for body sent at t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>".
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Signature is a parsed X-Stoa-Signature header.
type Signature struct {
	// Timestamp is the t= value as sent (Unix seconds, decimal).
	Timestamp string
	// Time is Timestamp as a time.
	Time time.Time
	// V1 holds every v1= signature (receivers accept any of them, which
	// allows signing with two secrets during a rotation).
	V1 [][]byte
}

// Errors of ParseSignature and Verify.
var (
	ErrSignatureFormat   = errors.New("malformed signature header")
	ErrSignatureMismatch = errors.New("signature does not match")
	ErrSignatureExpired  = errors.New("signature timestamp outside the tolerance")
)

// ParseSignature parses "t=…,v1=…[,v1=…]". Unknown schemes (v0=, v2=…)
// are ignored so the format can grow; t must appear exactly once and at
// least one v1 must be present.
func ParseSignature(h string) (Signature, error) {
	var s Signature
	if len(h) > maxSignatureHeader {
		return s, fmt.Errorf("%w: longer than %d bytes", ErrSignatureFormat, maxSignatureHeader)
	}
	for part := range strings.SplitSeq(h, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return Signature{}, fmt.Errorf("%w: %q is not key=value", ErrSignatureFormat, truncate(part, 32))
		}
		switch k {
		case "t":
			if s.Timestamp != "" {
				return Signature{}, fmt.Errorf("%w: repeated t", ErrSignatureFormat)
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 || len(v) > 12 {
				return Signature{}, fmt.Errorf("%w: bad timestamp", ErrSignatureFormat)
			}
			s.Timestamp, s.Time = v, time.Unix(n, 0).UTC()
		case "v1":
			b, err := hex.DecodeString(v)
			if err != nil || len(b) != sha256.Size {
				return Signature{}, fmt.Errorf("%w: v1 is not 64 hex digits", ErrSignatureFormat)
			}
			s.V1 = append(s.V1, b)
		}
	}
	if s.Timestamp == "" || len(s.V1) == 0 {
		return Signature{}, fmt.Errorf("%w: want t=<unix seconds>,v1=<hex>", ErrSignatureFormat)
	}
	return s, nil
}

// Verify checks a delivery as a receiver would: the header parses, its
// timestamp is within tolerance of now (replay protection; 0 skips the
// check), and one v1 signature matches secret over "<t>.<body>".
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	s, err := ParseSignature(header)
	if err != nil {
		return err
	}
	if tolerance > 0 {
		if d := now.Sub(s.Time); d > tolerance || d < -tolerance {
			return ErrSignatureExpired
		}
	}
	want := mac(secret, s.Timestamp, body)
	for _, got := range s.V1 {
		if hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrSignatureMismatch
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
