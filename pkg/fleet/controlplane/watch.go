package controlplane

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/bundle"
	"github.com/stoa-gateway/stoa/pkg/fleet"
)

// serveWatch is the long poll: it answers as soon as the current revision
// is not the one the data plane holds (nor one it refused), or with 304
// after wait. The answer is a signed delta from the held revision when
// the source still has it, else the full signed bundle.
func (s *Server) serveWatch(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.authenticate(r); err != nil {
		return err
	}
	q := r.URL.Query()
	bad := func(msg string) error { return &api.Error{Code: api.CodeBadRequest, Message: "watch: " + msg} }
	var (
		have             int64
		haveDigest, skip bundle.Digest
		err              error
	)
	if v := q.Get(fleet.QueryHave); v != "" {
		if have, err = strconv.ParseInt(v, 10, 64); err != nil || have < 0 {
			return bad(fmt.Sprintf("have=%q is not a revision", v))
		}
	}
	if v := q.Get(fleet.QueryDigest); v != "" {
		if haveDigest, err = bundle.ParseDigest(v); err != nil {
			return bad(err.Error())
		}
	}
	if v := q.Get(fleet.QuerySkip); v != "" {
		if skip, err = bundle.ParseDigest(v); err != nil {
			return bad(err.Error())
		}
	}
	wait := DefaultWait
	if v := q.Get(fleet.QueryWait); v != "" {
		if wait, err = time.ParseDuration(v); err != nil || wait < 0 {
			return bad(fmt.Sprintf("wait=%q is not a duration", v))
		}
		wait = min(wait, MaxWait)
	}
	full := q.Get(fleet.QueryFull) == "1"

	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	var cur *Signed
	for {
		if cur, err = s.cfg.Source.Current(ctx); err != nil {
			return unavailable(err)
		}
		if cur != nil {
			d := cur.Bundle.Digest()
			held := have == cur.Bundle.Revision() && haveDigest == d
			if !held && d != skip {
				break
			}
		}
		var after int64
		if cur != nil {
			after = cur.Bundle.Revision()
		}
		if err := s.cfg.Source.Wait(ctx, after); err != nil {
			if r.Context().Err() != nil {
				return nil // the data plane went away
			}
			if cur != nil {
				w.Header().Set(fleet.HeaderRevision, strconv.FormatInt(cur.Bundle.Revision(), 10))
			}
			w.WriteHeader(http.StatusNotModified)
			s.metrics.answers.WithLabelValues("not_modified").Inc()
			return nil
		}
	}
	// It may have been revoked while it waited.
	if _, err := s.authenticate(r); err != nil {
		return err
	}
	var p *payload
	if !full && have > 0 && have < cur.Bundle.Revision() && !haveDigest.IsZero() {
		if base, err := s.cfg.Source.At(r.Context(), have); err == nil && base.Digest() == haveDigest {
			p = s.cache.delta(base, cur)
		}
	}
	if p == nil {
		p = s.cache.full(cur)
	}
	kind := p.kind
	h := w.Header()
	h.Set(fleet.HeaderRevision, strconv.FormatInt(cur.Bundle.Revision(), 10))
	h.Set(fleet.HeaderDigest, cur.Bundle.Digest().String())
	h.Set(fleet.HeaderKeyID, s.cfg.KeyID)
	h.Set("Cache-Control", "no-store")
	h.Set("Vary", "Accept-Encoding")
	if kind == "full" {
		h.Set("Content-Type", fleet.ContentTypeBundle)
		h.Set(fleet.HeaderSignature, strings.TrimSpace(string(cur.Signature)))
	} else {
		h.Set("Content-Type", fleet.ContentTypeDelta)
	}
	body, err := p.body(acceptsGzip(r))
	if err != nil {
		return err
	}
	if p.gzipped(acceptsGzip(r)) {
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	n, _ := w.Write(body)
	s.metrics.answers.WithLabelValues(kind).Inc()
	s.metrics.sentBytes.WithLabelValues(kind).Add(float64(n))
	return nil
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		if strings.TrimSpace(strings.SplitN(part, ";", 2)[0]) == "gzip" {
			return true
		}
	}
	return false
}
