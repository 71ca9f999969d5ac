package spec

import (
	"strings"
	"unsafe"
)

// Default values written by Default, so that `stoa get -o yaml` shows what
// is in force.
const (
	defaultProtocol            = ProtocolREST
	defaultAuthType            = "apiKey" // secure by default: public is auth: {type: none}
	defaultRetryAttempts       = 2
	defaultConsecutiveFailures = 5
	defaultHealthyThreshold    = 2
	defaultUnhealthyThreshold  = 3
	defaultUpstreamAuthHeader  = "Authorization"
	defaultBearerPrefix        = "Bearer "
	defaultSubscriptionState   = "active"
	defaultWebhookMaxAttempts  = 8
	defaultCrossTenant         = "forbidden"
	defaultXDPMode             = "auto"
	defaultXDPCount            = "packets"
	defaultXDPInterface        = "lo"
	defaultMCPPageSize         = 100
	defaultToolMetadata        = "warn"
	defaultGroupsClaim         = "groups"
	defaultTracingAccept       = "trusted"
	defaultTracingService      = "stoad"
	defaultTracingCompression  = "none"
	defaultTracingQueueSize    = 2048
	defaultTracingSampleRatio  = 1.0
	defaultRedisPrefix         = "stoa:"
	defaultRedisFailMode       = "open"
	defaultRedisAccuracy       = 0.01
	// defaultLimitsBackend is not written into Gateways: their limits block
	// is always present, and a new field there would change the digest of
	// every stored Gateway. LimitsBackend applies it.
	defaultLimitsBackend = "local"
	// The escalation prefix lengths are not written either, for the same
	// reason (Gateways with an escalation block predate them);
	// PrefixLengths applies them.
	defaultEscalationIPv4PrefixLength = 32
	defaultEscalationIPv6PrefixLength = 64
)

// LimitsBackend is where the Gateway's rate limits and quotas are counted:
// limits.backend, or "local" when unset.
func (s *GatewaySpec) LimitsBackend() string {
	if s == nil || s.Limits == nil || s.Limits.Backend == "" {
		return defaultLimitsBackend
	}
	return s.Limits.Backend
}

// PrefixLengths are how much of an IPv4 and an IPv6 source escalation
// counts and blocks as one: ipv4PrefixLength and ipv6PrefixLength, or 32
// and 64 when unset.
func (e *Escalation) PrefixLengths() (v4, v6 int) {
	v4, v6 = defaultEscalationIPv4PrefixLength, defaultEscalationIPv6PrefixLength
	if e != nil && e.IPv4PrefixLength != 0 {
		v4 = e.IPv4PrefixLength
	}
	if e != nil && e.IPv6PrefixLength != 0 {
		v6 = e.IPv6PrefixLength
	}
	return v4, v6
}

// Default durations, written as a person would write them.
var (
	defaultConnectTimeout = MustDuration("2s")
	defaultHeaderTimeout  = MustDuration("30s")
	defaultTotalTimeout   = MustDuration("60s")
	defaultEjection       = MustDuration("30s")
	defaultHealthInterval = MustDuration("10s")
	defaultHealthTimeout  = MustDuration("2s")
	defaultWebhookTimeout = MustDuration("10s")

	defaultMCPTimeout        = MustDuration("30s")
	defaultMCPConnectTimeout = MustDuration("5s")
	// Starting a runtime (node, python, a JVM) and initializing takes
	// longer than a TCP connect.
	defaultMCPStartTimeout = MustDuration("30s")

	defaultTracingExportTimeout = MustDuration("10s")
	defaultTracingBatchTimeout  = MustDuration("5s")
	defaultTracingDrainTimeout  = MustDuration("30s")

	defaultRedisLeaseWindow = MustDuration("20ms")
	defaultRedisLeaseTTL    = MustDuration("1s")
	defaultRedisTimeout     = MustDuration("100ms")
	defaultRedisDialTimeout = MustDuration("1s")
)

// defaultRetryOn are the failures retried by default.
var defaultRetryOn = []string{"connect-failure", "reset"}

// DefaultGatewayLimits are the size and timing limits in force when a
// Gateway does not set them.
var DefaultGatewayLimits = GatewayLimits{
	MaxRequestLineBytes: 8192,
	MaxHeaderBytes:      16384,
	MaxHeaders:          100,
	MaxBodyBytes:        10 << 20,
	ReadHeaderTimeout:   MustDuration("10s"),
	ReadTimeout:         MustDuration("30s"),
	WriteTimeout:        MustDuration("60s"),
	IdleTimeout:         MustDuration("120s"),
	MaxConnsPerSource:   256,
}

