package localapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/state"
	"github.com/stoa-gateway/stoa/pkg/store"
)

// fakeDaemon is a Daemon over an in-memory event log and revision, that
// records the changes asked of it.
type fakeDaemon struct {
	mu      sync.Mutex
	live    *state.Revision
	events  []api.Event
	subs    []chan api.Event
	applied []string // actors
}

func newFakeDaemon() *fakeDaemon {
	return &fakeDaemon{live: state.New(3, []*spec.Object{
		{APIVersion: spec.APIVersion, Kind: spec.KindTenant, Metadata: spec.Metadata{Name: "acme"}, Spec: &spec.TenantSpec{}},
		{APIVersion: spec.APIVersion, Kind: spec.KindConsumer, Metadata: spec.Metadata{Name: "shop", Namespace: "acme"}, Spec: &spec.ConsumerSpec{}},
	})}
}

func (f *fakeDaemon) Status() api.Status {
	return api.Status{Version: "test", Revision: f.live.Revision}
}
func (f *fakeDaemon) Live() *state.Revision { return f.live }
func (f *fakeDaemon) Apply(req *api.ApplyRequest, actor string) (*api.ApplyResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = append(f.applied, actor)
	return &api.ApplyResponse{Revision: f.live.Revision}, nil
}
func (f *fakeDaemon) Delete(*api.DeleteRequest, string) (*api.ApplyResponse, error) {
	return nil, apiError(api.CodeConflict, "no", "")
}
func (f *fakeDaemon) Rollback(*api.RollbackRequest, string) (*api.ApplyResponse, error) {
	return nil, apiError(api.CodeConflict, "no", "")
}
func (f *fakeDaemon) Revisions(context.Context, int) ([]store.Revision, error) { return nil, nil }
func (f *fakeDaemon) Revision(context.Context, int64) (*store.Revision, error) {
	return nil, store.ErrNotFound
}
func (f *fakeDaemon) Events(_ context.Context, since int64, last int) ([]api.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []api.Event
	for _, e := range f.events {
		if e.Seq > since {
			out = append(out, e)
		}
	}
	if last > 0 && len(out) > last {
		out = out[len(out)-last:]
	}
	return out, nil
}
func (f *fakeDaemon) FollowEvents() (<-chan api.Event, func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan api.Event, 16)
	f.subs = append(f.subs, ch)
	return ch, func() {}
}

// emit stores an event and pushes it to followers.
func (f *fakeDaemon) emit(typ string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := api.Event{Seq: int64(len(f.events) + 1), Type: typ}
	f.events = append(f.events, e)
	for _, ch := range f.subs {
		ch <- e
	}
}

// fixedPeer identifies every request as peer.
type fixedPeer struct{ peer Peer }

func (f fixedPeer) Conn(net.Conn) Peer                            { return f.peer }
func (f fixedPeer) Request(_ *http.Request, p Peer) (Peer, error) { return p, nil }

// allowAll admits everyone.
type allowAll struct{}

func (allowAll) Authorize(Peer, Permission) error { return nil }

var root = Peer{Actor: "root (uid 0)", Unix: &UnixCred{UID: 0, User: "root"}}

// serve runs a LocalAPI on an httptest server, as root.
func serve(t *testing.T, d Daemon, sv Services) *httptest.Server {
	t.Helper()
	return serveWith(t, New(Options{Daemon: d, Services: sv, Identity: fixedPeer{root}, Authorizer: allowAll{}}))
}

// serveWith runs s on an httptest server.
func serveWith(t *testing.T, s *Server) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(s)
	srv.Config.ConnContext = s.srv.ConnContext
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// call makes a request with a JSON body (if any), decodes the answer into
// out (if any) and returns the status.
func call(t *testing.T, srv *httptest.Server, method, path string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, srv.URL+path, rd)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: decode: %v", method, path, err)
		}
	}
	return resp.StatusCode
}
