package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// KeySetOptions tune how issuers' JWKS are fetched and cached. Zero fields
// take the defaults named on each.
type KeySetOptions struct {
	// HTTPClient fetches discovery documents and JWKS. Default: a client
	// that follows at most 3 redirects and never from https to plain http
	// (except on loopback).
	HTTPClient *http.Client
	// FetchTimeout bounds one refresh (discovery plus JWKS). Default 5s.
	FetchTimeout time.Duration
	// MinRefreshInterval is the least time between two fetch attempts for
	// one issuer, successful or not. A token with an unknown kid triggers a
	// refresh only if the last attempt is at least this old, so a flood of
	// tokens with random kids costs the IdP at most one request per
	// interval. Default 30s.
	MinRefreshInterval time.Duration
	// MaxAge is how long fetched keys are used before a background refresh
	// is started (the old keys keep serving meanwhile, and indefinitely if
	// the refresh fails). Default 1h.
	MaxAge time.Duration
	// MaxResponseBytes caps a discovery or JWKS response. Default 1 MiB.
	MaxResponseBytes int64
	// Logger receives fetch failures and skipped keys (never tokens).
	// Default: discard.
	Logger *slog.Logger
}

func (o KeySetOptions) withDefaults() KeySetOptions {
	if o.FetchTimeout <= 0 {
		o.FetchTimeout = 5 * time.Second
	}
	if o.MinRefreshInterval <= 0 {
		o.MinRefreshInterval = 30 * time.Second
	}
	if o.MaxAge <= 0 {
		o.MaxAge = time.Hour
	}
	o.MaxAge = max(o.MaxAge, o.MinRefreshInterval)
	if o.MaxResponseBytes <= 0 {
		o.MaxResponseBytes = 1 << 20
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{CheckRedirect: checkRedirect}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 3 {
		return errors.New("too many redirects")
	}
	return checkFetchURL(req.URL)
}

// KeySets holds the JWKS of every issuer. Share one between successive
// Resolvers (configuration reloads) so that keys survive a reload and the
// IdPs are not asked again.
type KeySets struct {
	opts KeySetOptions
	mu   sync.Mutex
	sets map[string]*remoteKeySet
}

// NewKeySets returns an empty registry.
func NewKeySets(o KeySetOptions) *KeySets {
	return &KeySets{opts: o.withDefaults(), sets: map[string]*remoteKeySet{}}
}

func (k *KeySets) get(issuer, jwksURL string) *remoteKeySet {
	k.mu.Lock()
	defer k.mu.Unlock()
	id := issuer + "\n" + jwksURL
	ks := k.sets[id]
	if ks == nil {
		ks = &remoteKeySet{issuer: issuer, configuredURL: jwksURL, o: &k.opts}
		k.sets[id] = ks
	}
	return ks
}

// Retain drops the key sets that r does not use (issuers removed from the
// configuration). Call it after installing r; a Resolver still in flight
// keeps working with the sets it holds.
func (k *KeySets) Retain(r *Resolver) {
	used := map[*remoteKeySet]bool{}
	for _, e := range r.issuers {
		used[e.keys] = true
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for id, s := range k.sets {
		if !used[s] {
			delete(k.sets, id)
		}
	}
}

// KeySetStatus describes one issuer's key set for status output and
// metrics.
type KeySetStatus struct {
	Issuer    string    `json:"issuer"`
	JWKSURL   string    `json:"jwksURL,omitempty"`
	Keys      int       `json:"keys"`
	FetchedAt time.Time `json:"fetchedAt,omitzero"`
	Fetches   int64     `json:"fetches"`
	Failures  int64     `json:"failures"`
	LastError string    `json:"lastError,omitempty"`
}

// Status reports every key set.
func (k *KeySets) Status() []KeySetStatus {
	k.mu.Lock()
	sets := make([]*remoteKeySet, 0, len(k.sets))
	for _, s := range k.sets {
		sets = append(sets, s)
	}
	k.mu.Unlock()
	out := make([]KeySetStatus, 0, len(sets))
	for _, s := range sets {
		out = append(out, s.status())
	}
	return out
}

// remoteKeySet is one issuer's JWKS: fetched on first use, refreshed on an
// unknown kid at most once per MinRefreshInterval, and in the background
// once older than MaxAge.
type remoteKeySet struct {
	issuer        string
	configuredURL string
	o             *KeySetOptions

	snap atomic.Pointer[keySnapshot]

	mu            sync.Mutex
	discoveredURL string
	lastAttempt   time.Time
	inflight      *fetchCall
	lastErr       error
	fetches       int64
	failures      int64
}

type fetchCall struct {
	done chan struct{}
	snap *keySnapshot
	err  error
}

// keysFor returns the keys that may have signed a token with kid (all keys
// when kid is empty).
func (ks *remoteKeySet) keysFor(ctx context.Context, kid string, now time.Time) ([]*verifyKey, error) {
	snap := ks.snap.Load()
	if snap != nil {
		if c := snap.lookup(kid); len(c) > 0 {
			if now.Sub(snap.fetchedAt) > ks.o.MaxAge {
				ks.refreshAsync(now)
			}
			return c, nil
		}
	}
	snap, err := ks.refresh(ctx, now, snap)
	if snap == nil {
		return nil, fmt.Errorf("%w: issuer %s: %v", ErrKeySetUnavailable, ks.issuer, err)
	}
	if c := snap.lookup(kid); len(c) > 0 {
		return c, nil
	}
	return nil, fmt.Errorf("%w: kid %s", ErrTokenUnknownKey, safeLabel(kid))
}

// refresh fetches the key set, unless a fetch is already running (then it
// waits for that one) or the last attempt is younger than
// MinRefreshInterval (then it returns what it has). seen is the snapshot the
// caller found wanting: if it has been replaced since, the new one is
// returned without fetching.
func (ks *remoteKeySet) refresh(ctx context.Context, now time.Time, seen *keySnapshot) (*keySnapshot, error) {
	ks.mu.Lock()
	if cur := ks.snap.Load(); cur != seen {
		ks.mu.Unlock()
		return cur, nil
	}
	c := ks.inflight
	if c == nil {
		if ks.rateLimited(now) {
			snap, err := ks.snap.Load(), ks.lastErr
			ks.mu.Unlock()
			if snap == nil && err == nil {
				err = errors.New("refresh rate-limited")
			}
			return snap, err
		}
		c = ks.startFetch(now)
	}
	ks.mu.Unlock()
	select {
	case <-c.done:
		return c.snap, c.err
	case <-ctx.Done():
		return ks.snap.Load(), ctx.Err()
	}
}

// refreshAsync starts a background refresh if none is running and the rate
// limit allows.
func (ks *remoteKeySet) refreshAsync(now time.Time) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if ks.inflight == nil && !ks.rateLimited(now) {
		ks.startFetch(now)
	}
}

// rateLimited reports whether a fetch was attempted too recently. A clock
// that went backwards does not block refreshes. Called with mu held.
func (ks *remoteKeySet) rateLimited(now time.Time) bool {
	if ks.lastAttempt.IsZero() {
		return false
	}
	d := now.Sub(ks.lastAttempt)
	return d >= 0 && d < ks.o.MinRefreshInterval
}

// startFetch runs one fetch in its own goroutine, detached from any
// request's context, so a cancelled request does not fail its waiters.
// Called with mu held.
func (ks *remoteKeySet) startFetch(now time.Time) *fetchCall {
	ks.lastAttempt = now
	ks.fetches++
	c := &fetchCall{done: make(chan struct{})}
	ks.inflight = c
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), ks.o.FetchTimeout)
		defer cancel()
		snap, err := ks.fetch(ctx, now)
		// Publish the keys and clear inflight before waking the waiters:
		// woken first, a waiter could see a rotated kid and ask for a
		// refresh while c still looks in flight, join it and get the
		// keys from before the rotation (coreos/go-oidc's RemoteKeySet
		// has that race).
		ks.mu.Lock()
		if err == nil {
			ks.snap.Store(snap)
			ks.lastErr = nil
		} else {
			ks.failures++
			ks.lastErr = err
			ks.o.Logger.Warn("jwks refresh failed", "issuer", ks.issuer, "error", err)
		}
		c.snap, c.err = ks.snap.Load(), err
		ks.inflight = nil
		ks.mu.Unlock()
		close(c.done)
	}()
	return c
}

