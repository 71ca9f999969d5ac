package snapshot

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/store/boltstore"
)

var start = time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)

func capture(tenant string) *Capture {
	body := []byte(`{"customer":"c1","password":"hunter2-planted","card":"` + plantKey + `"}`)
	resp := []byte(`{"error":"db down","debug":"connect with aws_secret_access_key=` + plantAWSSec + `"}`)
	return &Capture{
		Source: "proxy", Tenant: tenant, Tool: "billing-api", Consumer: "web-shop", Revision: 3, RequestID: "req-1",
		Upstream: "http://127.0.0.1:9001/billing", Reason: "5xx", Start: start, Duration: 12 * time.Millisecond,
		Method: "POST", URL: "http://127.0.0.1:9001/billing/invoices?session_id=abc123planted&x=1",
		ReqHeaders: []Header{{Name: "Content-Type", Value: "application/json"}, {Name: "Authorization", Value: "Bearer " + plantJWT},
			{Name: "X-Upstream-Token", Value: plantUp}, {Name: "Cookie", Value: "sid=cookieplanted"}},
		ReqBody: body, ReqBodyLen: len(body), ReqContentType: "application/json",
		Status: 500, UpstreamStatus: 500,
		RespHeaders: []Header{{Name: "Set-Cookie", Value: "sid=setcookieplanted"}, {Name: "Content-Type", Value: "application/json"}},
		RespBody:    resp, RespBodyLen: len(resp), RespContentType: "application/json",
	}
}

var planted = []string{"hunter2-planted", "abcdefghijklmnopqrstuvwxyz234567", plantJWT, "c2lnbmF0dXJl", plantUp, "cookieplanted", plantAWSSec, "abc123planted"}

func testRedactor() *Redactor {
	return NewRedactor([]string{"X-Upstream-Token"}, nil, [][]byte{[]byte(plantUp)})
}

func TestBuildRedactsEverything(t *testing.T) {
	s := seal(build(capture("acme"), testRedactor(), 8192), testRedactor())
	b, _ := json.Marshal(s)
	for _, p := range planted {
		if strings.Contains(string(b), p) {
			t.Fatalf("planted secret %q stored:\n%s", p, b)
		}
	}
	if s.Request.Target != "/invoices?session_id=%5BREDACTED%5D&x=1" || s.Request.Method != "POST" || s.Response.Status != 500 {
		t.Fatalf("request %+v", s.Request)
	}
	if !strings.Contains(s.Request.Body, `"customer":"c1"`) || !strings.Contains(s.Response.Body, "db down") {
		t.Fatalf("bodies lost their innocent parts: %s / %s", s.Request.Body, s.Response.Body)
	}
	if len(s.Redactions) < 5 {
		t.Fatalf("redactions %v", s.Redactions)
	}
}

func TestBodyCut(t *testing.T) {
	c := capture("acme")
	big := strings.Repeat("a", 100) + " Bearer " + strings.Repeat("Z", 40)
	c.RespBody, c.RespBodyLen, c.RespContentType = []byte(big), 5000, "text/plain"
	s := build(c, testRedactor(), 110)
	if !s.Response.Truncated || len(s.Response.Body) > 110 || strings.Contains(s.Response.Body, "ZZZ") {
		t.Fatalf("cut body %q (truncated %v)", s.Response.Body, s.Response.Truncated)
	}
	if strings.HasSuffix(s.Response.Body, "[REDAC") {
		t.Fatalf("half a marker kept: %q", s.Response.Body)
	}
	c.RespBody = []byte{0xff, 0xfe, 0, 1}
	if s := build(c, testRedactor(), 110); s.Response.Omitted == "" || s.Response.Body != "" {
		t.Fatalf("binary kept: %+v", s.Response)
	}
}

func openStore(t testing.TB) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	st, err := boltstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s, err := OpenStore(st)
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func TestStoreBounds(t *testing.T) {
	s, _ := openStore(t)
	pol := Policy{MaxCount: 3, MaxAge: time.Hour, MaxBodyBytes: 1024}
	for i := 0; i < 5; i++ {
		sn := build(capture("acme"), testRedactor(), 1024)
		sn.Time = start.Add(time.Duration(i) * time.Minute)
		if err := s.put([]*Snapshot{sn}, pol, start); err != nil {
			t.Fatal(err)
		}
	}
	other := build(capture("globex"), testRedactor(), 1024)
	if err := s.put([]*Snapshot{other}, pol, start); err != nil {
		t.Fatal(err)
	}
	list, _ := s.List(Filter{Tenant: "acme"})
	if len(list) != 3 || list[0].ID != "snp_5" || list[2].ID != "snp_3" {
		t.Fatalf("acme keeps the newest 3: %+v", list)
	}
	if all, _ := s.List(Filter{}); len(all) != 4 {
		t.Fatalf("all tenants: %d", len(all))
	}
	if since, _ := s.List(Filter{Since: start.Add(3 * time.Minute)}); len(since) != 2 {
		t.Fatalf("since: %+v", since)
	}
	if _, err := s.Get("snp_1"); err == nil {
		t.Fatal("evicted snapshot still readable")
	}
	got, err := s.Get("4")
	if err != nil || got.Tenant != "acme" || got.Tool != "billing-api" {
		t.Fatalf("get: %+v %v", got, err)
	}
	// Age: an hour later only globex's (newer) snapshot... all are older
	// than an hour two hours on.
	if n, err := s.Prune(pol, start.Add(2*time.Hour)); err != nil || n != 4 {
		t.Fatalf("prune dropped %d, %v", n, err)
	}
}

