package dataplane

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/stoa-gateway/stoa/pkg/bundle"
	"github.com/stoa-gateway/stoa/pkg/fleet"
)

// watch makes one long-poll request and handles its answer.
func (s *Syncer) watch(ctx context.Context) error {
	s.mu.Lock()
	q := url.Values{fleet.QueryWait: {s.cfg.Wait.String()}}
	if s.serving != nil {
		q.Set(fleet.QueryHave, strconv.FormatInt(s.serving.Revision(), 10))
		q.Set(fleet.QueryDigest, s.serving.Digest().String())
	}
	if !s.skip.IsZero() && (s.skipUntil.IsZero() || s.now().Before(s.skipUntil)) {
		q.Set(fleet.QuerySkip, s.skip.String())
	}
	if s.forceFull {
		q.Set(fleet.QueryFull, "1")
	}
	id := s.id
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, s.cfg.Wait+30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url(fleet.PathWatch, q), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := s.httpClient().Do(req)
	if err != nil {
		return s.unreachable(err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		s.contact()
		s.connected()
		return nil
	case http.StatusOK:
	default:
		return s.refusedIdentity(ctx, id, s.unreachable(readAPIError(resp)))
	}
	wire, raw, err := s.readBody(resp)
	if err != nil {
		var le *limitError
		if errors.As(err, &le) || errors.Is(err, gzip.ErrHeader) || errors.Is(err, gzip.ErrChecksum) {
			// The control plane answered; the answer is unusable.
			s.setError(err.Error())
			s.mu.Lock()
			s.forceFull = true
			s.mu.Unlock()
			return err
		}
		return s.unreachable(err)
	}
	s.contact()
	s.connected()
	// A refused or failing revision is an error for the loop's backoff:
	// a bundle damaged on every attempt is not fetched in a tight loop.
	return s.receive(resp.Header, resp.Header.Get("Content-Type"), wire, raw)
}

// connected marks the control plane reachable.
func (s *Syncer) connected() {
	s.mu.Lock()
	if strings.HasPrefix(s.status.LastError, "reach the control plane") {
		s.status.LastError = ""
	}
	s.mu.Unlock()
	s.setState(fleet.StateConnected, "")
}

// readBody reads an answer within MaxBundleBytes, decompressing gzip;
// wire is the size received.
func (s *Syncer) readBody(resp *http.Response) (int, []byte, error) {
	limit := s.cfg.MaxBundleBytes
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return 0, nil, fmt.Errorf("read bundle: %w", err)
	}
	wire := len(body)
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return wire, nil, fmt.Errorf("read bundle: inflate: %w", err)
		}
		if body, err = io.ReadAll(io.LimitReader(zr, limit+1)); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				err = gzip.ErrChecksum // truncated in the answer, not on the wire
			}
			return wire, nil, fmt.Errorf("read bundle: inflate: %w", err)
		}
	}
	if int64(len(body)) > limit {
		return wire, nil, &limitError{limit}
	}
	return wire, body, nil
}

// limitError is an answer larger than MaxBundleBytes.
type limitError struct{ limit int64 }

func (e *limitError) Error() string {
	return fmt.Sprintf("read bundle: larger than %d bytes; raise the data plane's bundle size limit", e.limit)
}

// receive verifies an answer and, if it passes, applies it. The error is
// the refusal or the apply failure, already reported.
func (s *Syncer) receive(h http.Header, ctype string, wire int, raw []byte) error {
	s.mu.Lock()
	serving := s.serving
	s.mu.Unlock()
	announced, _ := bundle.ParseDigest(h.Get(fleet.HeaderDigest))
	rev, _ := strconv.ParseInt(h.Get(fleet.HeaderRevision), 10, 64)
	s.heard(rev)
	var (
		next *bundle.Bundle
		sig  []byte
		kind string
		err  error
	)
	switch ctype {
	case fleet.ContentTypeDelta:
		kind = "delta"
		var d *bundle.Delta
		if d, err = bundle.ParseDelta(raw); err == nil {
			if !announced.IsZero() && d.To.Digest != announced {
				err = &bundle.DigestError{Want: announced, Got: d.To.Digest}
			} else {
				sig = d.Signature
				next, err = bundle.OpenDelta(d, serving, s.cfg.Verifier)
			}
		}
	case fleet.ContentTypeBundle:
		kind = "full"
		sig = []byte(h.Get(fleet.HeaderSignature))
		next, err = bundle.Open(raw, sig, s.cfg.Verifier, bundle.OpenOptions{Digest: announced, Serving: serving})
	default:
		err = &bundle.FormatError{Msg: fmt.Sprintf("the control plane sent %q, not a bundle or a delta", ctype)}
	}
	s.metrics.receivedBytes.WithLabelValues(kind).Add(float64(wire))
	if err != nil {
		s.refuse(err, rev, announced)
		return err
	}
	if serving != nil && next.Digest() == serving.Digest() {
		return nil
	}
	return s.accept(next, sig, kind)
}