// Default fills in every default explicitly, so that the stored object shows
// what is in force. It is idempotent and never creates objects. Upstream
// weights and retry attempts are the exception: a missing value and an
// explicit 0 mean different things there, so the loader (and UnmarshalJSON)
// sets their defaults while decoding.
func Default(o *Object) { defaultObject(nil, o) }

func defaultObject(d *DefaultLog, o *Object) {
	if o == nil {
		return
	}
	switch s := o.Spec.(type) {
	case *GatewaySpec:
		defaultGateway(d, s)
	case *TenantSpec:
		if s.Defaults != nil {
			defaultRate(d, s.Defaults.RateLimit)
			defaultRate(d, s.Defaults.PerSource)
		}
	case *ToolSpec:
		defaultTool(d, o, s)
	case *ToolSetSpec:
		if s.Policies != nil {
			defaultRate(d, s.Policies.RateLimit)
		}
	case *PlanSpec:
		defaultRate(d, s.RateLimit)
	case *SubscriptionSpec:
		setStr(d, &s.State, defaultSubscriptionState)
	case *WebhookSpec:
		setDur(d, &s.Timeout, defaultWebhookTimeout)
		setInt(d, &s.MaxAttempts, defaultWebhookMaxAttempts)
	}
}

func defaultTool(d *DefaultLog, o *Object, s *ToolSpec) {
	setStr(d, &s.Protocol, defaultProtocol)
	if s.Auth == nil {
		setPtr(d, &s.Auth, &ToolAuth{Type: defaultAuthType})
	}
	if s.Protocol == ProtocolMCP {
		// An MCP upstream has no HTTP route, retries or circuit breaker of
		// the proxy's: its calls are bounded by mcp.timeout.
		defaultMCPUpstream(d, s.MCP)
		defaultUpstreamAuth(d, s.UpstreamAuth)
		defaultRate(d, s.RateLimit)
		return
	}
	if s.Route == nil {
		setPtr(d, &s.Route, &Route{})
	}
	if s.Route.PathPrefix == "" && o.Metadata.Namespace != "" && o.Metadata.Name != "" {
		set(d, &s.Route.PathPrefix, "/"+o.Metadata.Namespace+"/"+o.Metadata.Name)
	}
	if s.Timeouts == nil {
		setPtr(d, &s.Timeouts, &Timeouts{})
	}
	setDur(d, &s.Timeouts.Connect, defaultConnectTimeout)
	setDur(d, &s.Timeouts.Header, defaultHeaderTimeout)
	setDur(d, &s.Timeouts.Total, defaultTotalTimeout)
	if s.Retries == nil {
		setPtr(d, &s.Retries, &Retries{Attempts: defaultRetryAttempts})
	}
	if len(s.Retries.On) == 0 {
		set(d, &s.Retries.On, append([]string(nil), defaultRetryOn...))
	}
	if s.CircuitBreaker == nil {
		setPtr(d, &s.CircuitBreaker, &CircuitBreaker{})
	}
	setInt(d, &s.CircuitBreaker.ConsecutiveFailures, defaultConsecutiveFailures)
	setDur(d, &s.CircuitBreaker.Ejection, defaultEjection)
	if h := s.HealthCheck; h != nil {
		setDur(d, &h.Interval, defaultHealthInterval)
		setDur(d, &h.Timeout, defaultHealthTimeout)
		setInt(d, &h.HealthyThreshold, defaultHealthyThreshold)
		setInt(d, &h.UnhealthyThreshold, defaultUnhealthyThreshold)
	}
	defaultUpstreamAuth(d, s.UpstreamAuth)
	defaultRate(d, s.RateLimit)
	for i := range s.Operations {
		op := &s.Operations[i]
		defaultAnnotations(d, op)
		defaultRate(d, op.RateLimit)
	}
}

func defaultUpstreamAuth(d *DefaultLog, u *UpstreamAuth) {
	if u == nil {
		return
	}
	setStr(d, &u.Header, defaultUpstreamAuthHeader)
	if u.Prefix == "" && strings.EqualFold(u.Header, defaultUpstreamAuthHeader) {
		set(d, &u.Prefix, defaultBearerPrefix)
	}
}

