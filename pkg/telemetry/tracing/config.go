package tracing

import (
	"crypto/x509"
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/stoa-gateway/stoa/pkg/secret"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

// Accept policies: whose traceparent a span continues.
const (
	// AcceptTrusted continues the traces of local callers (unix socket,
	// stdio) and of peers in Config.Trusted; anyone else's traceparent
	// starts a new trace that links to it.
	AcceptTrusted = "trusted"
	// AcceptAll continues every caller's trace. A client then decides
	// sampling for its own requests (a sampled flag is obeyed).
	AcceptAll = "all"
	// AcceptNone starts a new trace for every request; a valid incoming
	// traceparent is kept as a link only.
	AcceptNone = "none"
)

// Compression of export requests.
const (
	CompressionGzip = "gzip"
	CompressionNone = "none"
)

// Defaults for the zero values of Config.
const (
	DefaultServiceName   = "stoad"
	DefaultExportTimeout = 10 * time.Second
	DefaultBatchTimeout  = 5 * time.Second
	DefaultQueueSize     = 2048
	DefaultDrainTimeout  = 30 * time.Second
	defaultTracesPath    = "/v1/traces"
	maxHeaders           = 32
)

// Config is the tracing part of the Gateway spec, as stoad runs it. The
// zero value is off. The daemon maps the spec onto it; Prepare validates
// it, reads the header secrets and swaps it in.
type Config struct {
	// Enabled turns tracing on. Off, nothing is parsed, sampled, created
	// or exported, and traceparent headers pass through untouched.
	Enabled bool
	// Endpoint is the OTLP/HTTP traces URL, e.g.
	// http://127.0.0.1:4318/v1/traces. A URL without a path gets
	// /v1/traces. http and https only; no user:password@ (use Headers).
	Endpoint string
	// Headers are sent with every export request, as given.
	Headers map[string]string
	// SecretHeaders are sent with every export request, their values read
	// from stoad's environment or a file (pkg/secret) each time the config
	// is prepared: a rotated secret is picked up on reload. Values are
	// never logged or reported. A name in both maps is an error.
	SecretHeaders map[string]spec.SecretRef
	// SampleRatio is the share of new traces recorded, 0 to 1. A
	// continued trace follows its parent's sampled flag instead
	// (parent-based, with TraceIDRatio for roots, as the OTel SDK's
	// ParentBased(TraceIDRatioBased(r))).
	SampleRatio float64
	// Accept is AcceptTrusted (default when empty), AcceptAll or AcceptNone.
	Accept string
	// Trusted are the peers whose traceparent is continued under
	// AcceptTrusted: the daemon passes the Gateway's trustedProxies unless
	// the tracing spec names its own.
	Trusted []netip.Prefix
	// ServiceName is the resource's service.name (default "stoad");
	// ServiceVersion its service.version; ResourceAttributes more resource
	// attributes (e.g. deployment.environment.name).
	ServiceName        string
	ServiceVersion     string
	ResourceAttributes map[string]string
	// Compression is CompressionNone (default when empty, as in the OTel
	// SDK) or CompressionGzip, for a collector across a slow link: gzip
	// costs about a third more export CPU.
	Compression string
	// CAFile is a PEM bundle of the CAs that sign an https endpoint's
	// certificate, for collectors behind a private CA; empty uses the
	// system roots.
	CAFile string
	// ExportTimeout bounds one export request (default 10s); BatchTimeout
	// is the longest a finished span waits to be sent (default 5s);
	// QueueSize is how many finished spans wait at most (default 2048):
	// beyond it new spans are dropped, never the requests.
	ExportTimeout time.Duration
	BatchTimeout  time.Duration
	QueueSize     int
	// DrainTimeout is how long a replaced configuration waits for the
	// spans it started to end before it is shut down (default 30s).
	DrainTimeout time.Duration
}

// Problem is one invalid field of a Config. Field is the Config field's
// spec name (endpoint, headers.Authorization, sampleRatio, …) so the
// daemon can point at spec.tracing.<Field> with file:line:col.
type Problem struct {
	Field, Message, Hint string
}

func (p Problem) Error() string {
	s := "tracing." + p.Field + ": " + p.Message
	if p.Hint != "" {
		s += " (" + p.Hint + ")"
	}
	return s
}

// Problems lists what is wrong with c, without reading secrets or files.
// A disabled Config has none.
func (c *Config) Problems() []Problem {
	if !c.Enabled {
		return nil
	}
	var ps []Problem
	add := func(field, hint, format string, args ...any) {
		ps = append(ps, Problem{Field: field, Message: fmt.Sprintf(format, args...), Hint: hint})
	}
	if c.Endpoint == "" {
		add("endpoint", "e.g. http://127.0.0.1:4318/v1/traces", "endpoint is required when tracing is enabled")
	} else if _, err := endpointURL(c.Endpoint); err != nil {
		add("endpoint", "e.g. https://otel.example.com:4318/v1/traces", "%v", err)
	}
	if math.IsNaN(c.SampleRatio) || c.SampleRatio < 0 || c.SampleRatio > 1 {
		add("sampleRatio", "0 records no new trace, 1 records every one, 0.1 one in ten", "sampleRatio %v is not between 0 and 1", c.SampleRatio)
	}
	switch c.Accept {
	case "", AcceptTrusted, AcceptAll, AcceptNone:
	default:
		add("accept", "one of trusted, all, none", "unknown accept policy %q", c.Accept)
	}
	switch c.Compression {
	case "", CompressionGzip, CompressionNone:
	default:
		add("compression", "one of gzip, none", "unknown compression %q", c.Compression)
	}
	if len(c.Headers)+len(c.SecretHeaders) > maxHeaders {
		add("headers", "", "at most %d export headers", maxHeaders)
	}
	for _, name := range sortedKeys(c.Headers) {
		if !validHeaderName(name) {
			add("headers."+name, "a header name is letters, digits and !#$%&'*+-.^_`|~", "invalid header name %q", name)
		} else if reservedHeader(name) {
			add("headers."+name, "the exporter sets it", "header %s may not be set", name)
		}
		if strings.ContainsAny(c.Headers[name], "\r\n\x00") {
			add("headers."+name, "", "header %s has a line break or NUL in its value", name)
		}
		if _, dup := c.SecretHeaders[name]; dup {
			add("headers."+name, "give it either a value or a secret reference", "header %s is set twice", name)
		}
	}
	for _, name := range sortedKeys(c.SecretHeaders) {
		ref := c.SecretHeaders[name]
		switch {
		case !validHeaderName(name):
			add("headers."+name, "a header name is letters, digits and !#$%&'*+-.^_`|~", "invalid header name %q", name)
		case reservedHeader(name):
			add("headers."+name, "the exporter sets it", "header %s may not be set", name)
		case (ref.Env == "") == (ref.File == ""):
			add("headers."+name, "set env or file", "secret reference of header %s needs exactly one of env and file", name)
		}
	}
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"exportTimeout", c.ExportTimeout}, {"batchTimeout", c.BatchTimeout}, {"drainTimeout", c.DrainTimeout}} {
		if f.d < 0 {
			add(f.name, "", "%s must not be negative", f.name)
		}
	}
	if c.QueueSize < 0 {
		add("queueSize", "", "queueSize must not be negative")
	}
	for _, k := range sortedKeys(c.ResourceAttributes) {
		if k == "" || k == "service.name" || k == "service.version" {
			add("resourceAttributes."+k, "use serviceName and serviceVersion", "resource attribute %q is not allowed here", k)
		}
	}
	return ps
}

