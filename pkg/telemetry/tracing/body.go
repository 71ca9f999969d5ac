package tracing

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
)

// The batcher writes each export request's body, the whole OTLP
// ExportTraceServiceRequest, into a buffer it reuses, and the official
// client (otlptracehttp) sends it: the client is handed no spans (it
// marshals an empty request, a few bytes), and exportTransport, the
// RoundTripper of the client's http.Client, gives each attempt the
// batcher's body in place of that empty one. Everything else is the
// client's: the URL, the headers (User-Agent, Content-Type, the configured
// ones, Content-Encoding), retries with their backoff and Retry-After,
// the answer's status and partial success, TLS and the timeout. The
// official client marshalled each batch into a new buffer (up to about
// 0.7 MB for 2048 spans), which drove most of stoad's garbage collection
// under traced load.
//
// A buffer goes back to its pool only when nothing can read it any more:
// net/http's Transport closes a request's body when it is done with it,
// possibly in another goroutine and after RoundTrip returned, and asks
// GetBody for a new reader to resend it. Each reader holds a reference to
// the body until it is closed, the upload holds one until UploadTraces
// returns, and a reader's Read and Close exclude each other, so the
// buffer is never written while a reader is copying from it
// (TestExportBodyReuse).

// maxBodyKeep is the capacity a body buffer keeps between requests: a
// batch takes up to every shard's buffer.
const maxBodyKeep = queueShards * maxBufKeep

// bodyPool holds a few export bodies for reuse; one is in use most of the
// time, two while the transport is still closing the last request's.
type bodyPool struct{ free chan *exportBody }

func newBodyPool() bodyPool { return bodyPool{free: make(chan *exportBody, 2)} }

// exportBody is one export request's body.
type exportBody struct {
	buf  []byte
	refs atomic.Int32 // the upload's and its open readers'
	pool *bodyPool
}

func (p *bodyPool) get() *exportBody {
	var b *exportBody
	select {
	case b = <-p.free:
	default:
		b = &exportBody{pool: p}
	}
	b.refs.Store(1)
	return b
}

// release drops one reference; the last puts b back in its pool.
func (b *exportBody) release() {
	if b.refs.Add(-1) != 0 {
		return
	}
	if cap(b.buf) > maxBodyKeep {
		b.buf = nil
	}
	b.buf = b.buf[:0]
	select {
	case b.pool.free <- b:
	default:
	}
}

var errBodyClosed = errors.New("tracing: export request body read after close")

// bodyReader reads an export body; it holds a reference until closed.
type bodyReader struct {
	mu  sync.Mutex
	b   *exportBody // nil once closed
	off int
}

func (r *bodyReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.b == nil {
		return 0, errBodyClosed
	}
	if r.off >= len(r.b.buf) {
		return 0, io.EOF
	}
	n := copy(p, r.b.buf[r.off:])
	r.off += n
	return n, nil
}

// Close releases the reader's reference, after any Read in progress.
func (r *bodyReader) Close() error {
	r.mu.Lock()
	b := r.b
	r.b = nil
	r.mu.Unlock()
	if b != nil {
		b.release()
	}
	return nil
}

// upload is one UploadTraces call's body, found by exportTransport in the
// request's context.
type upload struct {
	mu sync.Mutex
	b  *exportBody // nil once the upload has returned
}

type uploadKey struct{}

var errUploadDone = errors.New("tracing: export request body asked for after its upload returned")

// open returns a new reader of the body and its length, until the upload
// has ended.
func (u *upload) open() (*bodyReader, int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.b == nil {
		return nil, 0, errUploadDone
	}
	u.b.refs.Add(1)
	return &bodyReader{b: u.b}, len(u.b.buf), nil
}

// reader is open for GetBody.
func (u *upload) reader() (io.ReadCloser, error) {
	r, _, err := u.open()
	if err != nil {
		return nil, err
	}
	return r, nil
}

// end drops the upload's reference: the body goes back to the pool once
// every reader the transport opened is closed.
func (u *upload) end() {
	u.mu.Lock()
	b := u.b
	u.b = nil
	u.mu.Unlock()
	if b != nil {
		b.release()
	}
}

// exportTransport gives an export request the body of the upload in its
// context; other requests pass through unchanged.
type exportTransport struct{ base http.RoundTripper }

func (t exportTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	u, ok := req.Context().Value(uploadKey{}).(*upload)
	if !ok {
		return t.base.RoundTrip(req)
	}
	if req.Body != nil {
		_ = req.Body.Close() // the client's empty body: RoundTrip closes it
	}
	body, n, err := u.open()
	if err != nil {
		return nil, err
	}
	r := req.WithContext(req.Context()) // a shallow copy: a RoundTripper must not change req
	r.Body = body
	r.GetBody = u.reader
	if r.ContentLength != -1 { // -1 with gzip: chunked, as the client sends it
		r.ContentLength = int64(n)
	}
	return t.base.RoundTrip(r)
}

// withUpload is ctx carrying u for exportTransport.
func withUpload(ctx context.Context, u *upload) context.Context {
	return context.WithValue(ctx, uploadKey{}, u)
}

// CloseIdleConnections closes the base transport's idle connections
// (http.Client.CloseIdleConnections, when a configuration is replaced).
func (t exportTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
