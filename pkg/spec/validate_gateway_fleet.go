package spec

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
)

// Accepted values of the Gateway's tracing, limits and Redis fields.
var (
	tracingAccept      = []string{"trusted", "all", "none"}
	tracingCompression = []string{"none", "gzip"}
	limitsBackends     = []string{"local", "redis"}
	redisFailModes     = []string{"open", "closed"}
)

// maxTracingHeaders bounds the export headers (pkg/telemetry/tracing's
// limit).
const maxTracingHeaders = 32

// tracing checks spec.tracing as pkg/telemetry/tracing's Config.Problems
// does. The values are checked whether or not tracing is enabled, so that
// turning it on later cannot reveal old mistakes; only the endpoint is
// required, and only when enabled.
func (v *validator) tracing(o *Object, t *Tracing) {
	if t == nil {
		return
	}
	const p = "spec.tracing"
	const endpointHint = "the collector's OTLP/HTTP traces URL, e.g. http://collector:4318/v1/traces"
	switch {
	case t.Endpoint == "" && t.Enabled:
		v.errorf(o, p+".endpoint", endpointHint, "missing endpoint: tracing is enabled")
	case t.Endpoint != "":
		if msg := tracingEndpointProblem(t.Endpoint); msg != "" {
			v.errorf(o, p+".endpoint", endpointHint, "invalid endpoint %q: %s", t.Endpoint, msg)
		}
	}
	if r := t.SampleRatio; r != nil && (math.IsNaN(*r) || *r < 0 || *r > 1) {
		v.errorf(o, p+".sampleRatio", "0 records no new trace, 1 records every one, 0.1 one in ten",
			"sampleRatio %v is not between 0 and 1", *r)
	}
	v.oneOf(o, p+".accept", "accept policy", t.Accept, tracingAccept...)
	v.oneOf(o, p+".compression", "compression", t.Compression, tracingCompression...)
	if len(t.Headers) > maxTracingHeaders {
		v.errorf(o, p+".headers", "", "%d export headers; at most %d are allowed", len(t.Headers), maxTracingHeaders)
	}
	v.namedValues(o, p+".headers", "header", t.Headers, func(n string) (string, string) {
		switch {
		case !isToken(n):
			return fmt.Sprintf("invalid header name %q", n), "a header name is letters, digits and !#$%&'*+-.^_`|~"
		case tracingReservedHeader(n):
			return fmt.Sprintf("header %s may not be set", n), "the exporter sets it itself; remove it"
		}
		return "", ""
	})
	for i, c := range t.TrustedClients {
		v.cidr(o, itemPath(p+".trustedClients", i), c)
	}
	for _, k := range sortedKeys(t.ResourceAttributes) {
		switch k {
		case "", "service.name", "service.version":
			v.add(o, SeverityError, true, p+".resourceAttributes"+pathKey(k), "set the service name with serviceName; stoad sets service.version",
				fmt.Sprintf("resource attribute %q is not allowed here", k))
		}
	}
	if t.CAFile != "" && !filepath.IsAbs(t.CAFile) {
		v.errorf(o, p+".caFile", "stoad reads it from its own working directory otherwise; write e.g. /etc/stoa/otel-ca.pem",
			"caFile %q must be an absolute path", t.CAFile)
	}
	v.duration(o, p+".exportTimeout", t.ExportTimeout)
	v.duration(o, p+".batchTimeout", t.BatchTimeout)
	v.duration(o, p+".drainTimeout", t.DrainTimeout)
	if t.QueueSize < 0 {
		v.errorf(o, p+".queueSize", "the number of finished spans that may wait for export, e.g. 2048", "queueSize must not be negative")
	}
}

// tracingEndpointProblem explains what keeps s from being an OTLP/HTTP
// endpoint, or returns "".
func tracingEndpointProblem(s string) string {
	u, msg := parseHTTPURL(s)
	switch {
	case msg != "":
		if u != nil && u.User != nil {
			return "credentials must not be part of the URL; send them in a header with a secretRef"
		}
		return msg
	case u.Fragment != "" || strings.Contains(s, "#"):
		return "it must not have a #fragment"
	}
	return ""
}

// tracingReservedHeader names the headers the OTLP exporter controls.
func tracingReservedHeader(name string) bool {
	switch strings.ToLower(name) {
	case "content-type", "content-length", "content-encoding", "host", "transfer-encoding", "connection":
		return true
	}
	return false
}

// limitsBackend checks spec.limits.backend against spec.redis.
func (v *validator) limitsBackend(o *Object, s *GatewaySpec) {
	backend := ""
	if s.Limits != nil {
		backend = s.Limits.Backend
	}
	switch {
	case !v.oneOf(o, "spec.limits.backend", "limits backend", backend, limitsBackends...):
	case backend == "redis" && s.Redis == nil:
		v.errorf(o, "spec.limits.backend", "add spec.redis: {address: redis.internal:6379} (or sentinel), or use backend: local",
			"limits backend redis needs spec.redis")
	case backend != "redis" && s.Redis != nil:
		v.add(o, SeverityWarning, true, "spec.redis", "set spec.limits.backend: redis to share limits and quotas through it",
			fmt.Sprintf("spec.redis is not used: limits.backend is %s", s.LimitsBackend()))
	}
	v.redis(o, s.Redis)
}

