package federation

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Stop grace periods (2025-11-25 lifecycle.mdx "Shutdown", stdio: close the
// child's stdin, wait, SIGTERM, wait, SIGKILL).
const (
	stdinGrace = 2 * time.Second
	termGrace  = 2 * time.Second
)

// stderrLinesPerSecond caps how many stderr lines of a child are logged; a
// crash-looping or chatty server must not flood stoad's log.
const stderrLinesPerSecond = 50

// baseEnv are the variables of stoad every child gets (when set).
var baseEnv = []string{"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR"}

// stdioTransport runs the upstream as a child process and speaks
// newline-delimited JSON-RPC over its stdin/stdout (2025-11-25
// transports.mdx "stdio"). stderr lines go to the log.
type stdioTransport struct {
	cfg        *Config
	hk         hooks
	clientInfo []byte
	secrets    func(*EnvVar) (string, error)
	maxMessage int

	mu     sync.Mutex
	proc   *process
	closed bool
}

// process is one run of the child.
type process struct {
	t      *stdioTransport
	cmd    *exec.Cmd
	pgid   int
	stdin  *os.File
	wmu    sync.Mutex
	nextID atomic.Int64

	mu      sync.Mutex
	pending map[int64]chan *message
	exited  chan struct{} // closed when the child exited and its pipes drained
	exitErr error
	lastErr string // last stderr line, for the exit error
	stopped atomic.Bool
}

func newStdioTransport(cfg *Config, opts *Options, hk hooks) *stdioTransport {
	return &stdioTransport{cfg: cfg, hk: hk, clientInfo: opts.clientInfo(), secrets: opts.resolveEnv, maxMessage: opts.maxMessage()}
}

func (t *stdioTransport) pid() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.proc == nil || t.proc.cmd.Process == nil {
		return 0
	}
	return t.proc.cmd.Process.Pid
}

func (t *stdioTransport) current() *process {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.proc
}

// env builds the child's environment: the base allow-list and InheritEnv
// from stoad's environment, then Env.
func (t *stdioTransport) env() ([]string, error) {
	var env []string
	seen := map[string]bool{}
	for _, name := range append(append([]string(nil), baseEnv...), t.cfg.InheritEnv...) {
		if v, ok := os.LookupEnv(name); ok && !seen[name] {
			env = append(env, name+"="+v)
			seen[name] = true
		}
	}
	if !seen["PATH"] {
		env = append(env, "PATH=/usr/local/bin:/usr/bin:/bin")
	}
	for i := range t.cfg.Env {
		e := &t.cfg.Env[i]
		v := e.Value
		if e.SecretRef != nil {
			s, err := t.secrets(e)
			if err != nil {
				return nil, fmt.Errorf("env %s: %w", e.Name, err)
			}
			v = s
		}
		env = append(env, e.Name+"="+v)
	}
	return env, nil
}

// lookPath resolves a command name without '/' in the child's PATH.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("command %q not found in PATH %q: %w", name, path, os.ErrNotExist)
}

func (t *stdioTransport) connect(ctx context.Context) (handshake, error) {
	if old := t.current(); old != nil {
		old.stop(ctx)
	}
	p, err := t.start()
	if err != nil {
		return handshake{}, err
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		p.stop(ctx)
		return handshake{}, errors.New("upstream closed")
	}
	t.proc = p
	t.mu.Unlock()

	raw, err := p.call(ctx, "initialize", initializeParams(VersionLegacy, t.clientInfo))
	if err != nil {
		p.stop(ctx)
		return handshake{}, fmt.Errorf("initialize: %w", err)
	}
	var res initializeResult
	if err := json.Unmarshal(raw, &res); err != nil {
		p.stop(ctx)
		return handshake{}, fmt.Errorf("initialize: decode result: %w", err)
	}
	// stdio predates Streamable HTTP, so 2024-11-05 servers are fine here.
	if !contains(legacyVersions, res.ProtocolVersion) && res.ProtocolVersion != "2024-11-05" {
		p.stop(ctx)
		return handshake{}, fmt.Errorf("initialize: the upstream answered protocol version %q; stoa speaks %s", res.ProtocolVersion, strings.Join(legacyVersions, ", "))
	}
	if err := p.write(appendNotification(nil, "notifications/initialized", nil)); err != nil {
		p.stop(ctx)
		return handshake{}, fmt.Errorf("notifications/initialized: %w", err)
	}
	return res.handshake(res.ProtocolVersion, false), nil
}

