package proxy

import (
	"encoding/json"
	"io"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// accessLogger writes one JSON line per request when the Gateway enables
// it. It records the path without the query string (which may carry
// secrets) and never a header value.
type accessLogger struct {
	mu sync.Mutex
	w  io.Writer
}

func newAccessLogger(w io.Writer) *accessLogger { return &accessLogger{w: w} }

type accessEntry struct {
	Time      time.Time `json:"time"`
	RequestID string    `json:"requestId"`
	Client    string    `json:"client"`
	Method    string    `json:"method"`
	Path      string    `json:"path"`
	Tenant    string    `json:"tenant"`
	Tool      string    `json:"tool"`
	Consumer  string    `json:"consumer,omitempty"`
	Status    int       `json:"status"`
	Bytes     int       `json:"bytes"`
	Millis    float64   `json:"ms"`
}

func (a *accessLogger) log(ctx *fasthttp.RequestCtx, r *Route, status int, d time.Duration, reqID []byte) {
	e := accessEntry{
		Time: ctx.Time().UTC(), RequestID: string(reqID), Client: clientAddr(ctx).String(),
		Method: string(ctx.Method()), Path: string(ctx.URI().Path()),
		Tenant: r.Tenant, Tool: r.Tool, Consumer: string(ctx.Request.Header.Peek(hdrConsumer)),
		Status: status, Bytes: bodyBytes(&ctx.Response), Millis: float64(d.Microseconds()) / 1000,
	}
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	b = append(b, '\n')
	a.mu.Lock()
	_, _ = a.w.Write(b)
	a.mu.Unlock()
}

// bodyBytes is the response body's length. The line is written before a
// streamed body is sent, and Body() would read it whole into memory: its
// declared length is logged instead (0 when it has none).
func bodyBytes(r *fasthttp.Response) int {
	if r.IsBodyStream() {
		return max(0, r.Header.ContentLength())
	}
	return len(r.Body())
}
