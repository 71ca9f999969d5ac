package policy

import (
	"fmt"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/ext"
)

// Group is a family of variables that are known, or not, together: at
// tools/list time the caller and the target are known, the request is not.
type Group uint8

// The groups, as a bit set (Known).
const (
	GroupRequest Group = 1 << iota
	GroupCaller
	GroupTool
	GroupMCP
	GroupSource
)

// Known says which groups of variables have values in a partial
// evaluation (Chain.Visible).
type Known = Group

// KnownIdentity is what tools/list knows: who asks, and which tool and
// operation it is listing.
const KnownIdentity = GroupCaller | GroupTool

// varID names one declared variable; the fast path switches on it.
type varID uint8

// The declared variables.
const (
	vRequestMethod varID = iota
	vRequestPath
	vRequestHost
	vRequestHeaders
	vCallerTenant
	vCallerConsumer
	vCallerSubject
	vCallerIssuer
	vCallerClientID
	vCallerMethod
	vCallerAdmin
	vCallerClaims
	vCallerScopes
	vCallerGroups
	vCallerAudiences
	vToolName
	vToolTenant
	vOperationName
	vMCPArguments
	vSourceIP
	numVars
)

// Variable describes one variable a policy expression may read.
type Variable struct {
	Name  string
	Type  string // CEL type as written in docs: string, bool, list(string), map(string, dyn)
	Group Group
	Doc   string

	typ *cel.Type
}

// Variables lists every declared variable, in the order docs/policy.md
// shows them. Index i is varID(i).
var Variables = [numVars]Variable{
	vRequestMethod:   {Name: "request.method", Type: "string", Group: GroupRequest, typ: cel.StringType, Doc: "HTTP method, upper case (for MCP: the operation's method)"},
	vRequestPath:     {Name: "request.path", Type: "string", Group: GroupRequest, typ: cel.StringType, Doc: "request path without the query (for MCP: the operation's path with its parameters filled in)"},
	vRequestHost:     {Name: "request.host", Type: "string", Group: GroupRequest, typ: cel.StringType, Doc: "Host header, lower case"},
	vRequestHeaders:  {Name: "request.headers", Type: "map(string, string)", Group: GroupRequest, typ: cel.MapType(cel.StringType, cel.StringType), Doc: "request headers by lower-case name; repeated headers joined with \", \""},
	vCallerTenant:    {Name: "caller.tenant", Type: "string", Group: GroupCaller, typ: cel.StringType, Doc: "the caller's tenant (empty when anonymous)"},
	vCallerConsumer:  {Name: "caller.consumer", Type: "string", Group: GroupCaller, typ: cel.StringType, Doc: "the Consumer of the API key, or the one a token maps to"},
	vCallerSubject:   {Name: "caller.subject", Type: "string", Group: GroupCaller, typ: cel.StringType, Doc: "the token's sub"},
	vCallerIssuer:    {Name: "caller.issuer", Type: "string", Group: GroupCaller, typ: cel.StringType, Doc: "the token's iss"},
	vCallerClientID:  {Name: "caller.client_id", Type: "string", Group: GroupCaller, typ: cel.StringType, Doc: "the token's azp or client_id"},
	vCallerMethod:    {Name: "caller.method", Type: "string", Group: GroupCaller, typ: cel.StringType, Doc: `how the caller authenticated: "api_key", "jwt" or "none"`},
	vCallerAdmin:     {Name: "caller.admin", Type: "bool", Group: GroupCaller, typ: cel.BoolType, Doc: "whether the caller is a platform admin"},
	vCallerClaims:    {Name: "caller.claims", Type: "map(string, dyn)", Group: GroupCaller, typ: cel.MapType(cel.StringType, cel.DynType), Doc: "every claim of the token (JSON numbers are doubles); empty for API keys"},
	vCallerScopes:    {Name: "caller.scopes", Type: "list(string)", Group: GroupCaller, typ: cel.ListType(cel.StringType), Doc: "the token's scope and scp claims"},
	vCallerGroups:    {Name: "caller.groups", Type: "list(string)", Group: GroupCaller, typ: cel.ListType(cel.StringType), Doc: "the token's groups claim (its string members)"},
	vCallerAudiences: {Name: "caller.audiences", Type: "list(string)", Group: GroupCaller, typ: cel.ListType(cel.StringType), Doc: "the token's aud values"},
	vToolName:        {Name: "tool.name", Type: "string", Group: GroupTool, typ: cel.StringType, Doc: "the Tool's name"},
	vToolTenant:      {Name: "tool.tenant", Type: "string", Group: GroupTool, typ: cel.StringType, Doc: "the Tool's tenant (namespace)"},
	vOperationName:   {Name: "operation.name", Type: "string", Group: GroupTool, typ: cel.StringType, Doc: "the operation's name (empty for a proxy request that matches no operation)"},
	vMCPArguments:    {Name: "mcp.arguments", Type: "map(string, dyn)", Group: GroupMCP, typ: cel.MapType(cel.StringType, cel.DynType), Doc: "the tools/call arguments; empty for proxy requests"},
	vSourceIP:        {Name: "source.ip", Type: "string", Group: GroupSource, typ: cel.StringType, Doc: "the client's address as the gateway trusts it (after trusted proxies)"},
}

