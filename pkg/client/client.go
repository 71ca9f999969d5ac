// Package client talks to stoad's LocalAPI over its unix socket. Errors are
// typed so the CLI can map them to exit codes and print hints: a daemon that
// is not running is an *UnreachableError, an API failure an *api.Error.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
)

// Client is a LocalAPI client over the unix socket. Its API methods are
// the routes every transport shares (routes.go).
type Client struct {
	routes
	socket string
	hc     *http.Client
}

var _ transport = (*Client)(nil)

// UnreachableError means no stoad answered on the socket.
type UnreachableError struct {
	Socket string
	Err    error
	// Problem says why, when the socket path itself is the problem:
	// missing, stale, or not a socket at all.
	Problem SocketProblem
	// Detail describes what is at the path when it is not a socket
	// ("a regular file", "a directory").
	Detail string
	// Flags name the socket in hints: stoad's flag and the client's flag
	// or variable. Empty means the LocalAPI's (--socket, STOA_SOCKET).
	StoadFlag, ClientFlags string
}

// SocketProblem classifies an unusable socket path.
type SocketProblem int

// The socket problems UnreachableError distinguishes.
const (
	SocketOther     SocketProblem = iota // anything else (timeouts, I/O errors)
	SocketMissing                        // nothing at the path (ENOENT)
	SocketStale                          // a socket file nobody listens on
	SocketNotSocket                      // the path is a file, directory, … — not a socket
	SocketBadPath                        // the path cannot name a socket (a file on the way, a loop)
)

