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
	quantityPattern = `^[0-9]+(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$`
	absPath         = `^/`
)

// fieldRules are keyed Type.jsonField. A rule naming a field that does not
// exist fails generation, so renames in pkg/spec cannot silently drop one.
var fieldRules = map[string]rule{
	"Metadata.name":      {required: true, pattern: dnsLabel},
	"Metadata.namespace": {pattern: dnsLabel},

	"ToolSpec.protocol":           {enumVar: "toolProtocols"},
	"ToolAuth.type":               {required: true, enumVar: "authTypes"},
	"WeightedUpstream.url":        {required: true},
	"WeightedUpstream.weight":     {min: n(0)},
	"Operation.name":              {required: true, pattern: operationName},
	"Operation.mcpName":           {pattern: mcpName},
	"Operation.method":            {required: true, enumVar: "httpMethods"},
	"Operation.path":              {required: true},
	"Operation.in":                {enumVar: "argPlaces"},
	"Retries.attempts":            {min: n(0)},
	"Retries.on":                  {enumVar: "retryOn"},
	"HealthCheck.path":            {required: true},
	"UpstreamAuth.secretRef":      {required: true},
	"UpstreamTLS.caFile":          {pattern: absPath},
	"RateLimit.rate":              {required: true},
	"RateLimit.burst":             {min: n(0)},
	"ToolSetSpec.tools":           {required: true},
	"ToolSetPolicies.auth":        {enumVar: "toolSetAuth"},
	"SubscriptionSpec.consumer":   {required: true},
	"SubscriptionSpec.plan":       {required: true},
	"SubscriptionSpec.state":      {enumVar: "subscriptionStates"},
	"GatewaySpec.crossTenant":     {enumVar: "crossTenantModes"},
	"GatewayMCP.toolMetadata":     {enumVar: "toolMetadataModes"},
	"RouteGrant.tenant":           {required: true, pattern: dnsLabel},
	"XDPConfig.mode":              {enumVar: "xdpModes"},
	"XDPConfig.count":             {enumVar: "xdpCounts"},
	"XDPConfig.ports":             {min: n(1), max: n(65535)},
	"Escalation.after":            {required: true, min: n(1)},
	"Escalation.within":           {required: true},
	"Escalation.block":            {required: true},
	"Escalation.ipv4PrefixLength": {min: n(16), max: n(32)},
	"Escalation.ipv6PrefixLength": {min: n(32), max: n(128)},
	"TenantIdentity.issuer":       {required: true},
	"TenantIdentity.algorithms":   {enumVar: "jwtAlgorithms"},
	"ClaimMatch.claim":            {required: true},
	"ClaimMatch.value":            {required: true},
	"AdminRule.issuer":            {required: true},
	"AdminRule.claim":             {required: true},
	"AdminRule.value":             {required: true},
	"WebhookSpec.url":             {required: true},
	"WebhookSpec.events":          {required: true},
	"WebhookSpec.secretRef":       {required: true},
	"Quota.daily":                 {min: n(0)},
	"Quota.monthly":               {min: n(0)},

	"AccessEntry.role":            {required: true, enumVar: "accessRoles"},
	"Policy.rules":                {required: true},
	"MCPUpstream.transport":       {enumVar: "mcpTransports"},
	"MCPUpstream.protocolVersion": {enumVar: "mcpProtocolVersions"},
	"MCPUpstream.dir":             {pattern: absPath},
	"NamedValue.name":             {required: true},
	"ProcessLimits.openFiles":     {min: n(1)},
	"ProcessLimits.processes":     {min: n(1)},
	"StdioGrant.tenant":           {required: true, pattern: dnsLabel},
	"StdioGrant.commands":         {required: true},
	"Tracing.accept":              {enumVar: "tracingAccept"},
	"Tracing.compression":         {enumVar: "tracingCompression"},
	"Tracing.sampleRatio":         {min: n(0), max: n(1)},
	"Tracing.caFile":              {pattern: absPath},
	"Tracing.queueSize":           {min: n(0)},
	"GatewayLimits.backend":       {enumVar: "limitsBackends"},
	"RedisConfig.failMode":        {enumVar: "redisFailModes"},
	"RedisConfig.db":              {min: n(0)},
	"RedisConfig.caFile":          {pattern: absPath},
	"RedisConfig.accuracy":        {min: n(0), max: n(1)},
	"RedisSentinel.master":        {required: true},
	"RedisSentinel.addresses":     {required: true},
	"RedisPassword.secretRef":     {required: true},
}

// typeRules shape whole types.
var typeRules = map[string]struct {
	stringForm string   // may be written as a string matching this
	oneOf      []string // exactly one of these fields
}{
	"RateLimit":  {stringForm: ratePattern},
	"SecretRef":  {oneOf: []string{"env", "file"}},
	"PolicyRule": {oneOf: []string{"allow", "deny"}},
}

// scalarPatterns are the syntax of named string types.
var scalarPatterns = map[string]string{
	"Rate":     ratePattern,
	"Duration": durationPattern,
	"Quantity": quantityPattern,
}