// varByName finds a declared variable.
func varByName(name string) (varID, bool) {
	for i := range Variables {
		if Variables[i].Name == name {
			return varID(i), true
		}
	}
	return 0, false
}

// Limits bound the work one rule evaluation may do.
type Limits struct {
	// Cost is the CEL cost budget of one rule evaluation; an evaluation
	// that exceeds it fails, which denies.
	Cost uint64
	// MaxString and MaxList are the input sizes the static cost estimate
	// assumes for strings and lists. A rule whose estimate within these
	// bounds stays under Cost runs on the native fast path; inputs larger
	// than the bounds always run on cel-go with the runtime cost limit.
	MaxString uint64
	MaxList   uint64
	// MaxExprLen bounds an expression's length in characters.
	MaxExprLen int
	// MaxRules bounds the rules of one policy.
	MaxRules int
}

// DefaultLimits are the limits Compile uses.
var DefaultLimits = Limits{
	Cost:       100_000,
	MaxString:  8 << 10,
	MaxList:    256,
	MaxExprLen: 4096,
	MaxRules:   64,
}

// Compiler compiles policies in one CEL environment. It is safe for
// concurrent use; building one costs about a millisecond, so share it.
type Compiler struct {
	env    *cel.Env
	limits Limits
}

// NewCompiler builds a Compiler with the given limits (zero fields take
// DefaultLimits' values).
func NewCompiler(l Limits) (*Compiler, error) {
	if l.Cost == 0 {
		l.Cost = DefaultLimits.Cost
	}
	if l.MaxString == 0 {
		l.MaxString = DefaultLimits.MaxString
	}
	if l.MaxList == 0 {
		l.MaxList = DefaultLimits.MaxList
	}
	if l.MaxExprLen == 0 {
		l.MaxExprLen = DefaultLimits.MaxExprLen
	}
	if l.MaxRules == 0 {
		l.MaxRules = DefaultLimits.MaxRules
	}
	opts := []cel.EnvOption{
		// Only the macros that answer yes/no questions: has() and the
		// quantifiers. map/filter build lists, which a policy never needs;
		// the quantifiers' work is bounded by the cost limit.
		cel.ClearMacros(),
		cel.Macros(cel.HasMacro, cel.AllMacro, cel.ExistsMacro, cel.ExistsOneMacro),
		// caller.claims.?tier.orValue("free") reads an optional claim
		// without failing.
		cel.OptionalTypes(),
		// Claims are JSON, so their numbers are doubles: let
		// caller.claims.level >= 3 compare across numeric types.
		cel.CrossTypeNumericComparisons(true),
		// ip("10.1.2.3"), cidr("10.0.0.0/8").containsIP(source.ip).
		ext.Network(),
		cel.ParserExpressionSizeLimit(l.MaxExprLen),
		cel.ParserRecursionLimit(64),
		cel.RegexProgramSizeLimit(1000),
	}
	for i := range Variables {
		opts = append(opts, cel.Variable(Variables[i].Name, Variables[i].typ))
	}
	env, err := cel.NewEnv(opts...)
	if err != nil {
		return nil, fmt.Errorf("build policy environment: %w", err)
	}
	return &Compiler{env: env, limits: l}, nil
}

var (
	defaultOnce     sync.Once
	defaultCompiler *Compiler
	defaultErr      error
)

// DefaultCompiler returns the shared Compiler with DefaultLimits.
func DefaultCompiler() *Compiler {
	defaultOnce.Do(func() {
		defaultCompiler, defaultErr = NewCompiler(DefaultLimits)
	})
	if defaultErr != nil {
		// The environment is built from constants; failing is a bug.
		panic(defaultErr)
	}
	return defaultCompiler
}

// Compile compiles p with the DefaultCompiler.
func Compile(owner Owner, p Spec) (*Program, []Diagnostic) {
	return DefaultCompiler().Compile(owner, p)
}
