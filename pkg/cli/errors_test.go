package cli

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/api"
)

// TestExitCodesForSocketProblems: the exit code and hint follow from what
// is wrong — a daemon refusing the peer is 4, a path that is no socket is
// 5 without a "start stoad" hint.
func TestExitCodesForSocketProblems(t *testing.T) {
	dir, err := os.MkdirTemp("", "stoa-cli")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	refusing := filepath.Join(dir, "refuse.sock")
	ln, err := net.Listen("unix", refusing)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// What stoad's authorize() answers a peer it does not admit.
		writeJSONResp(w, http.StatusForbidden, api.ErrorBody{Error: &api.Error{Code: api.CodeForbidden,
			Message: "uid 1234 may not use this stoad", Hint: "run stoa as the daemon's user or root, or start stoad with --socket-group"}})
	})}
	go srv.Serve(ln)
	defer srv.Close()
	file := filepath.Join(dir, "passwd")
	os.WriteFile(file, []byte("x"), 0o644)

	for _, tc := range []struct {
		socket  string
		code    int
		want    string
		notWant string
	}{
		{refusing, ExitForbidden, "--socket-group", "is stoad running"},
		{file, ExitUnreachable, "it is a regular file, not a socket", "start it with"},
		{filepath.Join(dir, "none.sock"), ExitUnreachable, "start it with: stoad --socket " + filepath.Join(dir, "none.sock"), ""},
	} {
		var out, errb bytes.Buffer
		code := Run(context.Background(), []string{"--socket", tc.socket, "status"}, &IOStreams{Out: &out, ErrOut: &errb})
		if code != tc.code || !strings.Contains(errb.String(), tc.want) || (tc.notWant != "" && strings.Contains(errb.String(), tc.notWant)) {
			t.Errorf("--socket %s: exit %d, stderr %q; want exit %d with %q", tc.socket, code, errb.String(), tc.code, tc.want)
		}
	}
}

// TestKeysRotateExpiry: rotate sends --expires to stoad; without it the
// lifetime is left to stoad (which renews the old key's lifetime).
func TestKeysRotateExpiry(t *testing.T) {
	fa := newFakeAPI(t)
	if code, out, errOut := fa.run("keys", "rotate", "k3v7q2m4x5c6b7n2", "--grace", "1h"); code != 0 || !strings.Contains(out, "stoa_sk_n3wn") ||
		!strings.Contains(errOut, "expires ") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	if code, _, errOut := fa.run("keys", "rotate", "k3v7q2m4x5c6b7n2", "--expires", "30d"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if len(fa.rotate) != 2 || fa.rotate[0] != (api.KeyRotateRequest{Grace: "1h"}) || fa.rotate[1] != (api.KeyRotateRequest{ExpiresIn: "30d"}) {
		t.Fatalf("rotate requests %+v", fa.rotate)
	}
}

// TestDynamicCompletion: completions come from stoad, and stay quiet when
// it does not answer.
func TestDynamicCompletion(t *testing.T) {
	fa := newFakeAPI(t)
	for _, tc := range []struct {
		args    []string
		want    []string
		notWant []string
	}{
		{[]string{"keys", "rotate", ""}, []string{"k3v7q2m4x5c6b7n2\tacme/web-shop"}, []string{"r3v0k3d"}},
		{[]string{"keys", "revoke", "k3"}, []string{"k3v7q2m4x5c6b7n2\tacme/web-shop"}, nil},
		{[]string{"history", ""}, []string{"3\tapply by alice (uid 1000), current: initial", "2\tdelete by bob"}, nil},
		{[]string{"rollback", ""}, []string{"2\tdelete by bob"}, nil},
		{[]string{"get", ""}, []string{"tools", "all"}, nil},
		{[]string{"get", "tool", "-n", "acme", ""}, []string{"billing-api", "inventory-api"}, []string{"weather"}},
		{[]string{"get", "tool", "b"}, []string{"billing-api\ttenant acme"}, []string{"inventory"}},
		{[]string{"delete", "tool", "-n", "globex", ""}, []string{"weather-api"}, []string{"billing"}},
		{[]string{"get", "tools", "-n", ""}, []string{"acme", "globex"}, nil},
		{[]string{"status", "-o", ""}, []string{"table", "wide", "yaml", "json", "ndjson"}, nil},
		{[]string{"webhooks", "deliveries", "--state", ""}, []string{"pending", "failed"}, nil},
	} {
		_, out, _ := fa.run(append([]string{"__complete"}, tc.args...)...)
		for _, w := range tc.want {
			if !strings.Contains(out, w+"\n") {
				t.Errorf("complete %q lacks %q:\n%s", tc.args, w, out)
			}
		}
		for _, w := range tc.notWant {
			if strings.Contains(out, w) {
				t.Errorf("complete %q offers %q:\n%s", tc.args, w, out)
			}
		}
	}
	// No stoad: no candidates, no error, no hang.
	var out, errb bytes.Buffer
	code := Run(context.Background(), []string{"--socket", filepath.Join(t.TempDir(), "none.sock"), "__complete", "keys", "rotate", ""},
		&IOStreams{Out: &out, ErrOut: &errb})
	if code != 0 || strings.TrimSpace(out.String()) != ":4" {
		t.Fatalf("without stoad: exit %d, %q", code, out.String())
	}
}
