package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
)

// liveObjects is `stoa get all -o json`, keyed by ref, for comparing states.
func liveObjects(t *testing.T, d *Daemon) map[string]string {
	t.Helper()
	r := d.Stoa("get", "all", "-o", "json")
	expect(t, r, 0, "get all -o json")
	var list struct {
		APIVersion, Kind string
		Items            []json.RawMessage
	}
	if err := json.Unmarshal([]byte(r.Stdout), &list); err != nil || list.Kind != "List" {
		t.Fatalf("get all -o json: %v\n%s", err, r.Stdout)
	}
	out := map[string]string{}
	for _, it := range list.Items {
		var o struct {
			Kind     string
			Metadata struct{ Name, Namespace string }
		}
		json.Unmarshal(it, &o)
		out[o.Kind+"/"+o.Metadata.Namespace+"/"+o.Metadata.Name] = string(it)
	}
	return out
}

// TestExportRoundTrip: an export of the quickstart applies back with no
// change, validates offline, and rebuilds the same state after everything
// was deleted.
func TestExportRoundTrip(t *testing.T) {
	d := NewDaemon(t)
	d.Start()
	expect(t, d.Stoa("apply", "-f", quickstart), 0, "apply")
	before := liveObjects(t, d)

	file := filepath.Join(t.TempDir(), "export.yaml")
	r := d.Stoa("export", "-A", "-o", file)
	expect(t, r, 0, "export")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, dflt := range []string{"connect: 2s", "circuitBreaker", "readOnly: true", "pathPrefix"} {
		if strings.Contains(string(b), dflt) {
			t.Errorf("export holds the default %q:\n%s", dflt, b)
		}
	}
	r = d.Stoa("diff", "-f", file)
	expect(t, r, 0, "diff -f export")
	if strings.TrimSpace(r.Stdout) != "" {
		t.Fatalf("diff of the export shows changes:\n%s", r)
	}
	expect(t, d.Stoa("validate", "-f", file), 0, "validate export")

	// One file per tenant applies the same.
	dir := filepath.Join(t.TempDir(), "backup")
	expect(t, d.Stoa("export", "-f", dir), 0, "export -f DIR")
	r = d.Stoa("diff", "-f", dir)
	expect(t, r, 0, "diff -f DIR")

	expect(t, d.Stoa("delete", "-f", file), 0, "delete everything")
	if got := liveObjects(t, d); len(got) != 0 {
		t.Fatalf("after delete: %d objects left", len(got))
	}
	expect(t, d.Stoa("apply", "-f", file), 0, "apply the export")
	after := liveObjects(t, d)
	if len(after) != len(before) {
		t.Fatalf("%d objects after the round trip, %d before", len(after), len(before))
	}
	for ref, o := range before {
		if after[ref] != o {
			t.Errorf("%s differs after the round trip:\nbefore %s\nafter  %s", ref, o, after[ref])
		}
	}
}

// TestKeyRotationKeepsLifetime: a rotated key gets the old key's lifetime
// again, from the rotation; --expires overrides it; no expiry stays none.
func TestKeyRotationKeepsLifetime(t *testing.T) {
	d := NewDaemon(t)
	d.Start()
	expect(t, d.Stoa("apply", "-f", quickstart), 0, "apply")
	var created api.KeyCreateResponse
	jsonOut(t, d, &created, "keys", "create", "--consumer", "web-shop", "-n", "acme", "--expires", "90d")
	var rot api.KeyRotateResponse
	jsonOut(t, d, &rot, "keys", "rotate", created.Info.ID)
	if life := rot.New.ExpiresAt.Sub(rot.New.CreatedAt); life != 90*24*time.Hour {
		t.Fatalf("rotated key lives %v, want 90 days (old key: %v to %v)", life, created.Info.CreatedAt, created.Info.ExpiresAt)
	}
	var rot2 api.KeyRotateResponse
	jsonOut(t, d, &rot2, "keys", "rotate", rot.New.ID, "--expires", "7d")
	if life := rot2.New.ExpiresAt.Sub(rot2.New.CreatedAt); life != 7*24*time.Hour {
		t.Fatalf("--expires 7d: key lives %v", life)
	}
	var rot3 api.KeyRotateResponse
	jsonOut(t, d, &rot3, "keys", "rotate", rot2.New.ID, "--expires", "never")
	if !rot3.New.ExpiresAt.IsZero() {
		t.Fatalf("--expires never: key expires %v", rot3.New.ExpiresAt)
	}
	var rot4 api.KeyRotateResponse
	jsonOut(t, d, &rot4, "keys", "rotate", rot3.New.ID)
	if !rot4.New.ExpiresAt.IsZero() {
		t.Fatalf("a key without expiry was rotated to one expiring %v", rot4.New.ExpiresAt)
	}
	r := d.Stoa("keys", "rotate", rot4.New.ID, "--expires", "soon")
	expect(t, r, 1, "bad --expires")
	if !strings.Contains(r.Stderr, `bad expiry "soon"`) {
		t.Fatalf("bad --expires:\n%s", r)
	}
}

