package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/stoa-gateway/stoa/pkg/spec"
)

// Fixed upstream pool settings. The spec's defaults (timeouts, circuit
// breaker, health checks) live in pkg/spec: the route table is compiled
// from defaulted specs.
const (
	maxConnsPerUpstream = 1024
	idleConnDuration    = 90 * time.Second
	healthBodyMax       = 64 << 10
)

// upstream is one upstream server: a keep-alive pool plus its health.
// Pools are shared by every route and revision that use the same URL with
// the same settings, so reloads keep warm connections.
type upstream struct {
	key  string
	URL  string
	addr string
	host string // Host header sent upstream
	base string // base path, no trailing slash
	tls  bool
	// pool carries proxied requests; client (its own connections) the
	// health checks.
	pool   *connPool
	client *fasthttp.HostClient

	// Passive health: consecutive failures eject the upstream until
	// ejectedUntil (unix ns).
	failures     atomic.Int32
	ejectedUntil atomic.Int64
	ejectAfter   int32
	ejection     time.Duration
	// Active health: set by the health checker.
	unhealthy atomic.Bool
	check     *spec.HealthCheck

	refs     atomic.Int32 // revisions using this pool
	ejecting func(u *upstream, reason string)

	// The end of a passive ejection is reported once, through restoring.
	restoring func(u *upstream, reason string)
	ejected   atomic.Bool
}

// available reports whether the upstream may take traffic now.
func (u *upstream) available(now int64) bool {
	return !u.unhealthy.Load() && u.ejectedUntil.Load() <= now
}

// success resets the passive failure count.
func (u *upstream) success() {
	if u.failures.Load() != 0 {
		u.failures.Store(0)
	}
}

// failure counts one failure and ejects the upstream after ejectAfter in a
// row.
func (u *upstream) failure(now int64) {
	if u.ejectAfter <= 0 {
		return
	}
	if n := u.failures.Add(1); n >= u.ejectAfter {
		u.failures.Store(0)
		u.ejectedUntil.Store(now + int64(u.ejection))
		u.ejected.Store(true)
		if u.ejecting != nil {
			u.ejecting(u, fmt.Sprintf("%d consecutive failures; ejected for %s", n, u.ejection))
		}
		time.AfterFunc(u.ejection, func() {
			// A later ejection moved the end (its own timer reports it).
			if u.ejectedUntil.Load() <= time.Now().UnixNano() {
				u.restore(fmt.Sprintf("ejection of %s ended", u.ejection))
			}
		})
	}
}

// restore reports the end of a passive ejection, once.
func (u *upstream) restore(reason string) {
	if u.ejected.CompareAndSwap(true, false) && u.restoring != nil {
		u.restoring(u, reason)
	}
}

// upstreamTarget is a URL with its weight, as the spec gives it.
type upstreamTarget struct {
	url    string
	weight int
}

// upstreamSet is a route's upstreams with a precomputed weighted schedule:
// picking is one atomic increment and an index, no lock.
type upstreamSet struct {
	members  []*upstream
	schedule []uint8 // indexes into members, interleaved by weight
	next     atomic.Uint64
}

// pick returns the next available upstream in the weighted schedule,
// skipping unavailable ones and avoid (the one that just failed).
func (s *upstreamSet) pick(now int64, avoid *upstream) *upstream {
	n := len(s.schedule)
	if n == 0 {
		return nil
	}
	start := s.next.Add(1)
	for i := 0; i < n; i++ {
		u := s.members[s.schedule[(start+uint64(i))%uint64(n)]]
		if u != avoid && u.available(now) {
			return u
		}
	}
	if avoid != nil && avoid.available(now) {
		return avoid
	}
	return nil
}