func TestRecorder(t *testing.T) {
	s, dir := openStore(t)
	now := start
	r := NewRecorder(s, RecorderOptions{Queue: 4, PerSecond: 3, Now: func() time.Time { return now }})
	r.SetConfig(&Config{Policy: DefaultPolicy, Redactor: func(string, string) *Redactor { return testRedactor() }})
	wants := 0
	for i := 0; i < 5; i++ {
		if r.Want() {
			wants++
			c := capture("acme")
			c.Tool += strconv.Itoa(i) // distinct failures: not grouped
			r.Capture(c)
		}
	}
	if wants != 3 || r.Dropped.Load() != 2 {
		t.Fatalf("rate: %d accepted, %d dropped", wants, r.Dropped.Load())
	}
	r.Start()
	deadline := time.Now().Add(5 * time.Second)
	for r.Stored.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	r.Stop()
	if r.Stored.Load() != 3 {
		t.Fatalf("stored %d", r.Stored.Load())
	}
	// Nothing planted reached the database file.
	raw, err := os.ReadFile(filepath.Join(dir, boltstore.FileName))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range planted {
		if strings.Contains(string(raw), p) {
			t.Fatalf("planted secret %q is in the database file", p)
		}
	}
	now = now.Add(time.Second)
	if !r.Want() {
		t.Fatal("a new second allows captures again")
	}
}

func TestCurl(t *testing.T) {
	s := build(capture("acme"), testRedactor(), 8192)
	s.ID = "snp_9"
	got := Curl(s)
	want := `# snp_9: proxy acme/billing-api, 2026-05-04T10:00:00Z
# redacted (replace each [REDACTED] before running): header Authorization, header X-Upstream-Token, header Cookie, URL, body
curl -sS -X 'POST' 'http://127.0.0.1:9001/billing/invoices?session_id=%5BREDACTED%5D&x=1' \
  -H 'Content-Type: application/json' \
  -H 'Authorization: [REDACTED]' \
  -H 'X-Upstream-Token: [REDACTED]' \
  -H 'Cookie: [REDACTED]' \
  --data-binary '{"customer":"c1","password":"[REDACTED]","card":"stoa_sk_abcdefghijklmnop_[REDACTED]"}'
`
	if got != want {
		t.Fatalf("curl:\n%s\nwant:\n%s", got, want)
	}
	if q := shellQuote("it's"); q != `'it'\''s'` {
		t.Fatalf("quote %s", q)
	}
}

func TestReplay(t *testing.T) {
	var gotReq *http.Request
	var gotBody string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotReq = r
		b, _ := io.ReadAll(r.Body)
		gotBody = string(b)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true,"token":"leaky"}`)
	}))
	defer up.Close()
	s := build(capture("acme"), testRedactor(), 8192)
	s.ID = "snp_1"
	res, err := Replay(context.Background(), s, Route{Tenant: "acme", URL: up.URL + "/billing" + s.Request.Target, Header: "X-Upstream-Token", Value: "real-secret"},
		testRedactor(), http.DefaultClient)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != 200 || res.OldStatus != 500 || res.Error != "" {
		t.Fatalf("result %+v", res)
	}
	if gotReq.URL.Path != "/billing/invoices" || gotReq.Method != "POST" || gotReq.Header.Get(ReplayHeader) != "snp_1" {
		t.Fatalf("request %s %s %v", gotReq.Method, gotReq.URL, gotReq.Header)
	}
	if gotReq.Header.Get("X-Upstream-Token") != "real-secret" || gotReq.Header.Get("Authorization") != "" || gotReq.Header.Get("Cookie") != "" {
		t.Fatalf("credentials: %v", gotReq.Header)
	}
	if !strings.Contains(gotBody, `"customer":"c1"`) || strings.Contains(res.Body, "leaky") {
		t.Fatalf("body sent %s, shown %s", gotBody, res.Body)
	}
	if len(res.Warnings) < 2 {
		t.Fatalf("want warnings about redactions: %v", res.Warnings)
	}
}
