package daemon

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/store"
)

// events returns the stored events of type typ.
func (ld *liveDaemon) eventsOf(typ string) []api.Event {
	ld.t.Helper()
	evs, err := store.ReadEvents(context.Background(), ld.d.store, 0, 0)
	if err != nil {
		ld.t.Fatal(err)
	}
	var out []api.Event
	for _, e := range evs {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// Every upstream.ejected is followed by an upstream.restored when the
// upstream comes back: when the ejection time is over, or earlier when its
// active health check passes.
func TestUpstreamRestoredEvents(t *testing.T) {
	t.Run("ejection time over", func(t *testing.T) {
		// Nothing listens on a port that was just free: connect fails.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := "http://" + ln.Addr().String()
		ln.Close()
		ld := startDaemon(t, nil)
		ld.apply(doc("Tenant", "", "acme", "") +
			doc("Tool", "acme", "api", "upstream: "+dead+"\nauth: {type: none}\ncircuitBreaker: {consecutiveFailures: 1, ejection: 1s}"))
		// 502, or 503 when the connect-failure retry finds it ejected.
		if st, _ := ld.get("/acme/api/x"); st != 502 && st != 503 {
			t.Fatalf("dead upstream: %d", st)
		}
		waitFor(t, "upstream.ejected", func() bool { return len(ld.eventsOf("upstream.ejected")) == 1 })
		if st, _ := ld.get("/acme/api/x"); st != 503 {
			t.Fatalf("while ejected: %d, want 503", st)
		}
		waitFor(t, "upstream.restored", func() bool { return len(ld.eventsOf("upstream.restored")) == 1 })
		e := ld.eventsOf("upstream.restored")[0]
		if e.Data["upstream"] != dead || !strings.Contains(e.Message, "ejection of 1s ended") ||
			e.Seq < ld.eventsOf("upstream.ejected")[0].Seq {
			t.Fatalf("upstream.restored: %+v", e)
		}
		// Back in the rotation: the next call is tried (and fails again).
		if st, _ := ld.get("/acme/api/x"); st != 502 && st != 503 {
			t.Fatalf("after the ejection: %d", st)
		}
		waitFor(t, "a second ejection and restore", func() bool {
			return len(ld.eventsOf("upstream.ejected")) == 2 && len(ld.eventsOf("upstream.restored")) == 2
		})
	})

	t.Run("health check passes", func(t *testing.T) {
		var fail atomic.Bool
		fail.Store(true)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/healthz" && fail.Load() {
				w.WriteHeader(500)
				return
			}
			w.Write([]byte("ok"))
		}))
		defer srv.Close()
		ld := startDaemon(t, nil)
		ld.apply(doc("Tenant", "", "acme", "") +
			doc("Tool", "acme", "api", "upstream: "+srv.URL+"\nauth: {type: none}\ncircuitBreaker: {consecutiveFailures: 1, ejection: 1h}\n"+
				"healthCheck: {path: /healthz, interval: 1s, healthyThreshold: 1}"))
		if st, _ := ld.get("/acme/api/x"); st != 500 {
			t.Fatalf("failing upstream: %d", st)
		}
		waitFor(t, "upstream.ejected", func() bool { return len(ld.eventsOf("upstream.ejected")) == 1 })
		fail.Store(false)
		// An hour of ejection, ended by the next passing probe.
		waitFor(t, "upstream.restored by the health check", func() bool { return len(ld.eventsOf("upstream.restored")) == 1 })
		if e := ld.eventsOf("upstream.restored")[0]; !strings.Contains(e.Message, "health check passed") {
			t.Fatalf("upstream.restored: %+v", e)
		}
		if st, _ := ld.get("/acme/api/x"); st != 200 {
			t.Fatalf("after the health check restored it: %d", st)
		}
	})
}