// refuse records a bundle that failed verification; what is served does
// not change.
func (s *Syncer) refuse(err error, rev int64, announced bundle.Digest) {
	reason := bundle.Reason(err)
	if reason == "" {
		reason = "malformed"
	}
	hint := ""
	if h, ok := err.(interface{ Hint() string }); ok {
		hint = h.Hint()
	}
	var re *bundle.RevisionError
	if errors.As(err, &re) {
		rev = re.Got
	}
	s.metrics.refusals.WithLabelValues(reason).Inc()
	s.mu.Lock()
	switch reason {
	case "digest", "base":
		// Damaged in transit, or built on a base not held: the full
		// bundle may well pass.
		s.forceFull = true
	default:
		// The bundle itself is bad: not again until a newer one.
		s.skip, s.skipUntil = announced, time.Time{}
	}
	s.degraded = "refused revision " + strconv.FormatInt(rev, 10) + ": " + reason
	s.status.LastRefusal = &fleet.Refusal{Reason: reason, Revision: rev, Digest: digestString(announced), Message: err.Error(), Hint: hint, At: s.now()}
	serving := s.status.Revision
	s.mu.Unlock()
	s.cfg.Log.Error("fleet: bundle refused; serving the previous one", "reason", reason, "revision", rev, "serving", serving, "err", err)
	s.emit("fleet.bundle.refused", fmt.Sprintf("refused revision %d (%s): %v; still serving revision %d", rev, reason, err, serving),
		map[string]any{"reason": reason, "revision": rev, "digest": digestString(announced), "serving": serving, "hint": hint})
	s.kickHeartbeat()
}

func digestString(d bundle.Digest) string {
	if d.IsZero() {
		return ""
	}
	return d.String()
}

// accept hands a verified bundle to the daemon and, once it serves it,
// keeps it as the last good bundle (written in the background, usually as
// the delta from the one written before: bundle.Store).
func (s *Syncer) accept(next *bundle.Bundle, sig []byte, kind string) error {
	start := time.Now()
	if err := s.cfg.Apply(next.Revision(), next.Objects()); err != nil {
		s.metrics.applyFailures.Inc()
		s.mu.Lock()
		s.skip, s.skipUntil = next.Digest(), s.now().Add(applyRetry)
		s.degraded = fmt.Sprintf("revision %d failed to apply", next.Revision())
		s.status.LastError = fmt.Sprintf("apply revision %d: %v", next.Revision(), err)
		serving := s.status.Revision
		s.mu.Unlock()
		s.cfg.Log.Error("fleet: revision failed to apply; serving the previous one", "revision", next.Revision(), "serving", serving, "err", err)
		s.emit("fleet.bundle.apply_failed", fmt.Sprintf("revision %d failed to apply: %v; still serving revision %d", next.Revision(), err, serving),
			map[string]any{"revision": next.Revision(), "digest": next.Digest().String(), "serving": serving})
		s.kickHeartbeat()
		return fmt.Errorf("apply revision %d: %w", next.Revision(), err)
	}
	// Metrics first: whoever sees the new revision in the status sees it
	// counted too.
	s.metrics.applied.WithLabelValues(kind).Inc()
	s.metrics.revision.Set(float64(next.Revision()))
	s.mu.Lock()
	s.serving = next
	s.skip, s.skipUntil, s.forceFull, s.degraded = bundle.Digest{}, time.Time{}, false, ""
	s.status.Revision, s.status.Digest, s.status.Origin, s.status.LastSync = next.Revision(), next.Digest().String(), "control-plane", s.now()
	s.status.LastError = ""
	s.mu.Unlock()
	s.persist(next, sig)
	s.cfg.Log.Info("fleet: serving a new revision", "revision", next.Revision(), "digest", next.Digest(), "via", kind, "took", time.Since(start))
	s.emit("fleet.bundle.applied", fmt.Sprintf("serving revision %d (%s)", next.Revision(), kind),
		map[string]any{"revision": next.Revision(), "digest": next.Digest().String(), "via": kind})
	s.kickHeartbeat()
	return nil
}

