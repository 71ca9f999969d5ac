package proxy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestFailureExchange: OnFailure gets the route's facts and, through
// Exchange, the request as sent upstream (gateway headers included) and
// the response, each body cut to the limit asked for.
func TestFailureExchange(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte("upstream broke: " + strings.Repeat("x", 100)))
	}))
	defer up.Close()
	var (
		mu  sync.Mutex
		got []Failure
		ex  []Exchange
		ptr *Failure
	)
	e := newEnv(t, tool("acme", "billing", up.URL+"/base", ""), func(o *Options) {
		o.OnFailure = func(f *Failure) {
			mu.Lock()
			defer mu.Unlock()
			got, ptr = append(got, *f), f
			ex = append(ex, f.Exchange(10))
		}
	})
	req, _ := http.NewRequest("POST", e.base+"/acme/billing/invoices/7?expand=lines", strings.NewReader(`{"amount":12345678}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 500 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("%d failures reported", len(got))
	}
	f, x := got[0], ex[0]
	if f.Method != "POST" || f.Tenant != "acme" || f.Tool != "billing" || f.Status != 500 || f.Reason != "5xx" ||
		f.Prefix != "/acme/billing" || f.Rest != "/invoices/7" || f.Upstream != up.URL+"/base" || f.RequestID == "" {
		t.Fatalf("failure: %+v", f)
	}
	if x.Query != "expand=lines" || x.TLS || x.Host != strings.TrimPrefix(up.URL, "http://") {
		t.Fatalf("exchange: query %q tls %v host %q", x.Query, x.TLS, x.Host)
	}
	if string(x.RequestBody) != `{"amount":` || x.RequestBodyLen != 19 || x.RequestContentType != "application/json" {
		t.Fatalf("request body %q (%d) %q", x.RequestBody, x.RequestBodyLen, x.RequestContentType)
	}
	if string(x.ResponseBody) != "upstream b" || x.ResponseBodyLen != 116 || x.ResponseContentType != "text/plain" {
		t.Fatalf("response body %q (%d) %q", x.ResponseBody, x.ResponseBodyLen, x.ResponseContentType)
	}
	sent := map[string]string{}
	for _, h := range x.RequestHeaders {
		sent[h[0]] = h[1]
	}
	if sent["X-Stoa-Tenant"] != "acme" || sent["X-Request-Id"] != f.RequestID {
		t.Fatalf("request headers as sent upstream: %v", x.RequestHeaders)
	}
	if ptr.ctx != nil {
		t.Fatal("the Failure kept its exchange after OnFailure returned")
	}
}