// start launches the child in its own process group, limited, with the
// allow-listed environment.
func (t *stdioTransport) start() (*process, error) {
	env, err := t.env()
	if err != nil {
		return nil, err
	}
	path, err := lookPath(t.cfg.Command[0], env)
	if err != nil {
		return nil, err
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		outR.Close()
		outW.Close()
		return nil, err
	}
	cmd := &exec.Cmd{
		Path:        path,
		Args:        append([]string(nil), t.cfg.Command...),
		Env:         env,
		Dir:         t.cfg.Dir,
		Stdin:       inR,
		Stdout:      outW,
		Stderr:      errW,
		SysProcAttr: sysProcAttr(),
	}
	err = cmd.Start()
	// The child holds its own copies; closing ours makes EOF on stdout mean
	// "every process of the group closed it".
	inR.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		errR.Close()
		return nil, fmt.Errorf("start %s: %w", t.cfg.Command[0], err)
	}
	p := &process{
		t:       t,
		cmd:     cmd,
		pgid:    cmd.Process.Pid,
		stdin:   inW,
		pending: map[int64]chan *message{},
		exited:  make(chan struct{}),
	}
	if err := applyLimits(cmd.Process.Pid, t.cfg.Limits); err != nil {
		p.kill()
		cmd.Wait()
		inW.Close()
		outR.Close()
		errR.Close()
		return nil, fmt.Errorf("limit %s: %w", t.cfg.Command[0], err)
	}
	t.hk.log.Info("mcp upstream process started", "pid", cmd.Process.Pid, "command", t.cfg.Command[0])
	readerDone := make(chan struct{})
	stderrDone := make(chan struct{})
	go func() { p.readStdout(outR); close(readerDone) }()
	go func() { p.readStderr(errR); close(stderrDone) }()
	go func() {
		werr := cmd.Wait()
		// Children of the child may still hold the pipes: the group goes
		// with its leader.
		p.kill()
		for _, done := range []chan struct{}{readerDone, stderrDone} {
			select {
			case <-done:
			case <-time.After(time.Second):
				// Something outside the group (setsid) holds the pipe.
				outR.Close()
				errR.Close()
				<-done
			}
		}
		outR.Close()
		errR.Close()
		inW.Close()
		if werr == nil {
			werr = errors.New("exit status 0")
		}
		p.mu.Lock()
		if p.lastErr != "" {
			werr = fmt.Errorf("%w; last stderr line: %s", werr, p.lastErr)
		}
		p.exitErr = &exitError{err: werr}
		pending := p.pending
		p.pending = nil
		p.mu.Unlock()
		close(p.exited)
		for _, ch := range pending {
			close(ch)
		}
		if !p.stopped.Load() {
			t.hk.log.Warn("mcp upstream process exited", "pid", p.pgid, "error", werr.Error())
			t.hk.down(p.exitErr)
		}
	}()
	return p, nil
}

// kill ends the whole process group.
func (p *process) kill() { syscall.Kill(-p.pgid, syscall.SIGKILL) }

// stop shuts the child down: close stdin, SIGTERM to the group, SIGKILL to
// the group, each after a grace period.
func (p *process) stop(ctx context.Context) {
	if !p.stopped.CompareAndSwap(false, true) {
		<-p.exited
		return
	}
	p.wmu.Lock()
	p.stdin.Close()
	p.wmu.Unlock()
	wait := func(d time.Duration) bool {
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case <-p.exited:
			return true
		case <-timer.C:
		case <-ctx.Done():
		}
		return false
	}
	if wait(stdinGrace) {
		syscall.Kill(-p.pgid, syscall.SIGKILL) // leftovers of the group
		return
	}
	syscall.Kill(-p.pgid, syscall.SIGTERM)
	if !wait(termGrace) {
		p.kill()
	}
	<-p.exited
}

func (p *process) write(line []byte) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	line = append(line, '\n')
	_, err := p.stdin.Write(line)
	return err
}

