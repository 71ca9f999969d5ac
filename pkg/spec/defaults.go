package spec

import "strings"

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
func Default(o *Object) {
	if o == nil {
		return
	}
	switch s := o.Spec.(type) {
	case *GatewaySpec:
		defaultGateway(s)
	case *TenantSpec:
		if s.Defaults != nil {
			defaultRate(s.Defaults.RateLimit)
			defaultRate(s.Defaults.PerSource)
		}
	case *ToolSpec:
		defaultTool(o, s)
	case *ToolSetSpec:
		if s.Policies != nil {
			defaultRate(s.Policies.RateLimit)
		}
	case *PlanSpec:
		defaultRate(s.RateLimit)
	case *SubscriptionSpec:
		setStr(&s.State, defaultSubscriptionState)
	case *WebhookSpec:
		setDur(&s.Timeout, defaultWebhookTimeout)
		setInt(&s.MaxAttempts, defaultWebhookMaxAttempts)
	}
}

func defaultTool(o *Object, s *ToolSpec) {
	setStr(&s.Protocol, defaultProtocol)
	if s.Auth == nil {
		s.Auth = &ToolAuth{Type: defaultAuthType}
	}
	if s.Protocol == ProtocolMCP {
		// An MCP upstream has no HTTP route, retries or circuit breaker of
		// the proxy's: its calls are bounded by mcp.timeout.
		defaultMCPUpstream(s.MCP)
		defaultUpstreamAuth(s.UpstreamAuth)
		defaultRate(s.RateLimit)
		return
	}
	if s.Route == nil {
		s.Route = &Route{}
	}
	if s.Route.PathPrefix == "" && o.Metadata.Namespace != "" && o.Metadata.Name != "" {
		s.Route.PathPrefix = "/" + o.Metadata.Namespace + "/" + o.Metadata.Name
	}
	if s.Timeouts == nil {
		s.Timeouts = &Timeouts{}
	}
	setDur(&s.Timeouts.Connect, defaultConnectTimeout)
	setDur(&s.Timeouts.Header, defaultHeaderTimeout)
	setDur(&s.Timeouts.Total, defaultTotalTimeout)
	if s.Retries == nil {
		s.Retries = &Retries{Attempts: defaultRetryAttempts}
	}
	if len(s.Retries.On) == 0 {
		s.Retries.On = append([]string(nil), defaultRetryOn...)
	}
	if s.CircuitBreaker == nil {
		s.CircuitBreaker = &CircuitBreaker{}
	}
	setInt(&s.CircuitBreaker.ConsecutiveFailures, defaultConsecutiveFailures)
	setDur(&s.CircuitBreaker.Ejection, defaultEjection)
	if h := s.HealthCheck; h != nil {
		setDur(&h.Interval, defaultHealthInterval)
		setDur(&h.Timeout, defaultHealthTimeout)
		setInt(&h.HealthyThreshold, defaultHealthyThreshold)
		setInt(&h.UnhealthyThreshold, defaultUnhealthyThreshold)
	}
	defaultUpstreamAuth(s.UpstreamAuth)
	defaultRate(s.RateLimit)
	for i := range s.Operations {
		op := &s.Operations[i]
		defaultAnnotations(op)
		defaultRate(op.RateLimit)
	}
}

func defaultUpstreamAuth(u *UpstreamAuth) {
	if u == nil {
		return
	}
	setStr(&u.Header, defaultUpstreamAuthHeader)
	if u.Prefix == "" && strings.EqualFold(u.Header, defaultUpstreamAuthHeader) {
		u.Prefix = defaultBearerPrefix
	}
}

// defaultMCPUpstream infers the transport from url or command and fills
// the timeouts. A transport that cannot be inferred (both or neither set)
// is left for validation to report.
func defaultMCPUpstream(m *MCPUpstream) {
	if m == nil {
		return
	}
	if m.Transport == "" {
		switch {
		case m.URL != "" && len(m.Command) == 0:
			m.Transport = TransportStreamableHTTP
		case m.URL == "" && len(m.Command) > 0:
			m.Transport = TransportStdio
		}
	}
	setDur(&m.Timeout, defaultMCPTimeout)
	switch m.Transport {
	case TransportStreamableHTTP:
		setDur(&m.ConnectTimeout, defaultMCPConnectTimeout)
	case TransportStdio:
		setDur(&m.ConnectTimeout, defaultMCPStartTimeout)
	}
}

