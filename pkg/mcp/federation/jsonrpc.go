package federation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"syscall"
)

// Errors a call can return. Their text is meant for the model (through an
// isError result): it names the upstream by its Tool, never its address or
// credential. Status().LastError keeps the detailed cause for operators.
var (
	// ErrUnavailable: the upstream is down, starting or restarting; calls
	// fail at once instead of waiting for it.
	ErrUnavailable = errors.New("upstream unavailable")
	// ErrTimeout: no answer within the configured timeout.
	ErrTimeout = errors.New("upstream timed out")
	// ErrUnknownTool: the name is not one of the upstream's exposed tools (or
	// resources): hidden by a filter, or gone since the last list.
	ErrUnknownTool = errors.New("unknown tool")
	// ErrInputRequired: the upstream asked for client input (elicitation,
	// sampling: a 2026-07-28 input_required result, or a server request),
	// which a federated call cannot provide.
	ErrInputRequired = errors.New("upstream asked for client input")
)

// RPCError is a JSON-RPC error answered by the upstream (for example -32602
// for invalid arguments). Its message is the upstream's.
type RPCError struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

func (e *RPCError) Error() string {
	return "upstream error " + strconv.Itoa(e.Code) + ": " + e.Message
}

// callError is what Call returns for a failed exchange: a short
// model-facing message wrapping one of the sentinel errors, with the
// detailed cause kept for logs.
type callError struct {
	kind   error  // ErrUnavailable, ErrTimeout, ...
	public string // safe for the model
	cause  error  // detail for operators
}

func (e *callError) Error() string   { return e.public }
func (e *callError) Unwrap() []error { return []error{e.kind, e.cause} }

// message is one JSON-RPC message read from an upstream.
type message struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  *RPCError       `json:"error"`
}

func (m *message) isResponse() bool { return m.Method == "" && len(m.ID) > 0 }
func (m *message) isRequest() bool  { return m.Method != "" && len(m.ID) > 0 && string(m.ID) != "null" }

// appendRequest encodes a JSON-RPC request; params is an encoded object or
// nil.
func appendRequest(b []byte, id int64, method string, params []byte) []byte {
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, `,"method":`...)
	b = strconv.AppendQuote(b, method) // method names are ASCII
	if params != nil {
		b = append(b, `,"params":`...)
		b = append(b, params...)
	}
	return append(b, '}')
}

func appendNotification(b []byte, method string, params []byte) []byte {
	b = append(b, `{"jsonrpc":"2.0","method":`...)
	b = strconv.AppendQuote(b, method)
	if params != nil {
		b = append(b, `,"params":`...)
		b = append(b, params...)
	}
	return append(b, '}')
}

// replyTo answers a server-to-client request: ping gets {}, everything else
// (sampling, elicitation, roots: none advertised) method-not-found.
func replyTo(m *message) []byte {
	b := []byte(`{"jsonrpc":"2.0","id":`)
	b = append(b, m.ID...)
	if m.Method == "ping" {
		return append(b, `,"result":{}}`...)
	}
	b = append(b, `,"error":{"code":-32601,"message":"stoa federation does not handle `...)
	b = append(b, jsonEscapeASCII(m.Method)...)
	return append(b, `"}}`...)
}

// jsonEscapeASCII keeps only characters that need no JSON escaping.
func jsonEscapeASCII(s string) string {
	var out []byte
	for i := 0; i < len(s) && i < 64; i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			out = append(out, c)
		}
	}
	return string(out)
}

// idEquals reports whether the raw JSON id is the integer id.
func idEquals(raw json.RawMessage, id int64) bool {
	raw = bytes.TrimSpace(raw)
	var buf [20]byte
	return bytes.Equal(raw, strconv.AppendInt(buf[:0], id, 10))
}

// cancelledParams is notifications/cancelled's params for request id.
func cancelledParams(id int64, reason string) []byte {
	b := []byte(`{"requestId":`)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, `,"reason":`...)
	b = strconv.AppendQuote(b, reason)
	return append(b, '}')
}

// resultOf turns a response into its result or error.
func resultOf(m *message) (json.RawMessage, error) {
	if m.Error != nil {
		return nil, m.Error
	}
	if len(m.Result) == 0 || m.Result[0] != '{' {
		return nil, fmt.Errorf("upstream answered without a result object")
	}
	return m.Result, nil
}

// describe reduces a transport error to a short cause safe for the model
// (no address, no URL).
func describe(err error) string {
	var ne net.Error
	var oe *net.OpError
	var dnsErr *net.DNSError
	switch {
	case err == nil:
		return ""
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection reset"
	case errors.As(err, &dnsErr):
		return "host name lookup failed"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	case errors.Is(err, os.ErrNotExist):
		return "command not found"
	case errors.As(err, &oe):
		return oe.Op + " failed"
	}
	var se *statusError
	if errors.As(err, &se) {
		return se.short()
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.Error()
	}
	return "request failed"
}

// statusError is an HTTP answer that is not a JSON-RPC message.
type statusError struct {
	code int
	body string
}

func (e *statusError) Error() string {
	s := "HTTP " + strconv.Itoa(e.code)
	if e.body != "" {
		s += ": " + e.body
	}
	return s
}

func (e *statusError) short() string {
	switch e.code {
	case 401, 403:
		return "the upstream refused stoad's credential (HTTP " + strconv.Itoa(e.code) + ")"
	}
	return "HTTP " + strconv.Itoa(e.code)
}

// exitError says a stdio child exited.
type exitError struct{ err error }

func (e *exitError) Error() string { return "upstream process exited (" + e.err.Error() + ")" }
func (e *exitError) Unwrap() error { return e.err }
