package mcprt

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/proxy"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/state"
)

func TestDefaultResourceURL(t *testing.T) {
	for listen, want := range map[string]string{
		"127.0.0.1:8080": "http://127.0.0.1:8080/mcp",
		"[::1]:8080":     "http://[::1]:8080/mcp",
		"gw.local:80":    "http://gw.local:80/mcp",
		"0.0.0.0:8080":   "", // derived from each request's Host
		"[::]:8080":      "",
		":8080":          "",
		"nonsense":       "",
	} {
		if got := defaultResourceURL(listen); got != want {
			t.Errorf("defaultResourceURL(%q) = %q, want %q", listen, got, want)
		}
	}
}

func TestMCPAuthErrorMapping(t *testing.T) {
	cases := []struct {
		err          error
		status       int
		code         string
		tokenPresent bool
	}{
		{auth.ErrNoCredential, 0, "", false},
		{auth.ErrKeyRevoked, 0, "", true},
		{fmt.Errorf("x: %w", auth.ErrTokenExpired), 0, "", true},
		{auth.ErrAmbiguousCredential, 400, "invalid_request", true},
		{auth.ErrInsufficientScope, 403, "insufficient_scope", true},
		{auth.ErrKeySetUnavailable, 503, "", false},
	}
	for _, c := range cases {
		ae := authError(c.err)
		if ae.Status != c.status || ae.Code != c.code || ae.TokenPresent != c.tokenPresent {
			t.Errorf("%v: got %+v", c.err, ae)
		}
		// Never which check failed.
		if strings.Contains(ae.Error(), "revoked") || strings.Contains(ae.Error(), "expired") {
			t.Errorf("%v: answer reveals the reason: %s", c.err, ae.Error())
		}
	}
}

func TestMCPRefusalText(t *testing.T) {
	got := refusal(&proxy.Rejection{Status: 429, Code: "rate_limited", Message: "operation", RetryAfter: 1500 * time.Millisecond}).Error()
	if want := "not sent: the gateway refused the call (HTTP 429 rate_limited): rate limit exceeded (operation limit); retry after 2 s"; got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	got = refusal(&proxy.Rejection{Status: 403, Code: "no_subscription", Message: "no active subscription"}).Error()
	if !strings.Contains(got, "no active subscription") || strings.Contains(got, "retry") {
		t.Errorf("got %q", got)
	}
	if errors.Is(refusal(&proxy.Rejection{}), proxy.ErrNoRoute) {
		t.Error("a refusal must not hide the tool")
	}
}

func TestMCPIndexSubjects(t *testing.T) {
	objs := []*spec.Object{
		{APIVersion: spec.APIVersion, Kind: spec.KindConsumer, Metadata: spec.Metadata{Name: "bot", Namespace: "acme"},
			Spec: &spec.ConsumerSpec{Subjects: []string{"sub-1", "client-a"}}},
		{APIVersion: spec.APIVersion, Kind: spec.KindConsumer, Metadata: spec.Metadata{Name: "bot", Namespace: "globex"},
			Spec: &spec.ConsumerSpec{Subjects: []string{"sub-1"}}},
	}
	idx := newIndex(state.New(1, objs))
	if idx.subjects[[2]string{"acme", "client-a"}] != "bot" || idx.subjects[[2]string{"globex", "sub-1"}] != "bot" ||
		idx.subjects[[2]string{"globex", "client-a"}] != "" {
		t.Errorf("subjects = %v", idx.subjects)
	}
}

func TestLoopbackListen(t *testing.T) {
	for listen, want := range map[string]bool{
		"127.0.0.1:8080": true, "127.0.0.2:8080": true, "[::1]:8080": true, "localhost:8080": true,
		"LocalHost.:80": true, "[::ffff:127.0.0.1]:80": true,
		"0.0.0.0:8080": false, "[::]:8080": false, ":8080": false, "10.0.0.5:8080": false,
		"gw.local:80": false, "nonsense": false,
	} {
		if got := loopbackListen(listen); got != want {
			t.Errorf("loopbackListen(%q) = %v, want %v", listen, got, want)
		}
	}
}
