package main

// rule is what validation enforces on one field, beyond its Go type.
type rule struct {
	required bool
	enum     []string
	enumVar  string // a []string table in pkg/spec holding the allowed values
	pattern  string
	min, max *int
}

func n(v int) *int { return &v }

// Patterns shared with pkg/spec's validation.
const (
	ratePattern     = `^[1-9][0-9]*/(s|min|h|d)$`
	durationPattern = `^[-+]?(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h|d))+$`
	dnsLabel        = `^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`
	operationName   = `^[a-z0-9_-]+$`
	mcpName         = `^[A-Za-z0-9_-]{1,64}$`
)

// fieldRules are keyed Type.jsonField. A rule naming a field that does not
// exist fails generation, so renames in pkg/spec cannot silently drop one.
var fieldRules = map[string]rule{
	"Metadata.name":      {required: true, pattern: dnsLabel},
	"Metadata.namespace": {pattern: dnsLabel},

	"ToolSpec.protocol":         {enum: []string{"rest"}},
	"ToolAuth.type":             {required: true, enumVar: "authTypes"},
	"WeightedUpstream.url":      {required: true},
	"WeightedUpstream.weight":   {min: n(0)},
	"Operation.name":            {required: true, pattern: operationName},
	"Operation.mcpName":         {pattern: mcpName},
	"Operation.method":          {required: true, enumVar: "httpMethods"},
	"Operation.path":            {required: true},
	"Operation.in":              {enumVar: "argPlaces"},
	"Retries.attempts":          {min: n(0)},
	"Retries.on":                {enumVar: "retryOn"},
	"HealthCheck.path":          {required: true},
	"UpstreamAuth.secretRef":    {required: true},
	"UpstreamTLS.caFile":        {pattern: `^/`},
	"RateLimit.rate":            {required: true},
	"RateLimit.burst":           {min: n(0)},
	"ToolSetSpec.tools":         {required: true},
	"ToolSetPolicies.auth":      {enumVar: "toolSetAuth"},
	"SubscriptionSpec.consumer": {required: true},
	"SubscriptionSpec.plan":     {required: true},
	"SubscriptionSpec.state":    {enumVar: "subscriptionStates"},
	"GatewaySpec.crossTenant":   {enumVar: "crossTenantModes"},
	"GatewayMCP.toolMetadata":   {enumVar: "toolMetadataModes"},
	"RouteGrant.tenant":         {required: true, pattern: dnsLabel},
	"XDPConfig.mode":            {enumVar: "xdpModes"},
	"XDPConfig.count":           {enumVar: "xdpCounts"},
	"XDPConfig.ports":           {min: n(1), max: n(65535)},
	"Escalation.after":          {required: true, min: n(1)},
	"Escalation.within":         {required: true},
	"Escalation.block":          {required: true},
	"TenantIdentity.issuer":     {required: true},
	"TenantIdentity.algorithms": {enumVar: "jwtAlgorithms"},
	"ClaimMatch.claim":          {required: true},
	"ClaimMatch.value":          {required: true},
	"AdminRule.issuer":          {required: true},
	"AdminRule.claim":           {required: true},
	"AdminRule.value":           {required: true},
	"WebhookSpec.url":           {required: true},
	"WebhookSpec.events":        {required: true},
	"WebhookSpec.secretRef":     {required: true},
	"Quota.daily":               {min: n(0)},
	"Quota.monthly":             {min: n(0)},
}

// typeRules shape whole types.
var typeRules = map[string]struct {
	stringForm string   // may be written as a string matching this
	oneOf      []string // exactly one of these fields
}{
	"RateLimit": {stringForm: ratePattern},
	"SecretRef": {oneOf: []string{"env", "file"}},
}

// scalarPatterns are the syntax of named string types.
var scalarPatterns = map[string]string{
	"Rate":     ratePattern,
	"Duration": durationPattern,
}