// defaultMCPUpstream infers the transport from url or command and fills
// the timeouts. A transport that cannot be inferred (both or neither set)
// is left for validation to report.
func defaultMCPUpstream(d *DefaultLog, m *MCPUpstream) {
	if m == nil {
		return
	}
	if m.Transport == "" {
		switch {
		case m.URL != "" && len(m.Command) == 0:
			set(d, &m.Transport, TransportStreamableHTTP)
		case m.URL == "" && len(m.Command) > 0:
			set(d, &m.Transport, TransportStdio)
		}
	}
	setDur(d, &m.Timeout, defaultMCPTimeout)
	switch m.Transport {
	case TransportStreamableHTTP:
		setDur(d, &m.ConnectTimeout, defaultMCPConnectTimeout)
	case TransportStdio:
		setDur(d, &m.ConnectTimeout, defaultMCPStartTimeout)
	}
}

// defaultAnnotations derives MCP hints from the HTTP method where unset.
func defaultAnnotations(d *DefaultLog, op *Operation) {
	if op.Annotations == nil {
		setPtr(d, &op.Annotations, &Annotations{})
	}
	a := op.Annotations
	setBool := func(p **bool, v bool) {
		if *p == nil {
			setPtr(d, p, &v)
		}
	}
	switch op.Method {
	case "GET", "HEAD", "OPTIONS":
		setBool(&a.ReadOnly, true)
		setBool(&a.Destructive, false)
		setBool(&a.Idempotent, true)
	case "PUT":
		setBool(&a.ReadOnly, false)
		setBool(&a.Destructive, false)
		setBool(&a.Idempotent, true)
	case "DELETE":
		setBool(&a.ReadOnly, false)
		setBool(&a.Destructive, true)
		setBool(&a.Idempotent, true)
	case "POST", "PATCH":
		setBool(&a.ReadOnly, false)
		setBool(&a.Destructive, false)
		setBool(&a.Idempotent, false)
	}
	setBool(&a.OpenWorld, true)
}

func defaultGateway(d *DefaultLog, s *GatewaySpec) {
	setStr(d, &s.CrossTenant, defaultCrossTenant)
	if s.Limits == nil {
		setPtr(d, &s.Limits, &GatewayLimits{})
	}
	l, dl := s.Limits, DefaultGatewayLimits
	setInt(d, &l.MaxRequestLineBytes, dl.MaxRequestLineBytes)
	setInt(d, &l.MaxHeaderBytes, dl.MaxHeaderBytes)
	setInt(d, &l.MaxHeaders, dl.MaxHeaders)
	if l.MaxBodyBytes == 0 {
		set(d, &l.MaxBodyBytes, dl.MaxBodyBytes)
	}
	setDur(d, &l.ReadHeaderTimeout, dl.ReadHeaderTimeout)
	setDur(d, &l.ReadTimeout, dl.ReadTimeout)
	setDur(d, &l.WriteTimeout, dl.WriteTimeout)
	setDur(d, &l.IdleTimeout, dl.IdleTimeout)
	setInt(d, &l.MaxConnsPerSource, dl.MaxConnsPerSource)
	if s.XDP == nil {
		setPtr(d, &s.XDP, &XDPConfig{})
	}
	setStr(d, &s.XDP.Mode, defaultXDPMode)
	setStr(d, &s.XDP.Count, defaultXDPCount)
	if len(s.XDP.Interfaces) == 0 {
		set(d, &s.XDP.Interfaces, []string{defaultXDPInterface})
	}
	defaultRate(d, s.XDP.PerSource)
	if s.MCP == nil {
		setPtr(d, &s.MCP, &GatewayMCP{})
	}
	setInt(d, &s.MCP.PageSize, defaultMCPPageSize)
	setStr(d, &s.MCP.ToolMetadata, defaultToolMetadata)
	// The blocks below are newer than stored Gateways: they are defaulted
	// only when written, so that a Gateway without them keeps its digest.
	if a := s.Access; a != nil {
		setStr(d, &a.GroupsClaim, defaultGroupsClaim)
	}
	if t := s.Tracing; t != nil {
		if t.SampleRatio == nil {
			r := defaultTracingSampleRatio
			setPtr(d, &t.SampleRatio, &r)
		}
		setStr(d, &t.Accept, defaultTracingAccept)
		setStr(d, &t.ServiceName, defaultTracingService)
		setStr(d, &t.Compression, defaultTracingCompression)
		setDur(d, &t.ExportTimeout, defaultTracingExportTimeout)
		setDur(d, &t.BatchTimeout, defaultTracingBatchTimeout)
		setInt(d, &t.QueueSize, defaultTracingQueueSize)
		setDur(d, &t.DrainTimeout, defaultTracingDrainTimeout)
	}
	if r := s.Redis; r != nil {
		setStr(d, &r.Prefix, defaultRedisPrefix)
		setStr(d, &r.FailMode, defaultRedisFailMode)
		setDur(d, &r.LeaseWindow, defaultRedisLeaseWindow)
		setDur(d, &r.LeaseTTL, defaultRedisLeaseTTL)
		if r.Accuracy == 0 {
			set(d, &r.Accuracy, defaultRedisAccuracy)
		}
		setDur(d, &r.Timeout, defaultRedisTimeout)
		setDur(d, &r.DialTimeout, defaultRedisDialTimeout)
	}
}

