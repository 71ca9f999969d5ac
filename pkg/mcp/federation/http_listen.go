package federation

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// inbound handles a notification or request from the upstream.
func (t *httpTransport) inbound(s *httpSession, m *message) {
	switch {
	case m.isRequest():
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), t.cfg.connectTimeout())
			defer cancel()
			t.post(ctx, s, replyTo(m), "", "", nil, 0)
		}()
	case m.Method != "":
		t.hk.notify(m.Method)
	}
}

// listen keeps the session's notification stream open: GET (legacy) or
// subscriptions/listen (2026-07-28), re-opened with backoff when it drops.
// A re-opened stream may have missed notifications, so the lists are
// refreshed (resync).
func (t *httpTransport) listen(ctx context.Context, s *httpSession) {
	delay := 250 * time.Millisecond
	opened := false
	for ctx.Err() == nil {
		ok, retry := t.listenOnce(ctx, s, opened)
		if !retry {
			return
		}
		if ok {
			opened = true
			delay = 250 * time.Millisecond
		}
		j := time.Duration(rand.Int64N(int64(delay)/2 + 1))
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay/2 + j + delay/4):
		}
		delay = min(delay*2, 30*time.Second)
	}
}

// listenOnce runs one notification stream. ok reports that it opened;
// retry is false when the upstream offers no stream or the session is gone.
func (t *httpTransport) listenOnce(ctx context.Context, s *httpSession, reopened bool) (ok, retry bool) {
	var req *http.Request
	var err error
	if s.hs.modern {
		id := t.nextID.Add(1)
		inner := []byte(`"notifications":{"toolsListChanged":` + strconv.FormatBool(s.hs.toolsListChanged) +
			`,"resourcesListChanged":` + strconv.FormatBool(s.hs.resourcesListChanged && t.cfg.Resources.Expose) + `}`)
		body := t.encode(s, id, &request{method: "subscriptions/listen", inner: inner})
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, t.cfg.URL, bytes.NewReader(body))
		if err == nil {
			req.Header["Content-Type"] = []string{"application/json"}
			t.setHeaders(req.Header, s, "subscriptions/listen", "", nil)
		}
	} else {
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, t.cfg.URL, nil)
		if err == nil {
			t.setHeaders(req.Header, s, "", "", nil)
			req.Header["Accept"] = []string{"text/event-stream"}
		}
	}
	if err != nil {
		return false, false
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return false, ctx.Err() == nil
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusMethodNotAllowed:
		// "The server MUST either return Content-Type: text/event-stream
		// ... or else return HTTP 405": no stream is offered.
		t.hk.log.Debug("mcp upstream offers no notification stream")
		return false, false
	case reopened && s.id != "" && (resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusBadRequest):
		// The stream worked before and the session is refused now: the
		// upstream forgot it (restarted). Calls would find out too, but
		// nobody may call for a while and list_changed must keep flowing.
		// Only after a stream that worked, so a server that never offers
		// one cannot make this loop.
		go func() {
			rctx, cancel := context.WithTimeout(context.Background(), t.cfg.connectTimeout())
			defer cancel()
			if _, err := t.reinit(rctx, s); err != nil {
				t.hk.down(err)
			}
		}()
		return false, false
	case resp.StatusCode != http.StatusOK || mediaType(resp.Header.Get("Content-Type")) != "text/event-stream":
		t.hk.log.Debug("mcp upstream notification stream refused", "status", resp.StatusCode)
		return false, resp.StatusCode >= 500
	}
	if reopened {
		t.hk.resync()
	}
	r := newSSEReader(resp.Body, t.maxMessage)
	for {
		data, err := r.next()
		if err != nil {
			return true, ctx.Err() == nil
		}
		var m message
		if len(data) == 0 || json.Unmarshal(data, &m) != nil {
			continue
		}
		t.inbound(s, &m)
	}
}
