package controlplane

import (
	"bytes"
	"compress/gzip"
	"container/list"
	"encoding/json"
	"errors"
	"net/http"
	"sync"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/bundle"
)

// writeJSON writes v as a JSON response.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// writeError writes err as the LocalAPI's JSON error envelope, so that
// the CLI and data planes read fleet errors like any other.
func writeError(w http.ResponseWriter, err error) {
	var ae *api.Error
	if !errors.As(err, &ae) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			ae = &api.Error{Code: api.CodeBadRequest, Message: "request body too large"}
		} else {
			ae = &api.Error{Code: api.CodeInternal, Message: err.Error()}
		}
	}
	status := map[string]int{
		api.CodeInvalid: http.StatusUnprocessableEntity, api.CodeNotFound: http.StatusNotFound,
		api.CodeConflict: http.StatusConflict, api.CodeUnauthorized: http.StatusUnauthorized,
		api.CodeForbidden: http.StatusForbidden, api.CodeBadRequest: http.StatusBadRequest,
		api.CodeUnavailable: http.StatusServiceUnavailable, api.CodeMethod: http.StatusMethodNotAllowed,
	}[ae.Code]
	if status == 0 {
		status = http.StatusInternalServerError
	}
	_ = writeJSON(w, status, api.ErrorBody{Error: ae})
}

// decodeBody decodes a bounded JSON body strictly.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return &api.Error{Code: api.CodeBadRequest, Message: "decode request: " + err.Error()}
	}
	return nil
}

// payload is one answer of the watch route, encoded once and shared by
// every data plane asking for it: the bundle or delta bytes, and their
// gzip encoding, made on first demand.
type payload struct {
	kind  string // "full" or "delta"
	plain []byte

	once sync.Once
	gz   []byte
	err  error
}

// minGzip: smaller answers go as they are.
const minGzip = 1 << 10

func (p *payload) gzipped(accept bool) bool { return accept && len(p.plain) >= minGzip }

func (p *payload) body(accept bool) ([]byte, error) {
	if !p.gzipped(accept) {
		return p.plain, nil
	}
	p.once.Do(func() {
		var buf bytes.Buffer
		zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
		if err != nil {
			p.err = err
			return
		}
		if _, err := zw.Write(p.plain); err != nil {
			p.err = err
			return
		}
		if p.err = zw.Close(); p.err == nil {
			p.gz = buf.Bytes()
		}
	})
	return p.gz, p.err
}

// payloadCache keeps the latest answers by (from, to) digests, so that N
// data planes catching up from the same revision cost one diff and one
// compression.
type payloadCache struct {
	mu    sync.Mutex
	max   int
	order *list.List // of cacheKey, oldest at the front
	m     map[cacheKey]*cacheEntry
}

type cacheKey struct{ from, to bundle.Digest }

type cacheEntry struct {
	elem *list.Element
	once sync.Once
	p    *payload
}

func newPayloadCache(n int) *payloadCache {
	return &payloadCache{max: n, order: list.New(), m: map[cacheKey]*cacheEntry{}}
}

func (c *payloadCache) get(k cacheKey, make func() *payload) *payload {
	c.mu.Lock()
	e, ok := c.m[k]
	if ok {
		c.order.MoveToBack(e.elem)
	} else {
		e = &cacheEntry{elem: c.order.PushBack(k)}
		c.m[k] = e
		for c.order.Len() > c.max {
			old := c.order.Remove(c.order.Front()).(cacheKey)
			delete(c.m, old)
		}
	}
	c.mu.Unlock()
	e.once.Do(func() { e.p = make() })
	return e.p
}

// full is the full bundle's answer.
func (c *payloadCache) full(s *Signed) *payload {
	return c.get(cacheKey{to: s.Bundle.Digest()}, func() *payload { return &payload{kind: "full", plain: s.Bundle.Bytes()} })
}

// delta is the answer that turns base into s.
func (c *payloadCache) delta(base *bundle.Bundle, s *Signed) *payload {
	return c.get(cacheKey{from: base.Digest(), to: s.Bundle.Digest()}, func() *payload {
		d := bundle.Diff(base, s.Bundle)
		d.Signature = s.Signature
		b, err := json.Marshal(d)
		if err != nil {
			// A Delta of canonical objects always encodes; fall back to
			// the full bundle rather than fail the data plane.
			return &payload{kind: "full", plain: s.Bundle.Bytes()}
		}
		return &payload{kind: "delta", plain: b}
	})
}