// endpointURL checks an endpoint and adds the default path.
func endpointURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("endpoint is not a URL: %v", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("endpoint scheme must be http or https, not %q", u.Scheme)
	case u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("endpoint %q has no host", s)
	case u.User != nil:
		return "", fmt.Errorf("endpoint must not carry credentials (user:password@); send them in a header with a secret reference")
	case u.Fragment != "" || u.RawFragment != "":
		return "", fmt.Errorf("endpoint must not have a #fragment")
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = defaultTracesPath
	}
	return u.String(), nil
}

// resolved is a Config with defaults applied and secrets read: what a
// pipeline is built from, and what reloads compare.
type resolved struct {
	endpoint      string
	headers       map[string]string
	ratio         float64
	accept        string
	trusted       []netip.Prefix
	service       string
	version       string
	resource      map[string]string
	gzip          bool
	caFile        string
	caPEM         string
	exportTimeout time.Duration
	batchTimeout  time.Duration
	queueSize     int
	drainTimeout  time.Duration
}

// resolve validates c, applies defaults and reads secrets and the CA file.
// Errors name a variable or file, never a secret's value.
func (c *Config) resolve() (*resolved, error) {
	if ps := c.Problems(); len(ps) > 0 {
		return nil, ps[0]
	}
	ep, _ := endpointURL(c.Endpoint)
	r := &resolved{
		endpoint:      ep,
		headers:       make(map[string]string, len(c.Headers)+len(c.SecretHeaders)),
		ratio:         c.SampleRatio,
		accept:        orString(c.Accept, AcceptTrusted),
		service:       orString(c.ServiceName, DefaultServiceName),
		version:       c.ServiceVersion,
		resource:      make(map[string]string, len(c.ResourceAttributes)),
		gzip:          c.Compression == CompressionGzip,
		caFile:        c.CAFile,
		exportTimeout: orDuration(c.ExportTimeout, DefaultExportTimeout),
		batchTimeout:  orDuration(c.BatchTimeout, DefaultBatchTimeout),
		queueSize:     c.QueueSize,
		drainTimeout:  orDuration(c.DrainTimeout, DefaultDrainTimeout),
	}
	if r.queueSize == 0 {
		r.queueSize = DefaultQueueSize
	}
	for _, p := range c.Trusted {
		r.trusted = append(r.trusted, p.Masked())
	}
	for k, v := range c.Headers {
		r.headers[k] = v
	}
	for k, v := range c.ResourceAttributes {
		r.resource[k] = v
	}
	for _, name := range sortedKeys(c.SecretHeaders) {
		v, err := secret.Read(c.SecretHeaders[name])
		if err != nil {
			return nil, fmt.Errorf("tracing.headers.%s: read %w", name, err)
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return nil, fmt.Errorf("tracing.headers.%s: secret value has a line break or NUL (check the variable or file it comes from)", name)
		}
		r.headers[name] = v
	}
	if c.CAFile != "" {
		b, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tracing.caFile: read CA bundle: %w", err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("tracing.caFile: %s holds no PEM certificate", c.CAFile)
		}
		r.caPEM = string(b)
	}
	return r, nil
}

// trusts reports whether a peer's traceparent is continued.
func (r *resolved) trusts(peer netip.Addr, local bool) bool {
	switch r.accept {
	case AcceptAll:
		return true
	case AcceptNone:
		return false
	}
	if local {
		return true
	}
	if !peer.IsValid() {
		return false
	}
	peer = peer.Unmap()
	for _, p := range r.trusted {
		if p.Contains(peer) {
			return true
		}
	}
	return false
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isLCAlpha(c|0x20) || isDigit(c) || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// reservedHeader names the headers the exporter itself must control.
func reservedHeader(name string) bool {
	switch strings.ToLower(name) {
	case "content-type", "content-length", "content-encoding", "host", "transfer-encoding", "connection":
		return true
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func orString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func orDuration(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