func (ks *remoteKeySet) fetch(ctx context.Context, now time.Time) (*keySnapshot, error) {
	u := ks.configuredURL
	if u == "" {
		ks.mu.Lock()
		u = ks.discoveredURL
		ks.mu.Unlock()
		if u == "" {
			var err error
			if u, err = ks.discover(ctx); err != nil {
				return nil, err
			}
			ks.mu.Lock()
			ks.discoveredURL = u
			ks.mu.Unlock()
		}
	}
	body, err := ks.get(ctx, u)
	if err == nil {
		var snap *keySnapshot
		if snap, err = parseKeySet(body, now, ks.o.Logger, ks.issuer); err == nil {
			return snap, nil
		}
	}
	if ks.configuredURL == "" {
		// The IdP may have moved its JWKS: discover again next time.
		ks.mu.Lock()
		ks.discoveredURL = ""
		ks.mu.Unlock()
	}
	return nil, fmt.Errorf("fetch jwks %s: %w", u, err)
}

// discover reads the issuer's OpenID Provider metadata (OIDC Discovery 1.0
// section 4) and returns its jwks_uri. The document's issuer must equal the
// configured issuer exactly.
func (ks *remoteKeySet) discover(ctx context.Context) (string, error) {
	u := strings.TrimSuffix(ks.issuer, "/") + "/.well-known/openid-configuration"
	body, err := ks.get(ctx, u)
	if err != nil {
		return "", fmt.Errorf("discover %s: %w", ks.issuer, err)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("discover %s: decode: %w", ks.issuer, err)
	}
	if doc.Issuer != ks.issuer {
		return "", fmt.Errorf("discover %s: document names issuer %s", ks.issuer, safeLabel(doc.Issuer))
	}
	if doc.JWKSURI == "" {
		return "", fmt.Errorf("discover %s: no jwks_uri", ks.issuer)
	}
	if err := checkFetchURLString(doc.JWKSURI); err != nil {
		return "", fmt.Errorf("discover %s: jwks_uri: %w", ks.issuer, err)
	}
	return doc.JWKSURI, nil
}

