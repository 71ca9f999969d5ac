package tlspin_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/tlspin"
)

func TestParseForms(t *testing.T) {
	cert, fp, err := tlspin.SelfSigned([]string{"127.0.0.1"}, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if fp != tlspin.Of(cert.Certificate[0]) {
		t.Fatal("SelfSigned returned the wrong fingerprint")
	}
	s := fp.String()
	if !strings.HasPrefix(s, "SHA256:") || len(s) != 7+32*3-1 {
		t.Fatalf("String() = %q", s)
	}
	hexOnly := strings.ReplaceAll(strings.TrimPrefix(s, "SHA256:"), ":", "")
	for _, in := range []string{
		s, strings.ToLower(s), hexOnly, strings.ToLower(hexOnly),
		"sha256 Fingerprint=" + strings.TrimPrefix(s, "SHA256:"), "  " + s + "\n",
	} {
		got, err := tlspin.Parse(in)
		if err != nil || got != fp {
			t.Errorf("Parse(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "SHA256:", hexOnly[:62], hexOnly + "00", "zz" + hexOnly[2:], "md5:" + hexOnly} {
		if _, err := tlspin.Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestPinnedClient(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) }))
	defer srv.Close()
	right := tlspin.Of(srv.Certificate().Raw)

	resp, err := tlspin.HTTPClient(right, 5*time.Second).Get(srv.URL)
	if err != nil {
		t.Fatalf("the pinned certificate was refused: %v", err)
	}
	resp.Body.Close()

	wrong := right
	wrong[0] ^= 1
	_, err = tlspin.HTTPClient(wrong, 5*time.Second).Get(srv.URL)
	if !errors.Is(err, tlspin.ErrMismatch) {
		t.Fatalf("a wrong pin: %v, want ErrMismatch", err)
	}
	// Neither does a certificate the system would trust get around the
	// pin: a server with another (here: self-signed, different) cert fails.
	cert, _, err := tlspin.SelfSigned([]string{"127.0.0.1"}, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other := httptest.NewUnstartedServer(srv.Config.Handler)
	other.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	other.StartTLS()
	defer other.Close()
	if _, err := tlspin.HTTPClient(right, 5*time.Second).Get(other.URL); !errors.Is(err, tlspin.ErrMismatch) {
		t.Fatalf("another server with the pinned client: %v", err)
	}
}

func TestProbe(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	res, err := tlspin.Probe(context.Background(), srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if res.Fingerprint != tlspin.Of(srv.Certificate().Raw) {
		t.Fatal("Probe returned another fingerprint")
	}
	if res.VerifyError == nil {
		t.Fatal("httptest's certificate is not publicly trusted, yet VerifyError is nil")
	}
	if _, err := tlspin.Probe(context.Background(), "127.0.0.1"); err == nil {
		t.Fatal("Probe without a port succeeded")
	}
}

// FuzzParse: Parse never panics, and what it accepts renders to a form
// that parses back to the same fingerprint.
func FuzzParse(f *testing.F) {
	f.Add("SHA256:00")
	f.Fuzz(func(t *testing.T, s string) {
		fp, err := tlspin.Parse(s)
		if err != nil {
			return
		}
		again, err := tlspin.Parse(fp.String())
		if err != nil || again != fp {
			t.Fatalf("Parse(%q).String() = %q does not round-trip: %v", s, fp.String(), err)
		}
	})
}