// buildSchedule interleaves member indexes by weight (smooth weighted round
// robin, as nginx does), so a 90/10 split never sends long runs to one side.
func buildSchedule(weights []int) []uint8 {
	total := 0
	for _, w := range weights {
		total += w
	}
	if total == 0 {
		return nil
	}
	// Reduce by the gcd to keep the schedule short.
	g := 0
	for _, w := range weights {
		g = gcd(g, w)
	}
	cur := make([]int, len(weights))
	var out []uint8
	for k := 0; k < total/g; k++ {
		best := -1
		for i, w := range weights {
			cur[i] += w / g
			if best < 0 || cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total / g
		out = append(out, uint8(best))
	}
	return out
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// poolRegistry owns every upstream pool. compile asks it for the set of a
// route; pools no revision uses any more are closed after a grace period.
type poolRegistry struct {
	mu      sync.Mutex
	pools   map[string]*upstream
	log     *slog.Logger
	onEject func(u *upstream, reason string)
	// tls configures connections to https upstreams (nil: the system's
	// roots); set by the Proxy after construction.
	tls *tls.Config

	// onRestore is set by the Proxy after construction.
	onRestore func(u *upstream, reason string)
}

func newPoolRegistry(log *slog.Logger, onEject func(*upstream, string)) *poolRegistry {
	return &poolRegistry{pools: map[string]*upstream{}, log: log, onEject: onEject}
}

// set returns the upstream set for a tool.
func (p *poolRegistry) set(r *Route, ts *spec.ToolSpec, targets []upstreamTarget) (*upstreamSet, error) {
	if len(targets) > 255 {
		return nil, fmt.Errorf("at most 255 upstreams per tool")
	}
	tt, err := compileUpstreamTLS(p.tls, ts.UpstreamTLS)
	if err != nil {
		return nil, err
	}
	tlsConfig := p.tls
	if tt.config != nil {
		tlsConfig = tt.config
	}
	// The spec is defaulted: timeouts and the circuit breaker are set.
	connect, header := ts.Timeouts.Connect.D(), ts.Timeouts.Header.D()
	ejectAfter, ejection := ts.CircuitBreaker.ConsecutiveFailures, ts.CircuitBreaker.Ejection.D()
	set := &upstreamSet{}
	var weights []int
	for _, t := range targets {
		addr, host, base, isTLS, err := parseUpstream(t.url)
		if err != nil {
			return nil, err
		}
		hc := ""
		if ts.HealthCheck != nil {
			hc = fmt.Sprintf("%+v", *ts.HealthCheck)
		}
		key := fmt.Sprintf("%s|c=%s|h=%s|e=%d/%s|hc=%s", t.url, connect, header, ejectAfter, ejection, hc)
		if isTLS {
			key += "|tls=" + tt.key
		}
		p.mu.Lock()
		u := p.pools[key]
		if u == nil {
			u = &upstream{
				key: key, URL: t.url, addr: addr, host: host, base: base, tls: isTLS,
				ejectAfter: int32(ejectAfter), ejection: ejection, check: ts.HealthCheck,
				ejecting: p.onEject, restoring: p.onRestore,
			}
			u.client = newHostClient(addr, isTLS, tlsConfig, connect, header)
			var poolTLS *tls.Config
			if isTLS {
				poolTLS = u.client.TLSConfig.Clone()
				if poolTLS.ServerName == "" {
					// As fasthttp does: verify the certificate for the host
					// the URL names.
					h, _, err := net.SplitHostPort(addr)
					if err != nil {
						h = addr
					}
					poolTLS.ServerName = strings.Trim(h, "[]")
				}
			}
			u.pool = newConnPool(addr, poolTLS, connect)
			p.pools[key] = u
		}
		p.mu.Unlock()
		set.members = append(set.members, u)
		weights = append(weights, t.weight)
	}
	set.schedule = buildSchedule(weights)
	return set, nil
}

func newHostClient(addr string, isTLS bool, tlsConfig *tls.Config, connect, header time.Duration) *fasthttp.HostClient {
	dialer := &fasthttp.TCPDialer{Concurrency: 0, DNSCacheDuration: time.Minute}
	hc := &fasthttp.HostClient{
		Addr: addr,
		Dial: func(a string) (net.Conn, error) {
			return dialer.DialTimeout(a, connect)
		},
		IsTLS:               isTLS,
		MaxConns:            maxConnsPerUpstream,
		MaxIdleConnDuration: idleConnDuration,
		// Proxied requests go through roundTrip, which sets its own
		// deadlines; this one is for health checks.
		ReadTimeout:                   header,
		MaxIdemponentCallAttempts:     1, // retries are ours: bounded, idempotent only
		NoDefaultUserAgentHeader:      true,
		DisableHeaderNamesNormalizing: false,
		DisablePathNormalizing:        true, // we forward the path we normalised and routed on
		SecureErrorLogMessage:         true,
		ReadBufferSize:                16 << 10,
		MaxResponseBodySize:           0,
		MaxConnWaitTimeout:            connect,
	}
	if isTLS {
		if tlsConfig != nil {
			hc.TLSConfig = tlsConfig.Clone()
		} else {
			hc.TLSConfig = &tls.Config{}
		}
		hc.TLSConfig.MinVersion = max(hc.TLSConfig.MinVersion, tls.VersionTLS12)
	}
	return hc
}

// retain closes pools that the live table no longer references, after a
// grace period that lets in-flight requests on the old table finish.
func (p *poolRegistry) retain(t *table, grace time.Duration) {
	used := map[*upstream]bool{}
	for _, r := range t.routes {
		for _, u := range r.upstreams.members {
			used[u] = true
		}
	}
	p.mu.Lock()
	var stale []*upstream
	for k, u := range p.pools {
		if !used[u] {
			delete(p.pools, k)
			stale = append(stale, u)
		}
	}
	p.mu.Unlock()
	if len(stale) == 0 {
		return
	}
	time.AfterFunc(grace, func() {
		for _, u := range stale {
			u.client.CloseIdleConnections()
			u.pool.evictIdle(0, true)
		}
	})
}

// all returns every live pool.
func (p *poolRegistry) all() []*upstream {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*upstream, 0, len(p.pools))
	for _, u := range p.pools {
		out = append(out, u)
	}
	return out
}

// healthLoop probes upstreams that have a health check, until ctx ends.
func (p *poolRegistry) healthLoop(ctx context.Context, onChange func(u *upstream, healthy bool)) {
	type state struct{ ok, bad int }
	states := map[*upstream]*state{}
	lastRun := map[*upstream]time.Time{}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			cutoff := now.Add(-idleConnDuration).UnixNano()
			for _, u := range p.all() {
				u.pool.evictIdle(cutoff, false)
			}
			for _, u := range p.all() {
				hc := u.check
				if hc == nil {
					continue
				}
				if now.Sub(lastRun[u]) < hc.Interval.D() {
					continue
				}
				lastRun[u] = now
				st := states[u]
				if st == nil {
					st = &state{}
					states[u] = st
				}
				req.Reset()
				resp.Reset()
				req.Header.SetMethod("GET")
				req.SetRequestURI(u.base + "/" + strings.TrimPrefix(hc.Path, "/"))
				if u.tls {
					req.URI().SetSchemeBytes(schemeHTTPS)
				}
				req.URI().SetHost(u.host)
				req.Header.SetHost(u.host)
				req.Header.Set("User-Agent", "stoa-health-check")
				// Only the status matters: the body is streamed and at
				// most healthBodyMax of it read (so the connection can be
				// reused), never buffered whole.
				resp.StreamBody = true
				err := u.client.DoTimeout(req, resp, hc.Timeout.D())
				good := err == nil && resp.StatusCode() < 400
				if body := resp.BodyStream(); body != nil {
					_, _ = io.CopyN(io.Discard, body, healthBodyMax)
					_ = resp.CloseBodyStream()
				}
				if good {
					st.ok, st.bad = st.ok+1, 0
					// A passing probe ends a passive ejection early (as
					// Envoy's outlier detection does by default).
					if u.ejected.Load() && st.ok >= hc.HealthyThreshold {
						if until := u.ejectedUntil.Load(); until > 0 {
							u.ejectedUntil.CompareAndSwap(until, 0)
						}
						u.restore("health check passed")
					}
					if u.unhealthy.Load() && st.ok >= hc.HealthyThreshold {
						u.unhealthy.Store(false)
						onChange(u, true)
					}
				} else {
					st.bad, st.ok = st.bad+1, 0
					if !u.unhealthy.Load() && st.bad >= hc.UnhealthyThreshold {
						u.unhealthy.Store(true)
						onChange(u, false)
					}
				}
			}
		}
	}
}