func (ks *remoteKeySet) get(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := ks.o.HTTPClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, ks.o.MaxResponseBytes+1))
	if err != nil {
		return nil, err
	}
	if int64(len(body)) > ks.o.MaxResponseBytes {
		return nil, fmt.Errorf("response larger than %d bytes", ks.o.MaxResponseBytes)
	}
	return body, nil
}

func (ks *remoteKeySet) status() KeySetStatus {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	st := KeySetStatus{Issuer: ks.issuer, JWKSURL: ks.configuredURL, Fetches: ks.fetches, Failures: ks.failures}
	if st.JWKSURL == "" {
		st.JWKSURL = ks.discoveredURL
	}
	if s := ks.snap.Load(); s != nil {
		st.Keys, st.FetchedAt = len(s.all), s.fetchedAt
	}
	if ks.lastErr != nil {
		st.LastError = ks.lastErr.Error()
	}
	return st
}

// checkFetchURLString allows https URLs, and plain http only to loopback
// hosts (a development IdP on localhost).
func checkFetchURLString(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	return checkFetchURL(u)
}

func checkFetchURL(u *url.URL) error {
	switch {
	case u.Scheme == "https" && u.Host != "":
		return nil
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()):
		return nil
	}
	return fmt.Errorf("url %s: want https (http only for loopback)", u.Redacted())
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
