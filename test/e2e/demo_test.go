package e2e

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
)

// TestDemoCommandsPaste runs `make demo`'s script on free ports and
// pastes every command line it prints ("$ curl …", and the "Try:" curl)
// into bash -c while the demo is still serving: each must parse and do
// what its comment says.
func TestDemoCommandsPaste(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed; the demo's commands are curl lines")
	}
	// demo.sh starts bin/upstreams next to stoa and stoad.
	up := filepath.Join(binDir, "upstreams")
	if _, err := os.Stat(up); err != nil {
		build := exec.Command("go", "build", "-o", up, "./examples/upstreams")
		build.Dir = repoRoot()
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("build upstreams: %v\n%s", err, out)
		}
	}
	cmd := exec.Command("bash", filepath.Join(repoRoot(), "scripts", "demo.sh"))
	cmd.Dir = repoRoot()
	cmd.Env = append(os.Environ(), "BIN="+binDir,
		"STOA_DEMO_LISTEN="+freePort(t), "STOA_DEMO_OPS="+freePort(t), "STOA_DEMO_UPSTREAMS="+freePort(t))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		// Like Ctrl-C: the script stops stoad and the upstreams itself.
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})

	// Read until the demo says it is serving; keep the transcript.
	var (
		mu         sync.Mutex
		transcript []string
	)
	serving := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		once := sync.Once{}
		for sc.Scan() {
			mu.Lock()
			transcript = append(transcript, ansi.Strip(sc.Text()))
			mu.Unlock()
			if strings.HasPrefix(sc.Text(), "Press Ctrl-C to stop.") {
				once.Do(func() { close(serving) })
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
	}()
	select {
	case <-serving:
	case <-done:
		t.Fatalf("the demo exited early:\n%s\n--- stderr\n%s", strings.Join(transcript, "\n"), stderr.String())
	case <-time.After(120 * time.Second):
		t.Fatalf("the demo is not serving after 2 minutes:\n%s\n--- stderr\n%s", strings.Join(transcript, "\n"), stderr.String())
	}
	mu.Lock()
	lines := append([]string(nil), transcript...)
	mu.Unlock()

	var pasted []string
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "$ curl "):
			pasted = append(pasted, strings.TrimPrefix(l, "$ "))
		case strings.HasPrefix(l, "  curl "): // the "Try:" hint
			pasted = append(pasted, strings.TrimSpace(l))
		case strings.HasPrefix(l, "  STOA_SOCKET="): // needs a terminal: check it parses
			if out, err := exec.Command("bash", "-n", "-c", strings.TrimSpace(l)).CombinedOutput(); err != nil {
				t.Errorf("%q does not parse: %v\n%s", l, err, out)
			}
		}
	}
	// What each pasted line must print, in order.
	wants := [][]string{
		{`"error":"unauthorized"`, "HTTP 401"},
		{`"tenant":"acme"`, `"consumer":"web-shop"`, "HTTP 200"},
		{`"error":"forbidden"`, "HTTP 403"},
		{" 429"},
		{"HTTP/1.1 "},
		{`"invoices"`},
	}
	if len(pasted) != len(wants) {
		t.Fatalf("found %d commands to paste, want %d:\n%s", len(pasted), len(wants), strings.Join(lines, "\n"))
	}
	for i, line := range pasted {
		if !strings.Contains(line, "X-Api-Key") && i > 0 {
			t.Errorf("command %d should send the key: %s", i, line)
		}
		out, err := paste(line)
		// The demo's bursts drain the ToolSet that billing-api shares;
		// a user pasting a moment later finds it refilled: wait as
		// Retry-After says.
		for try := 0; err == nil && i != 3 && i != 4 && strings.Contains(string(out), `"error":"rate_limited"`) && try < 10; try++ {
			time.Sleep(time.Second)
			out, err = paste(line)
		}
		if err != nil {
			t.Errorf("pasted %q: %v\n%s", line, err, out)
			continue
		}
		for _, w := range wants[i] {
			if !strings.Contains(string(out), w) {
				t.Errorf("pasted %q: output lacks %q:\n%s", line, w, out)
			}
		}
	}
}

// paste runs one line as bash would from a paste.
func paste(line string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, "bash", "-c", line).CombinedOutput()
}
