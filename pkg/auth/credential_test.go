package auth

import (
	"net/http"
	"strings"
	"testing"
)

func TestExtractCredential(t *testing.T) {
	const key = "stoa_sk_aaaaaaaaaaaaaaaa_bbbb"
	const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"
	tests := []struct {
		name, authz, apiKey string
		kind                CredentialKind
		cred                string
		want                error
	}{
		{"nothing", "", "", CredentialNone, "", ErrNoCredential},
		{"only spaces", "  ", "\t", CredentialNone, "", ErrNoCredential},
		{"x-api-key", "", key, CredentialAPIKey, key, nil},
		{"x-api-key trimmed", "", " " + key + "\t", CredentialAPIKey, key, nil},
		{"bearer jwt", "Bearer " + jwt, "", CredentialBearerToken, jwt, nil},
		{"bearer any case, extra spaces", "bEaReR   " + jwt + " ", "", CredentialBearerToken, jwt, nil},
		{"bearer api key", "Bearer " + key, "", CredentialAPIKey, key, nil},
		{"token68 padding", "Bearer abc==", "", CredentialBearerToken, "abc==", nil},
		{"bearer and x-api-key", "Bearer " + jwt, key, CredentialNone, "", ErrAmbiguousCredential},
		{"basic next to x-api-key", "Basic dXNlcjpwYXNz", key, CredentialAPIKey, key, nil},
		{"basic alone", "Basic dXNlcjpwYXNz", "", CredentialNone, "", ErrUnsupportedScheme},
		{"bearerx scheme", "Bearerx " + jwt, "", CredentialNone, "", ErrUnsupportedScheme},
		{"bearer without value", "Bearer", "", CredentialNone, "", ErrMalformedCredential},
		{"bearer blank value", "Bearer    ", "", CredentialNone, "", ErrMalformedCredential},
		{"space inside token", "Bearer a b", "", CredentialNone, "", ErrMalformedCredential},
		{"padding in the middle", "Bearer a=b", "", CredentialNone, "", ErrMalformedCredential},
		{"control char", "Bearer a\x00b", "", CredentialNone, "", ErrMalformedCredential},
		{"non-ascii key", "", "stoa_sk_é", CredentialNone, "", ErrMalformedCredential},
		{"comma list", "", key + "," + key, CredentialNone, "", ErrMalformedCredential},
		{"too long", "Bearer " + strings.Repeat("a", MaxCredentialBytes+1), "", CredentialNone, "", ErrMalformedCredential},
		{"too long key", "", strings.Repeat("a", MaxCredentialBytes+1), CredentialNone, "", ErrMalformedCredential},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind, cred, err := ExtractCredential([]byte(tt.authz), []byte(tt.apiKey))
			wantErr(t, err, tt.want)
			if kind != tt.kind || string(cred) != tt.cred {
				t.Errorf("got %s %q, want %s %q", kind, cred, tt.kind, tt.cred)
			}
		})
	}
}

func TestExtractHTTP(t *testing.T) {
	h := http.Header{}
	h.Add("Authorization", "Bearer abc")
	if k, c, err := ExtractHTTP(h); err != nil || k != CredentialBearerToken || string(c) != "abc" {
		t.Fatalf("%v %q %v", k, c, err)
	}
	h.Add("Authorization", "Bearer def")
	if _, _, err := ExtractHTTP(h); err != ErrAmbiguousCredential {
		t.Fatalf("repeated header: %v", err)
	}
	h = http.Header{}
	h.Add("X-API-KEY", "a")
	h.Add("x-api-key", "b")
	if _, _, err := ExtractHTTP(h); err != ErrAmbiguousCredential {
		t.Fatalf("repeated x-api-key: %v", err)
	}
	if HTTPStatus(ErrAmbiguousCredential) != http.StatusBadRequest || Challenge(ErrAmbiguousCredential, "") != `Bearer error="invalid_request"` {
		t.Error("ambiguous credential answer")
	}
	if Challenge(ErrNoCredential, "") != "Bearer" || HTTPStatus(ErrNoCredential) != http.StatusUnauthorized {
		t.Error("no credential answer")
	}
}

func TestReason(t *testing.T) {
	for _, r := range reasons {
		if got := Reason(r.err); got != r.reason {
			t.Errorf("Reason(%v) = %q", r.err, got)
		}
	}
	if Reason(nil) != "" || Reason(http.ErrAbortHandler) != "error" {
		t.Error("reason of foreign errors")
	}
}