// redis checks spec.redis, the connection of pkg/limits/redislimit.
func (v *validator) redis(o *Object, r *RedisConfig) {
	if r == nil {
		return
	}
	const p = "spec.redis"
	switch {
	case r.Address == "" && r.Sentinel == nil:
		v.errorf(o, p, "set address: host:port of the Redis server, or sentinel: {master, addresses}", "missing address or sentinel")
	case r.Address != "" && r.Sentinel != nil:
		v.errorf(o, p+".sentinel", "keep address for one Redis node, or sentinel to follow a primary", "set either address or sentinel, not both")
	case r.Address != "":
		if msg := hostPortProblem(r.Address); msg != "" {
			v.errorf(o, p+".address", "host:port, e.g. redis.internal:6379 or [2001:db8::7]:6379", "invalid address %q: %s", r.Address, msg)
		}
	}
	if sn := r.Sentinel; sn != nil {
		if strings.TrimSpace(sn.Master) == "" {
			v.errorf(o, p+".sentinel.master", "the name of the master set the Sentinels watch, e.g. mymaster", "missing master")
		}
		if len(sn.Addresses) == 0 {
			v.errorf(o, p+".sentinel.addresses", "host:port of each Sentinel, e.g. [sentinel-1:26379, sentinel-2:26379]", "missing Sentinel addresses")
		}
		v.stringList(o, p+".sentinel.addresses", "address", sn.Addresses)
		for i, a := range sn.Addresses {
			if a == "" {
				continue
			}
			if msg := hostPortProblem(a); msg != "" {
				v.errorf(o, itemPath(p+".sentinel.addresses", i), "host:port of a Sentinel, e.g. sentinel-1:26379", "invalid address %q: %s", a, msg)
			}
		}
	}
	if r.DB < 0 {
		v.errorf(o, p+".db", "database numbers start at 0", "db must not be negative")
	}
	if r.Username != "" && r.Password == nil {
		v.errorf(o, p+".username", "add password: {secretRef: {env: REDIS_PASSWORD}}", "a username needs a password")
	}
	if pw := r.Password; pw != nil {
		v.secretRef(o, p+".password.secretRef", pw.SecretRef)
		if !r.TLS && !r.loopback() {
			v.warnf(o, p+".password", "set tls: true (with caFile for a private CA)",
				"the Redis password and every limit decision cross the network unencrypted")
		}
	}
	switch {
	case r.CAFile != "" && !r.TLS:
		v.errorf(o, p+".caFile", "set tls: true, or remove caFile", "caFile applies with tls: true only")
	case r.CAFile != "" && !filepath.IsAbs(r.CAFile):
		v.errorf(o, p+".caFile", "stoad reads it from its own working directory otherwise; write e.g. /etc/stoa/redis-ca.pem",
			"caFile %q must be an absolute path", r.CAFile)
	}
	if strings.ContainsFunc(r.Prefix, func(c rune) bool { return c < ' ' || c == 0x7f }) {
		v.errorf(o, p+".prefix", "use printable characters, e.g. stoa:prod:", "prefix contains a control character")
	}
	v.oneOf(o, p+".failMode", "failMode", r.FailMode, redisFailModes...)
	if d := r.LeaseWindow; !d.IsZero() && d.D() < 0 {
		v.errorf(o, p+".leaseWindow", "a duration such as 20ms; 0s takes no leases (every request asks Redis)", "leaseWindow must not be negative")
	}
	v.duration(o, p+".leaseTTL", r.LeaseTTL)
	v.duration(o, p+".timeout", r.Timeout)
	v.duration(o, p+".dialTimeout", r.DialTimeout)
	if a := r.Accuracy; math.IsNaN(a) || a < 0 || a > 1 {
		v.errorf(o, p+".accuracy", "a fraction of a key's rate per second, e.g. 0.01", "accuracy %v is not between 0 and 1", a)
	}
}

// loopback reports whether r reaches Redis on this host only.
func (r *RedisConfig) loopback() bool {
	addrs := []string{r.Address}
	if r.Sentinel != nil {
		addrs = r.Sentinel.Addresses
	}
	for _, a := range addrs {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			return false
		}
		if ip, err := netip.ParseAddr(host); err == nil {
			if !ip.IsLoopback() {
				return false
			}
		} else if !strings.EqualFold(host, "localhost") {
			return false
		}
	}
	return len(addrs) > 0
}

// hostPortProblem explains what keeps s from being host:port, or "".
func hostPortProblem(s string) string {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		if strings.Contains(s, "://") {
			return "write host:port without a scheme"
		}
		return "missing port"
	}
	if host == "" {
		return "missing host"
	}
	if _, err := netip.ParseAddr(host); err != nil && !validServerName(host) {
		return "invalid host"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "invalid port"
	}
	return ""
}