func (e *UnreachableError) Error() string {
	if e.Problem == SocketNotSocket {
		return fmt.Sprintf("cannot reach stoad at %s: it is %s, not a socket", e.Socket, e.Detail)
	}
	return fmt.Sprintf("cannot reach stoad at %s: %v", e.Socket, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// Hint tells the user how to fix it. Starting stoad is suggested only where
// stoad could create its socket: nothing is there yet, or a stale socket
// (stoad replaces those) — never over an existing file such as /etc/passwd.
func (e *UnreachableError) Hint() string {
	stoadFlag, clientFlags := e.StoadFlag, e.ClientFlags
	if stoadFlag == "" {
		stoadFlag, clientFlags = "--socket", "--socket or "+api.SocketEnv
	}
	elsewhere := fmt.Sprintf("point stoa at stoad's socket with %s", clientFlags)
	switch e.Problem {
	case SocketMissing, SocketStale:
		return fmt.Sprintf("is stoad running? start it with: stoad %s %s (or %s)", stoadFlag, e.Socket, elsewhere)
	case SocketNotSocket, SocketBadPath:
		return elsewhere
	}
	return "is stoad running and answering? check it with: stoa status (or " + elsewhere + ")"
}

// ForbiddenError means the socket exists but this user may not use it:
// the file's permissions refused the connection, or stoad refused the
// peer's credentials.
type ForbiddenError struct {
	Socket string
	// Owner and Mode describe the socket file ("alice (uid 1000)",
	// "srw-rw----", group "stoa (gid 990)") when it could be read.
	Owner, Group, Mode string
	Err                error
}

func (e *ForbiddenError) Error() string {
	msg := fmt.Sprintf("not allowed to use this socket %s", e.Socket)
	if e.Owner != "" {
		msg += fmt.Sprintf(" (owner %s, group %s, mode %s)", e.Owner, e.Group, e.Mode)
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *ForbiddenError) Unwrap() error { return e.Err }

// Hint tells the user how to get access.
func (e *ForbiddenError) Hint() string {
	who := "the socket's owner"
	if e.Owner != "" {
		who = e.Owner
	}
	return fmt.Sprintf("run stoa as %s (or root), or ask for membership of stoad's --socket-group", who)
}

// CheckSocket dials the unix socket at path once and returns nil when
// something accepts, else the typed error a LocalAPI call would return,
// with hints naming stoadFlag and clientFlags (for stoad's other sockets,
// such as --mcp-socket).
func CheckSocket(path, stoadFlag, clientFlags string) error {
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err == nil {
		return c.Close()
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		err = oe.Err
	}
	err = dialError(path, err)
	var ue *UnreachableError
	if errors.As(err, &ue) {
		ue.StoadFlag, ue.ClientFlags = stoadFlag, clientFlags
	}
	return err
}

// dialError turns a failed connection to path into a typed error, looking
// at what is at the path to say what is wrong.
func dialError(path string, err error) error {
	fi, serr := os.Stat(path)
	switch {
	case serr != nil && errors.Is(serr, fs.ErrNotExist):
		return &UnreachableError{Socket: path, Err: err, Problem: SocketMissing}
	case serr != nil && errors.Is(serr, fs.ErrPermission):
		return &ForbiddenError{Socket: path, Err: fmt.Errorf("cannot reach the socket's directory: %w", serr)}
	case serr != nil:
		return &UnreachableError{Socket: path, Err: serr, Problem: SocketBadPath}
	case fi.Mode().Type() != fs.ModeSocket:
		return &UnreachableError{Socket: path, Err: err, Problem: SocketNotSocket, Detail: describeFile(fi)}
	case errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM):
		fe := &ForbiddenError{Socket: path, Mode: fi.Mode().String()}
		fe.Owner, fe.Group = fileOwner(fi)
		return fe
	case errors.Is(err, syscall.ECONNREFUSED):
		return &UnreachableError{Socket: path, Err: err, Problem: SocketStale}
	}
	return &UnreachableError{Socket: path, Err: err}
}

// describeFile names what a non-socket path is, for error messages.
func describeFile(fi fs.FileInfo) string {
	switch t := fi.Mode().Type(); {
	case t == 0:
		return "a regular file"
	case t&fs.ModeDir != 0:
		return "a directory"
	case t&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case t&fs.ModeDevice != 0:
		return "a device"
	}
	return "not a socket (" + fi.Mode().String() + ")"
}

// ResolveSocket picks the socket: an explicit path wins; otherwise the
// user's default, falling back to the system socket when only that exists.
func ResolveSocket(explicit string) string {
	if explicit != "" {
		return explicit
	}
	def := api.DefaultSocket()
	if _, err := os.Stat(def); err != nil {
		if _, err := os.Stat(api.SystemSocket); err == nil {
			return api.SystemSocket
		}
	}
	return def
}

// New returns a client for the socket at path.
func New(path string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		MaxIdleConns:       4,
		IdleConnTimeout:    30 * time.Second,
		DisableCompression: true,
	}
	c := &Client{socket: path, hc: &http.Client{Transport: tr}}
	c.routes = routes{tr: c}
	return c
}

// Socket is the path this client dials.
func (c *Client) Socket() string { return c.socket }

// Endpoint is the socket path: where this client talks to, for people.
func (c *Client) Endpoint() string { return c.socket }

// Do sends a JSON request (in may be nil) and decodes a JSON answer into out
// (may be nil). It is exported for commands that use extension routes.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	return c.do(ctx, method, path, in, out)
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	resp, err := c.send(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	if l, ok := out.(*digestList); ok {
		// Read whole and given to the fast path directly: through a
		// json.Decoder it would be scanned twice first.
		b, err := io.ReadAll(resp.Body)
		if err == nil {
			err = l.UnmarshalJSON(bytes.TrimSpace(b))
		}
		if err != nil {
			return fmt.Errorf("decode stoad response to %s %s: %w", method, path, err)
		}
		return nil
	}
	if err := json.NewDecoder(bufio.NewReaderSize(resp.Body, 64<<10)).Decode(out); err != nil {
		return fmt.Errorf("decode stoad response to %s %s: %w", method, path, err)
	}
	return nil
}

func (c *Client) send(ctx context.Context, method, path string, in any) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := encodeBody(in)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://stoad"+path, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tp, ts := traceContext(); tp != "" {
		req.Header.Set("traceparent", tp)
		if ts != "" {
			req.Header.Set("tracestate", ts)
		}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Op == "dial" {
			return nil, dialError(c.socket, oe.Err)
		}
		return nil, &UnreachableError{Socket: c.socket, Err: err}
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return nil, errorFromAnswer("stoad", resp.StatusCode, resp.Status, b)
	}
	return resp, nil
}

