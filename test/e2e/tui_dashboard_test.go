package e2e

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/vt"
	"github.com/creack/pty"
)

// ttyScreen runs a program in a pseudo-terminal and keeps a virtual
// terminal's screen of what it draws (answering the program's terminal
// queries as a real terminal would).
type ttyScreen struct {
	t    *testing.T
	cmd  *exec.Cmd
	ptmx *os.File
	vt   *vt.SafeEmulator
	done chan error
}

func startTTY(t *testing.T, cols, rows int, env []string, name string, args ...string) *ttyScreen {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: uint16(cols), Rows: uint16(rows)})
	if err != nil {
		t.Fatalf("start %s in a pty: %v", name, err)
	}
	s := &ttyScreen{t: t, cmd: cmd, ptmx: ptmx, vt: vt.NewSafeEmulator(cols, rows), done: make(chan error, 1)}
	go io.Copy(s.vt, ptmx) // what the program draws
	go io.Copy(ptmx, s.vt) // the terminal's answers to its queries
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		ptmx.Close()
	})
	return s
}

// Screen is the terminal's text, one line per row, without styles.
func (s *ttyScreen) Screen() string {
	lines := strings.Split(ansi.Strip(s.vt.Render()), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}

// WaitFor polls the screen until ok accepts it.
func (s *ttyScreen) WaitFor(what string, timeout time.Duration, ok func(screen string) bool) string {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		scr := s.Screen()
		if ok(scr) {
			return scr
		}
		select {
		case err := <-s.done:
			s.t.Fatalf("%s: the program exited (%v); screen:\n%s", what, err, scr)
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: not on screen after %v; screen:\n%s", what, timeout, scr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *ttyScreen) WaitText(timeout time.Duration, texts ...string) string {
	s.t.Helper()
	return s.WaitFor(strings.Join(texts, ", "), timeout, func(scr string) bool {
		for _, x := range texts {
			if !strings.Contains(scr, x) {
				return false
			}
		}
		return true
	})
}

func (s *ttyScreen) Type(keys string) {
	s.t.Helper()
	if _, err := s.ptmx.Write([]byte(keys)); err != nil {
		s.t.Fatal(err)
	}
}

func (s *ttyScreen) Resize(cols, rows int) {
	s.t.Helper()
	s.vt.Resize(cols, rows)
	if err := pty.Setsize(s.ptmx, &pty.Winsize{Cols: uint16(cols), Rows: uint16(rows)}); err != nil {
		s.t.Fatal(err)
	}
}

var totalRe = regexp.MustCompile(`total (\S+)`)

// TestDashboardInTerminal runs the real `stoa dashboard` in an 80×24
// pseudo-terminal against a real stoad under light load: tool names and
// changing figures appear, keys sort, filter and open a tool, it survives
// a stoad restart, resizes, and q quits restoring the terminal.
func TestDashboardInTerminal(t *testing.T) {
	e := newMCPEnv(t, 0, nil)
	startLoad(t, e, 30)
	s := startTTY(t, 80, 24, []string{"STOA_SOCKET=" + e.D.Socket, "TERM=xterm-256color"}, filepath.Join(binDir, "stoa"), "dashboard")

	start := time.Now()
	scr := s.WaitText(15*time.Second, "● live", "billing-api", "inventory-api", "weather-api", "acme", "globex")
	t.Logf("first screen with tools after %v", time.Since(start))
	if !s.vt.IsAltScreen() {
		t.Error("the dashboard should draw on the alternate screen")
	}
	// Figures change from sample to sample.
	first := totalRe.FindStringSubmatch(scr)
	if first == nil {
		t.Fatalf("no totals in the header:\n%s", scr)
	}
	scr = s.WaitFor("a changed total", 10*time.Second, func(scr string) bool {
		m := totalRe.FindStringSubmatch(scr)
		return m != nil && m[1] != first[1]
	})
	if p := os.Getenv("STOA_DASHBOARD_CAPTURE"); p != "" {
		os.WriteFile(p, []byte(scr+"\n"), 0o644)
	}
	t.Logf("80×24 screen:\n%s", scr)

	// Sort, filter, open a tool, go back.
	s.Type("s")
	s.WaitText(5*time.Second, "sort: req/s")
	s.Type("/weath")
	scr = s.WaitText(5*time.Second, "filter: /weath")
	if strings.Contains(scr, "billing-api") {
		t.Fatalf("the filter should hide billing-api:\n%s", scr)
	}
	s.Type("\r") // keep the filter
	s.Type("\r") // open the selected (only) tool
	s.WaitText(5*time.Second, "globex / weather-api", "UPSTREAMS", "/weather", "esc back")
	s.Type("\x1b")
	s.WaitText(5*time.Second, "TENANT / TOOL", "filter: weath")
	s.Type("\x1b") // clear the filter
	s.WaitText(5*time.Second, "billing-api", "weather-api")

	// stoad restarts: the dashboard says so and resumes.
	e.D.Stop()
	s.WaitText(30*time.Second, "reconnecting…")
	e.D.Start()
	scr = s.WaitText(30*time.Second, "● live", "billing-api")
	if strings.Contains(scr, "reconnecting") {
		t.Fatalf("still reconnecting:\n%s", scr)
	}

	// A bigger terminal shows more columns.
	s.Resize(140, 40)
	s.WaitText(10*time.Second, "TOTAL", "REQ/S (5 MIN)")
	s.Resize(80, 24)
	s.WaitFor("the 80-column layout", 10*time.Second, func(scr string) bool {
		return !strings.Contains(scr, "REQ/S (5 MIN)") && strings.Contains(scr, "billing-api")
	})

	// q quits and restores the terminal.
	s.Type("q")
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("dashboard exit: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("q did not quit; screen:\n%s", s.Screen())
	}
	time.Sleep(100 * time.Millisecond)
	if s.vt.IsAltScreen() {
		t.Error("the alternate screen is still active after quitting")
	}
}