// loadLastGood serves the bundle kept on disk, verified again, while the
// control plane is asked for newer ones.
func (s *Syncer) loadLastGood() {
	b, _, err := s.store.Load(s.cfg.Verifier)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		reason := bundle.Reason(err)
		s.metrics.refusals.WithLabelValues(orDefault(reason, "malformed")).Inc()
		s.cfg.Log.Error("fleet: the last good bundle on disk does not verify; starting without it", "err", err)
		s.emit("fleet.bundle.refused", fmt.Sprintf("the last good bundle on disk does not verify: %v", err),
			map[string]any{"reason": orDefault(reason, "malformed"), "source": "disk"})
		s.mu.Lock()
		s.status.LastRefusal = &fleet.Refusal{Reason: orDefault(reason, "malformed"), Message: err.Error(), At: s.now(), Hint: "the data plane fetches the current bundle from the control plane"}
		s.mu.Unlock()
		return
	}
	if err := s.cfg.Apply(b.Revision(), b.Objects()); err != nil {
		s.metrics.applyFailures.Inc()
		s.setError(fmt.Sprintf("apply the last good bundle (revision %d): %v", b.Revision(), err))
		s.cfg.Log.Error("fleet: the last good bundle failed to apply", "revision", b.Revision(), "err", err)
		return
	}
	s.metrics.applied.WithLabelValues("disk").Inc()
	s.metrics.revision.Set(float64(b.Revision()))
	s.mu.Lock()
	s.serving = b
	s.status.Revision, s.status.Digest, s.status.Origin, s.status.LastSync = b.Revision(), b.Digest().String(), "disk", s.now()
	s.mu.Unlock()
	s.cfg.Log.Info("fleet: serving the last good bundle from disk", "revision", b.Revision(), "digest", b.Digest())
	s.emit("fleet.bundle.applied", fmt.Sprintf("serving revision %d from the last good bundle on disk", b.Revision()),
		map[string]any{"revision": b.Revision(), "digest": b.Digest().String(), "via": "disk"})
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// lastGood is a bundle to keep on disk.
type lastGood struct {
	b   *bundle.Bundle
	sig []byte
}

// persist queues b as the last good bundle; only the newest queued one is
// written.
func (s *Syncer) persist(b *bundle.Bundle, sig []byte) {
	s.mu.Lock()
	s.pending = &lastGood{b, sig}
	s.mu.Unlock()
	select {
	case s.persistKick <- struct{}{}:
	default:
	}
}

// persister writes queued bundles until stop is closed, then writes the
// one still queued, so that a stopped data plane restarts from what it
// served.
func (s *Syncer) persister(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	for {
		select {
		case <-s.persistKick:
			s.writeLastGood()
		case <-stop:
			s.writeLastGood()
			return
		}
	}
}

func (s *Syncer) writeLastGood() {
	s.mu.Lock()
	p := s.pending
	s.pending = nil
	s.mu.Unlock()
	if p == nil {
		return
	}
	if err := s.store.Write(p.b, p.sig); err != nil {
		s.mu.Lock()
		s.degraded = "last good bundle not written"
		s.status.LastError = err.Error()
		s.mu.Unlock()
		s.cfg.Log.Error("fleet: keep the last good bundle", "revision", p.b.Revision(), "err", err)
		s.kickHeartbeat()
	}
}
