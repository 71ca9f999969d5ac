package snapshot

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

const (
	plantKey    = "stoa_sk_abcdefghijklmnop_abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuvabcdefg"
	plantJWT    = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlc2lnbmF0dXJl"
	plantAWS    = "AKIAIOSFODNN7EXAMPLE"
	plantAWSSec = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	plantUp     = "upstream-credential-9f8e7d"
)

func TestRedactBody(t *testing.T) {
	r := NewRedactor([]string{"X-Internal"}, []string{"cardNumber", "pin"}, [][]byte{[]byte(plantUp)})
	tests := []struct {
		name    string
		in      string
		want    string // exact output, when set
		absent  []string
		present []string
	}{
		{name: "json fields", in: `{"user":"bob","password":"hunter2","nested":{"client_secret":"xyz","ok":1},"list":[{"api_key":"k1"}],"max_tokens":100,"cardNumber":4111,"pin":null}`,
			want: `{"user":"bob","password":"[REDACTED]","nested":{"client_secret":"[REDACTED]","ok":1},"list":[{"api_key":"[REDACTED]"}],"max_tokens":100,"cardNumber":"[REDACTED]","pin":"[REDACTED]"}`},
		{name: "json object under a secret name", in: `{"credentials":{"user":"a","pass":"b"}}`, want: `{"credentials":"[REDACTED]"}`},
		{name: "json keeps order and unicode", in: `{"z":"é<>&","a":[1,2.50,true,null]}`, want: `{"z":"é<>&","a":[1,2.50,true,null]}`},
		{name: "pattern inside a json value", in: `{"note":"called with Bearer ` + plantJWT + `"}`, absent: []string{plantJWT, "c2lnbmF0dXJl"}, present: []string{"Bearer [REDACTED]"}},
		{name: "stoa key keeps public prefix", in: "key=" + plantKey + " end", absent: []string{"abcdefghijklmnopqrstuvwxyz234567"}, present: []string{"stoa_sk_abcdefghijklmnop_[REDACTED]"}},
		{name: "bare key prefix is public", in: "key stoa_sk_abcdefghijklmnop revoked", want: "key stoa_sk_abcdefghijklmnop revoked"},
		{name: "aws", in: "aws_access_key_id=" + plantAWS + "\naws_secret_access_key = " + plantAWSSec, absent: []string{plantAWS, plantAWSSec}},
		{name: "form body", in: "user=bob&password=hunter2&remember=1", want: "user=bob&password=[REDACTED]&remember=1"},
		{name: "truncated json falls back to text", in: `{"user":"bob","password":"hunter2","tok`, absent: []string{"hunter2"}},
		{name: "configured credential", in: "echo: " + plantUp, absent: []string{plantUp}},
		{name: "private key, even cut", in: "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\nabc", want: "[REDACTED]"},
		{name: "url credentials", in: "see https://admin:pa55@db.internal/x", want: "see https://[REDACTED]@db.internal/x"},
		{name: "github and slack", in: "ghp_abcdefghijklmnopqrstuvwxyz0123456789 xoxb-1234567890-abcdef", absent: []string{"ghp_abc", "xoxb-123"}},
		{name: "innocent text", in: "author: Jane; tokens used: 5; the password policy", want: "author: Jane; tokens used: 5; the password policy"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var n notes
			got, omitted := r.body([]byte(tc.in), "", &n)
			if omitted != "" {
				t.Fatalf("omitted: %s", omitted)
			}
			if tc.want != "" && got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
			for _, a := range tc.absent {
				if strings.Contains(got, a) {
					t.Fatalf("%q survived: %s", a, got)
				}
			}
			for _, p := range tc.present {
				if !strings.Contains(got, p) {
					t.Fatalf("want %q in %s", p, got)
				}
			}
			if tc.want != tc.in && len(n.list) == 0 {
				t.Fatal("redactions not noted")
			}
			// Redacting twice changes nothing.
			if again, _ := r.body([]byte(got), "", &notes{}); again != got {
				t.Fatalf("not idempotent:\n%s\n%s", got, again)
			}
		})
	}
	var n notes
	if _, omitted := r.body([]byte{0x89, 'P', 'N', 'G', 0, 1, 2}, "image/png", &n); omitted == "" {
		t.Fatal("binary body kept")
	}
}