// defaultAnnotations derives MCP hints from the HTTP method where unset.
func defaultAnnotations(op *Operation) {
	if op.Annotations == nil {
		op.Annotations = &Annotations{}
	}
	a := op.Annotations
	setBool := func(p **bool, v bool) {
		if *p == nil {
			*p = &v
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

func defaultGateway(s *GatewaySpec) {
	setStr(&s.CrossTenant, defaultCrossTenant)
	if s.Limits == nil {
		s.Limits = &GatewayLimits{}
	}
	l, dl := s.Limits, DefaultGatewayLimits
	setInt(&l.MaxRequestLineBytes, dl.MaxRequestLineBytes)
	setInt(&l.MaxHeaderBytes, dl.MaxHeaderBytes)
	setInt(&l.MaxHeaders, dl.MaxHeaders)
	if l.MaxBodyBytes == 0 {
		l.MaxBodyBytes = dl.MaxBodyBytes
	}
	setDur(&l.ReadHeaderTimeout, dl.ReadHeaderTimeout)
	setDur(&l.ReadTimeout, dl.ReadTimeout)
	setDur(&l.WriteTimeout, dl.WriteTimeout)
	setDur(&l.IdleTimeout, dl.IdleTimeout)
	setInt(&l.MaxConnsPerSource, dl.MaxConnsPerSource)
	if s.XDP == nil {
		s.XDP = &XDPConfig{}
	}
	setStr(&s.XDP.Mode, defaultXDPMode)
	setStr(&s.XDP.Count, defaultXDPCount)
	if len(s.XDP.Interfaces) == 0 {
		s.XDP.Interfaces = []string{defaultXDPInterface}
	}
	defaultRate(s.XDP.PerSource)
	if s.MCP == nil {
		s.MCP = &GatewayMCP{}
	}
	setInt(&s.MCP.PageSize, defaultMCPPageSize)
	setStr(&s.MCP.ToolMetadata, defaultToolMetadata)
	// The blocks below are newer than stored Gateways: they are defaulted
	// only when written, so that a Gateway without them keeps its digest.
	if a := s.Access; a != nil {
		setStr(&a.GroupsClaim, defaultGroupsClaim)
	}
	if t := s.Tracing; t != nil {
		if t.SampleRatio == nil {
			r := defaultTracingSampleRatio
			t.SampleRatio = &r
		}
		setStr(&t.Accept, defaultTracingAccept)
		setStr(&t.ServiceName, defaultTracingService)
		setStr(&t.Compression, defaultTracingCompression)
		setDur(&t.ExportTimeout, defaultTracingExportTimeout)
		setDur(&t.BatchTimeout, defaultTracingBatchTimeout)
		setInt(&t.QueueSize, defaultTracingQueueSize)
		setDur(&t.DrainTimeout, defaultTracingDrainTimeout)
	}
	if r := s.Redis; r != nil {
		setStr(&r.Prefix, defaultRedisPrefix)
		setStr(&r.FailMode, defaultRedisFailMode)
		setDur(&r.LeaseWindow, defaultRedisLeaseWindow)
		setDur(&r.LeaseTTL, defaultRedisLeaseTTL)
		if r.Accuracy == 0 {
			r.Accuracy = defaultRedisAccuracy
		}
		setDur(&r.Timeout, defaultRedisTimeout)
		setDur(&r.DialTimeout, defaultRedisDialTimeout)
	}
}

// defaultRate writes the default burst, max(1, ceil(rate per second)), when
// a rate is set and no burst is.
func defaultRate(r *RateLimit) {
	if r.IsZero() || r.Burst != 0 {
		return
	}
	r.Burst = defaultBurst(r.PerSecond())
}

func setStr(p *string, v string) {
	if *p == "" {
		*p = v
	}
}

func setDur(p *Duration, v Duration) {
	if p.IsZero() {
		*p = v
	}
}

func setInt(p *int, v int) {
	if *p == 0 {
		*p = v
	}
}