func (p *process) call(ctx context.Context, method string, params []byte) (json.RawMessage, error) {
	id := p.nextID.Add(1)
	ch := make(chan *message, 1)
	p.mu.Lock()
	if p.pending == nil {
		err := p.exitErr
		p.mu.Unlock()
		return nil, err
	}
	p.pending[id] = ch
	p.mu.Unlock()
	if err := p.write(appendRequest(nil, id, method, params)); err != nil {
		p.forget(id)
		select {
		case <-p.exited:
			return nil, p.exitErr
		default:
		}
		return nil, fmt.Errorf("write to upstream process: %w", err)
	}
	select {
	case m, ok := <-ch:
		if !ok {
			<-p.exited
			return nil, p.exitErr
		}
		return resultOf(m)
	case <-ctx.Done():
		p.forget(id)
		// The child keeps running; tell it to drop the work.
		p.write(appendNotification(nil, "notifications/cancelled", cancelledParams(id, "stoa: call timed out or was cancelled")))
		return nil, ctx.Err()
	}
}

func (p *process) forget(id int64) {
	p.mu.Lock()
	if p.pending != nil {
		delete(p.pending, id)
	}
	p.mu.Unlock()
}

// readStdout dispatches the child's messages: responses to their callers,
// notifications to the Upstream, requests answered at once.
func (p *process) readStdout(r io.Reader) {
	br := bufio.NewReaderSize(r, 64<<10)
	var long []byte
	for {
		frag, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long = append(long, frag...)
			if len(long) > p.t.maxMessage {
				p.t.hk.log.Warn("mcp upstream process wrote an over-long line; stopping it", "pid", p.pgid, "limit", p.t.maxMessage)
				p.kill()
				return
			}
			continue
		}
		line := frag
		if len(long) > 0 {
			long = append(long, frag...)
			line = long
		}
		if len(bytes.TrimSpace(line)) > 0 {
			p.dispatch(line)
		}
		long = long[:0]
		if err != nil {
			return
		}
	}
}

func (p *process) dispatch(line []byte) {
	var m message
	if err := json.Unmarshal(line, &m); err != nil {
		// Servers that print banners on stdout break the protocol; say so
		// once per line, shortened.
		p.t.hk.log.Warn("mcp upstream process wrote a non-JSON-RPC line on stdout", "pid", p.pgid, "line", excerpt(line))
		return
	}
	switch {
	case m.isResponse():
		id, err := strconv.ParseInt(string(bytes.TrimSpace(m.ID)), 10, 64)
		if err != nil {
			return
		}
		p.mu.Lock()
		ch := p.pending[id]
		delete(p.pending, id)
		p.mu.Unlock()
		if ch != nil {
			ch <- &m
		}
	case m.isRequest():
		// Not on the reader goroutine: a child blocked writing stdout would
		// never read this reply from a full stdin pipe.
		go p.write(replyTo(&m))
	case m.Method != "":
		p.t.hk.notify(m.Method)
	}
}

// readStderr logs the child's stderr line by line, at most
// stderrLinesPerSecond lines a second.
func (p *process) readStderr(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	window := time.Now()
	n, dropped := 0, 0
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" {
			continue
		}
		p.mu.Lock()
		p.lastErr = excerpt([]byte(line))
		p.mu.Unlock()
		if now := time.Now(); now.Sub(window) >= time.Second {
			if dropped > 0 {
				p.t.hk.log.Warn("mcp upstream stderr lines dropped", "pid", p.pgid, "dropped", dropped)
			}
			window, n, dropped = now, 0, 0
		}
		if n++; n > stderrLinesPerSecond {
			dropped++
			continue
		}
		p.t.hk.log.Info("mcp upstream stderr", "pid", p.pgid, "line", line)
	}
}

func (t *stdioTransport) call(ctx context.Context, r *request) (json.RawMessage, error) {
	p := t.current()
	if p == nil {
		return nil, errNotConnected
	}
	params := appendParams(make([]byte, 0, len(r.inner)+len(r.trace)+14), r)
	return p.call(ctx, r.method, params)
}

func (t *stdioTransport) close(ctx context.Context) {
	t.mu.Lock()
	p := t.proc
	t.proc = nil
	t.closed = true
	t.mu.Unlock()
	if p != nil {
		p.stop(ctx)
	}
}