// stream sends a GET whose answer is read as it arrives (NDJSON).
func (c *Client) stream(ctx context.Context, path string) (io.ReadCloser, error) {
	resp, err := c.send(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// Status returns the daemon's status.
func (c routes) Status(ctx context.Context) (*api.Status, error) {
	var s api.Status
	return &s, c.tr.do(ctx, http.MethodGet, api.PathStatus, nil, &s)
}

// Apply applies (or, with DryRun, plans) desired objects.
func (c routes) Apply(ctx context.Context, req *api.ApplyRequest) (*api.ApplyResponse, error) {
	var r api.ApplyResponse
	return &r, c.tr.do(ctx, http.MethodPost, api.PathApply, req, &r)
}

// ApplyEncoded is Apply with the objects already encoded as a JSON array
// (req.Objects is ignored), so callers that hold the encoding need not
// build objects twice.
func (c routes) ApplyEncoded(ctx context.Context, req *api.ApplyRequest, objects json.RawMessage) (*api.ApplyResponse, error) {
	body, err := applyBody(req, objects)
	if err != nil {
		return nil, err
	}
	var r api.ApplyResponse
	return &r, c.tr.do(ctx, http.MethodPost, api.PathApply, body, &r)
}

// Digests returns the digest of every live object.
func (c routes) Digests(ctx context.Context) (*api.DigestList, error) {
	l := &digestList{}
	return &l.DigestList, c.tr.do(ctx, http.MethodGet, api.PathDigests, nil, l)
}

// Delete deletes objects by reference.
func (c routes) Delete(ctx context.Context, req *api.DeleteRequest) (*api.ApplyResponse, error) {
	var r api.ApplyResponse
	return &r, c.tr.do(ctx, http.MethodPost, api.PathDelete, req, &r)
}

// Rollback returns to an earlier revision.
func (c routes) Rollback(ctx context.Context, req *api.RollbackRequest) (*api.ApplyResponse, error) {
	var r api.ApplyResponse
	return &r, c.tr.do(ctx, http.MethodPost, api.PathRollback, req, &r)
}

// Objects lists live objects; empty filters match everything.
func (c routes) Objects(ctx context.Context, kind, namespace, name string) (*api.ObjectList, error) {
	q := url.Values{}
	for k, v := range map[string]string{"kind": kind, "namespace": namespace, "name": name} {
		if v != "" {
			q.Set(k, v)
		}
	}
	p := api.PathObjects
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	var l api.ObjectList
	return &l, c.tr.do(ctx, http.MethodGet, p, nil, &l)
}

// Revisions lists revisions, newest first.
func (c routes) Revisions(ctx context.Context, limit int) (*api.RevisionList, error) {
	var l api.RevisionList
	return &l, c.tr.do(ctx, http.MethodGet, api.PathRevisions+"?limit="+strconv.Itoa(limit), nil, &l)
}

// Revision returns one revision with its changes.
func (c routes) Revision(ctx context.Context, id int64) (*api.Revision, error) {
	var r api.Revision
	return &r, c.tr.do(ctx, http.MethodGet, api.PathRevisions+"/"+strconv.FormatInt(id, 10), nil, &r)
}

// EventsOptions select which events to read.
type EventsOptions struct {
	Since  int64 // events after this sequence number
	Last   int   // or the last N events
	Follow bool  // keep streaming new events
	// Connected, when set, runs once stoad has accepted the stream and
	// before any event is read: with Follow, every change after this
	// moment arrives on the stream (stoad subscribes before it answers).
	Connected func() error
}

// Events streams events to fn until the stream ends, ctx is cancelled or
// fn returns an error.
func (c routes) Events(ctx context.Context, o EventsOptions, fn func(api.Event) error) error {
	q := url.Values{}
	if o.Since > 0 {
		q.Set("since", strconv.FormatInt(o.Since, 10))
	}
	if o.Last > 0 {
		q.Set("last", strconv.Itoa(o.Last))
	}
	if o.Follow {
		q.Set("follow", "1")
	}
	body, err := c.tr.stream(ctx, api.PathEvents+"?"+q.Encode())
	if err != nil {
		return err
	}
	defer body.Close()
	if o.Connected != nil {
		if err := o.Connected(); err != nil {
			return err
		}
	}
	return DecodeNDJSON(body, fn)
}

// DecodeNDJSON reads newline-delimited JSON values of type T, skipping
// blank keep-alive lines.
func DecodeNDJSON[T any](r io.Reader, fn func(T) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var v T
		if err := json.Unmarshal(line, &v); err != nil {
			return fmt.Errorf("decode stream: %w", err)
		}
		if err := fn(v); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