func TestRedactHeadersAndURL(t *testing.T) {
	r := NewRedactor([]string{"X-Upstream-Token"}, nil, nil)
	var n notes
	hs := r.redactHeaders([]Header{
		{Name: "Authorization", Value: "Bearer abc.def.ghi"}, {Name: "Cookie", Value: "sid=1"}, {Name: "x-api-key", Value: plantKey},
		{Name: "X-Upstream-Token", Value: "t"}, {Name: "Accept", Value: "application/json"}, {Name: "X-Debug", Value: "Bearer 0123456789abcdef"},
		{Name: "Connection", Value: "keep-alive"},
	}, &n)
	want := []Header{{"Authorization", Redacted, true}, {"Cookie", Redacted, true}, {"x-api-key", Redacted, true},
		{"X-Upstream-Token", Redacted, true}, {"Accept", "application/json", false}, {"X-Debug", "Bearer " + Redacted, true}}
	if len(hs) != len(want) {
		t.Fatalf("headers %+v", hs)
	}
	for i := range want {
		if hs[i] != want[i] {
			t.Fatalf("header %d: %+v, want %+v", i, hs[i], want[i])
		}
	}
	u, target := r.redactURL("http://u:p@127.0.0.1:9001/billing/invoices/7?expand=1&access_token=s3cr3t&apiKey=x", "http://127.0.0.1:9001/billing", &n)
	if strings.Contains(u, "s3cr3t") || strings.Contains(u, "u:p@") || !strings.Contains(u, "expand=1") {
		t.Fatalf("url %s", u)
	}
	if target != "/invoices/7?expand=1&access_token=%5BREDACTED%5D&apiKey=%5BREDACTED%5D" {
		t.Fatalf("target %s", target)
	}
}

func FuzzRedact(f *testing.F) {
	for _, s := range []string{
		`{"password":"x","a":[1,{"token":"y"}]}`, "password=1&b=2", "Bearer " + plantJWT, plantKey,
		"-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----", `{"a":"\u00e9\"\\"}`, "", "[[[[", `{"x":1e400}`,
	} {
		f.Add(s, uint8(3))
	}
	r := NewRedactor(nil, []string{"pin"}, [][]byte{[]byte(plantUp)})
	f.Fuzz(func(t *testing.T, in string, at uint8) {
		// Plant secrets at a position inside the input and check that none
		// survives in any form the redactor keeps.
		pos := int(at) % (len(in) + 1)
		for !utf8.ValidString(in[:pos]) && pos > 0 {
			pos--
		}
		const key = "stoa_sk_qqqqqqqqqqqqqqqq_zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"
		const jwt = "eyJxxxxxxxxxxxxx.eyJyyyyyyyyyyyy.wwwwwwwwwwwwwwwwwwwwwwww"
		for _, secret := range []string{plantUp, " Bearer " + jwt + " ", " " + key + " "} {
			planted := in[:pos] + secret + in[pos:]
			var n notes
			out, omitted := r.body([]byte(planted), "", &n)
			if omitted != "" {
				continue
			}
			for _, bad := range []string{plantUp, "wwwwwwwwwwww", "zzzzzzzzzzzz"} {
				if strings.Contains(out, bad) {
					t.Fatalf("secret %q survived in %q (input %q)", bad, out, planted)
				}
			}
			if !utf8.ValidString(out) {
				t.Fatalf("invalid UTF-8 out of %q", planted)
			}
		}
		var n notes
		out, omitted := r.body([]byte(in), "", &n)
		if omitted == "" && json.Valid([]byte(strings.TrimSpace(in))) && len(strings.TrimSpace(in)) > 0 {
			c := strings.TrimSpace(in)[0]
			if (c == '{' || c == '[') && !json.Valid([]byte(out)) {
				t.Fatalf("valid JSON %q became invalid %q", in, out)
			}
		}
	})
}