// defaultRate writes the default burst, max(1, ceil(rate per second)), when
// a rate is set and no burst is.
func defaultRate(d *DefaultLog, r *RateLimit) {
	if r.IsZero() || r.Burst != 0 {
		return
	}
	set(d, &r.Burst, defaultBurst(r.PerSecond()))
}

func setStr(d *DefaultLog, p *string, v string) {
	if *p == "" {
		set(d, p, v)
	}
}

func setDur(d *DefaultLog, p *Duration, v Duration) {
	if p.IsZero() {
		set(d, p, v)
	}
}

func setInt(d *DefaultLog, p *int, v int) {
	if *p == 0 {
		set(d, p, v)
	}
}

// set writes a default, noting in d (when not nil) how to take it back.
// Every write of Default goes through set or setPtr.
func set[T any](d *DefaultLog, p *T, v T) {
	if d != nil {
		switch q := any(p).(type) {
		case *string:
			note(&d.strs, saved[string]{q, *q})
		case *int:
			note(&d.ints, saved[int]{q, *q})
		case *Duration:
			note(&d.durs, saved[Duration]{q, *q})
		default:
			old := *p
			d.other = append(d.other, func() { *p = old })
		}
	}
	*p = v
}

// setPtr is set for pointers, the most frequent defaults (a block created
// empty): noted without allocating.
func setPtr[T any](d *DefaultLog, p **T, v *T) {
	if d != nil {
		// *T and unsafe.Pointer have the same representation; the write
		// through it in Undo keeps the garbage collector informed.
		note(&d.ptrs, saved[unsafe.Pointer]{(*unsafe.Pointer)(unsafe.Pointer(p)), unsafe.Pointer(*p)})
	}
	*p = v
}

// A DefaultLog notes the defaults Default writes into objects, so that
// they can be taken back: the loader defaults objects to validate and
// digest them, and an apply sends them as written only when it is more than
// a no-op (stoad applies the same defaults; the request is about 40%
// smaller). Noting the defaults costs less than encoding every object
// beforehand just in case. One log serves any number of objects; it is not
// safe for concurrent use.
type DefaultLog struct {
	strs  []saved[string]
	ints  []saved[int]
	durs  []saved[Duration]
	ptrs  []saved[unsafe.Pointer]
	other []func()
}

// note appends e to a log, starting it large: a log serves many objects,
// each with a dozen defaults.
func note[T any](log *[]saved[T], e saved[T]) {
	if cap(*log) == 0 {
		*log = make([]saved[T], 0, 256)
	}
	*log = append(*log, e)
}

// saved is a location and the value it held.
type saved[T any] struct {
	p   *T
	old T
}

// Default is Default, noting what it writes in l.
func (l *DefaultLog) Default(o *Object) { defaultObject(l, o) }

// Undo takes back every default noted, leaving the objects as they were
// before, and empties the log. (Default writes each location at most once
// — only where nothing is set — so the order of taking back is free.)
func (l *DefaultLog) Undo() {
	for _, s := range l.strs {
		*s.p = s.old
	}
	for _, s := range l.ints {
		*s.p = s.old
	}
	for _, s := range l.durs {
		*s.p = s.old
	}
	for _, s := range l.ptrs {
		*s.p = s.old
	}
	for _, f := range l.other {
		f()
	}
	*l = DefaultLog{}
}