// TestGetWatchLive: stoa get --watch follows real applies.
func TestGetWatchLive(t *testing.T) {
	d := NewDaemon(t)
	d.Start()
	expect(t, d.Stoa("apply", "-f", quickstart), 0, "apply")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "stoa"), "get", "subscriptions", "-n", "acme", "--watch", "-o", "json")
	cmd.Env = append(os.Environ(), "STOA_SOCKET="+d.Socket)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	lines := make(chan string, 16)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	next := func(what string) map[string]any {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("%s: the watch ended", what)
			}
			var e map[string]any
			if err := json.Unmarshal([]byte(l), &e); err != nil {
				t.Fatalf("%s: line %q: %v", what, l, err)
			}
			return e
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: nothing within 30s", what)
		}
		return nil
	}
	if e := next("initial list"); e["type"] != "ADDED" {
		t.Fatalf("first line %v", e)
	}
	expect(t, d.Stoa("delete", "subscription", "web-shop-tools", "-n", "acme"), 0, "delete")
	e := next("the delete")
	if e["type"] != "DELETED" || e["revision"].(float64) != 2 {
		t.Fatalf("after the delete: %v", e)
	}
	// stoad stopping ends the watch with exit 5.
	d.Stop()
	for range lines {
	}
	if err := cmd.Wait(); err == nil || cmd.ProcessState.ExitCode() != 5 {
		t.Fatalf("watch after stoad stopped: %v", err)
	}
}

// TestSocketPermissions: a user the socket's mode keeps out is told so
// (exit 4, with the socket's owner and mode), as is a user stoad itself
// refuses by its peer credentials — never "is stoad running?".
func TestSocketPermissions(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs stoa as another user (nobody) against root's stoad")
	}
	d := NewDaemon(t)
	d.Start()
	// nobody must reach the socket's directory and run the binary.
	for _, p := range []string{filepath.Dir(d.Socket), binDir} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	asNobody := func(args ...string) Result {
		cmd := exec.Command(filepath.Join(binDir, "stoa"), args...)
		cmd.Env = []string{"STOA_SOCKET=" + d.Socket, "PATH=/usr/bin:/bin"}
		cmd.Dir = "/"
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("run stoa as nobody: %v", err)
		}
		return Result{Code: code, Stdout: out.String(), Stderr: errb.String()}
	}
	r := asNobody("status")
	expect(t, r, 4, "status as nobody (socket mode 0600)")
	if !strings.Contains(r.Stderr, "not allowed to use this socket "+d.Socket+" (owner root (uid 0)") ||
		!strings.Contains(r.Stderr, "mode Srw-------") || strings.Contains(r.Stderr, "is stoad running") {
		t.Fatalf("status as nobody:\n%s", r)
	}
	// Open the file's mode: stoad's own check of the peer refuses next.
	if err := os.Chmod(d.Socket, 0o666); err != nil {
		t.Fatal(err)
	}
	r = asNobody("status")
	expect(t, r, 4, "status as nobody (stoad refuses the peer)")
	if !strings.Contains(r.Stderr, "uid 65534 may not use this stoad") || !strings.Contains(r.Stderr, "--socket-group") {
		t.Fatalf("status as nobody:\n%s", r)
	}
}

// TestStoadRejectsBadEnumFlags: stoad does not start on a mistyped enum.
func TestStoadRejectsBadEnumFlags(t *testing.T) {
	for _, args := range [][]string{{"--log-level", "loud"}, {"--log-format", "jsno"}} {
		cmd := exec.Command(filepath.Join(binDir, "stoad"), append(args, "--state-dir", t.TempDir())...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "want ") {
			t.Fatalf("stoad %v: %v\n%s", args, err, out)
		}
	}
}
