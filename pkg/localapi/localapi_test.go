package localapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/api"
)

func TestRouteRegisteredTwicePanics(t *testing.T) {
	s := New(Options{Daemon: newFakeDaemon(), Identity: fixedPeer{root}, Authorizer: allowAll{}})
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "GET "+api.PathStatus+" registered twice") {
			t.Fatalf("recovered %v", r)
		}
	}()
	s.handle("GET "+api.PathStatus, PermRead, func(http.ResponseWriter, *http.Request, Peer) error { return nil })
}

func TestUnknownRouteAnswersTheEnvelope(t *testing.T) {
	srv := serve(t, newFakeDaemon(), Services{})
	for _, tc := range []struct{ method, path string }{
		{"GET", "/v2/nothing"},
		{"GET", api.PathKeys}, // a service that is not there
		{"DELETE", api.PathStatus},
	} {
		var e api.ErrorBody
		if code := call(t, srv, tc.method, tc.path, nil, &e); code != 404 || e.Error == nil || e.Error.Code != api.CodeNotFound ||
			!strings.Contains(e.Error.Message, "no LocalAPI route "+tc.method+" "+tc.path) || e.Error.Hint == "" {
			t.Errorf("%s %s: %d %+v", tc.method, tc.path, code, e.Error)
		}
	}
}

// denyWrites lets peers read and refuses every change.
type denyWrites struct{ asked []Permission }

func (d *denyWrites) Authorize(p Peer, perm Permission) error {
	d.asked = append(d.asked, perm)
	if perm == PermWrite {
		return apiError(api.CodeForbidden, p.Actor+" may not "+perm.String(), "")
	}
	return nil
}

// TestAuthorizationComesFirst: the Authorizer is asked with the route's
// permission before the handler reads anything; a refusal is the error
// envelope and the handler never runs.
func TestAuthorizationComesFirst(t *testing.T) {
	d := newFakeDaemon()
	authz := &denyWrites{}
	srv := serveWith(t, New(Options{Daemon: d, Identity: fixedPeer{Peer{Actor: "alice"}}, Authorizer: authz}))
	var st api.Status
	if code := call(t, srv, "GET", api.PathStatus, nil, &st); code != 200 || st.Version != "test" {
		t.Fatalf("status: %d %+v", code, st)
	}
	req, _ := http.NewRequest("POST", srv.URL+api.PathApply, strings.NewReader("not even JSON"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var e api.ErrorBody
	json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != 403 || e.Error == nil || e.Error.Message != "alice may not write" {
		t.Fatalf("apply: %d %+v (the body must not be read before the check)", resp.StatusCode, e.Error)
	}
	if len(d.applied) != 0 {
		t.Fatal("the handler ran for a refused peer")
	}
	if len(authz.asked) != 2 || authz.asked[0] != PermRead || authz.asked[1] != PermWrite {
		t.Fatalf("permissions asked: %v", authz.asked)
	}
}

// refusingIdentity fails to name the peer of every request (a bad token).
type refusingIdentity struct{ fixedPeer }

func (refusingIdentity) Request(*http.Request, Peer) (Peer, error) {
	return Peer{}, apiError(api.CodeUnauthorized, "token expired", "log in again: stoa login")
}

func TestIdentityErrorIsTheEnvelope(t *testing.T) {
	d := newFakeDaemon()
	srv := serveWith(t, New(Options{Daemon: d, Identity: refusingIdentity{}, Authorizer: allowAll{}}))
	var e api.ErrorBody
	if code := call(t, srv, "GET", api.PathStatus, nil, &e); code != 401 || e.Error.Hint != "log in again: stoa login" {
		t.Fatalf("%d %+v", code, e.Error)
	}
}

func TestSocketOwners(t *testing.T) {
	me := uint32(os.Geteuid())
	other := me + 4242
	for _, tc := range []struct {
		name string
		o    SocketOwners
		p    Peer
		ok   bool
	}{
		{"root", SocketOwners{}, Peer{Unix: &UnixCred{UID: 0}}, true},
		{"our own user", SocketOwners{}, Peer{Unix: &UnixCred{UID: me}}, true},
		{"another user", SocketOwners{}, Peer{Unix: &UnixCred{UID: other, GID: other}}, false},
		{"another user in the socket group", SocketOwners{GID: "4242"}, Peer{Unix: &UnixCred{UID: other, GID: 4242}}, true},
		{"another user, another group", SocketOwners{GID: "4242"}, Peer{Unix: &UnixCred{UID: other, GID: 4243}}, false},
		{"unknown to the kernel", SocketOwners{}, Peer{Unix: &UnixCred{UID: ^uint32(0)}}, false},
		{"not a socket peer", SocketOwners{}, Peer{Actor: "token"}, false},
	} {
		err := tc.o.Authorize(tc.p, PermWrite)
		var ae *api.Error
		if tc.ok != (err == nil) || (err != nil && (!errors.As(err, &ae) || ae.Code != api.CodeForbidden)) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// TestEventsStream: the backlog, then new events each as it happens,
// none twice.
func TestEventsStream(t *testing.T) {
	d := newFakeDaemon()
	d.emit("config.applied")
	d.emit("key.created")
	srv := serve(t, d, Services{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+api.PathEvents+"?since=1&follow=1", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Fatalf("content type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	next := func() api.Event {
		t.Helper()
		for sc.Scan() {
			if len(sc.Bytes()) == 0 {
				continue // keepalive
			}
			var e api.Event
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatal(err)
			}
			return e
		}
		t.Fatalf("stream ended: %v", sc.Err())
		return api.Event{}
	}
	if e := next(); e.Seq != 2 || e.Type != "key.created" {
		t.Fatalf("backlog: %+v", e)
	}
	d.emit("key.revoked") // flushed on its own: the scanner would block otherwise
	if e := next(); e.Seq != 3 || e.Type != "key.revoked" {
		t.Fatalf("followed: %+v", e)
	}
}

func TestApplyCarriesThePeer(t *testing.T) {
	d := newFakeDaemon()
	srv := serve(t, d, Services{})
	var resp api.ApplyResponse
	if code := call(t, srv, "POST", api.PathApply, api.ApplyRequest{}, &resp); code != 200 || resp.Revision != 3 {
		t.Fatalf("%d %+v", code, resp)
	}
	if len(d.applied) != 1 || d.applied[0] != "root (uid 0)" {
		t.Fatalf("actors: %v", d.applied)
	}
	var e api.ErrorBody
	if code := call(t, srv, "GET", api.PathRevisions+"/7", nil, &e); code != 404 || e.Error.Code != api.CodeNotFound {
		t.Fatalf("a revision the store does not have: %d %+v", code, e.Error)
	}
}
