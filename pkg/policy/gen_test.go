package policy

import (
	"encoding/json"
	"strings"
)

// exprGen builds CEL expressions and inputs from fuzz bytes: a small
// grammar over the declared variables that produces mostly well-typed
// policy expressions, including shapes the fast path does not handle (so
// the tests see it decline them) and values it must bail out on.
type exprGen struct {
	b []byte
	i int
}

func (g *exprGen) next(n int) int {
	if g.i >= len(g.b) || n <= 1 {
		g.i++
		return 0
	}
	v := int(g.b[g.i]) % n
	g.i++
	return v
}

func (g *exprGen) pick(xs ...string) string { return xs[g.next(len(xs))] }

func (g *exprGen) boolExpr(depth int) string {
	if depth <= 0 {
		return g.atom()
	}
	switch g.next(8) {
	case 0:
		return "!(" + g.boolExpr(depth-1) + ")"
	case 1:
		return "(" + g.boolExpr(depth-1) + " && " + g.boolExpr(depth-1) + ")"
	case 2:
		return "(" + g.boolExpr(depth-1) + " || " + g.boolExpr(depth-1) + ")"
	case 3:
		return "(" + g.boolExpr(depth-1) + " ? " + g.boolExpr(depth-1) + " : " + g.boolExpr(depth-1) + ")"
	}
	return g.atom()
}

func (g *exprGen) atom() string {
	switch g.next(16) {
	case 0:
		return g.strExpr() + g.pick(" == ", " != ") + g.strExpr()
	case 1:
		return g.dynExpr() + g.pick(" == ", " != ") + g.lit()
	case 2:
		return g.numExpr() + g.pick(" < ", " <= ", " > ", " >= ", " == ") + g.numExpr()
	case 3:
		return g.strExpr() + " in " + g.listExpr()
	case 4:
		return g.pick(`"a"`, `"x-a"`, `"dept"`, `"level"`, g.strExpr()) + " in " + g.mapExpr()
	case 5:
		return "has(" + g.mapExpr() + "." + g.key() + ")"
	case 6:
		return g.strExpr() + "." + g.pick("startsWith", "endsWith", "contains") + "(" + g.strLit() + ")"
	case 7:
		return g.strExpr() + ".matches(" + g.pick(`"^a"`, `"fin$"`, `"[0-9]+"`, `""`) + ")"
	case 8:
		return "size(" + g.pick(g.strExpr(), g.listExpr(), g.mapExpr()) + ")" + g.pick(" > ", " == ", " <= ") + g.pick("0", "1", "3")
	case 9:
		return g.pick("caller.admin", "true", "false", "caller.admin == true")
	case 10:
		return g.dynExpr() + g.pick(" in ", " == ") + g.listExpr()
	case 11:
		return g.lit() + " in " + g.dynExpr()
	case 12:
		return g.dynExpr() + g.pick(" < ", " >= ") + g.lit()
	case 13:
		return g.dynExpr() + " == " + g.dynExpr()
	case 14:
		// Shapes the fast path leaves to cel-go.
		return g.pick(`caller.groups.exists(g, g == "a")`, `caller.claims.?dept.orValue("x") == "fin"`,
			`request.path + "x" == "/ax"`, `cidr("10.0.0.0/8").containsIP(ip(source.ip))`, `int(caller.claims.level) == 3`)
	}
	return g.pick("request.method", "request.path", "operation.name", "caller.tenant") + g.pick(" == ", " != ") + g.strLit()
}

func (g *exprGen) strLit() string {
	return g.pick(`"a"`, `"GET"`, `""`, `"fin"`, `"/a"`, `"x"`, `"é"`)
}

func (g *exprGen) lit() string {
	return g.pick(`"a"`, `"fin"`, `""`, "3", "3.0", "3.5", "1u", "-1", "true", "false", "null", "0", "1.0e300", "[]", `["a"]`, "{}")
}

func (g *exprGen) key() string { return g.pick("a", "b", "dept", "level", "x-a", "list", "obj", "n") }

func (g *exprGen) strExpr() string {
	return g.pick("request.method", "request.path", "request.host", "source.ip", "caller.subject", "caller.tenant",
		"tool.name", "operation.name", g.strLit(), `request.headers["`+g.key()+`"]`, "request.headers."+g.key())
}

func (g *exprGen) dynExpr() string {
	base := g.pick("caller.claims", "mcp.arguments", "caller.claims.obj")
	switch g.next(4) {
	case 0:
		return base + "." + g.key()
	case 1:
		return base + `["` + g.key() + `"]`
	case 2:
		return base + "." + g.key() + "[" + g.pick("0", "1", "5", "-1") + "]"
	}
	return base + "." + g.key() + "." + g.key()
}

func (g *exprGen) numExpr() string {
	return g.pick("1", "3", "-2", "3.0", "0.5", "2u", "size(request.path)", "size(caller.groups)", g.dynExpr())
}

func (g *exprGen) listExpr() string {
	return g.pick("caller.groups", "caller.scopes", "caller.audiences", `["a", "GET", "fin"]`, `[1, 2.0, "a", true, null]`, "[]", g.dynExpr())
}

func (g *exprGen) mapExpr() string {
	return g.pick("request.headers", "caller.claims", "mcp.arguments", "caller.claims.obj", g.dynExpr())
}

// claimValue is one JSON value as an auth layer decodes it.
func (g *exprGen) claimValue(depth int) any {
	switch g.next(16) {
	case 0:
		return "fin"
	case 1:
		return "a"
	case 2:
		return ""
	case 3:
		return json.Number("3")
	case 4:
		return json.Number("3.5")
	case 5:
		return float64(-1)
	case 6:
		return true
	case 7:
		return nil
	case 8:
		return []any{"a", json.Number("1"), true}
	case 9:
		return []any{}
	case 10:
		if depth > 0 {
			return map[string]any{"a": g.claimValue(depth - 1), "dept": g.claimValue(depth - 1)}
		}
		return map[string]any{}
	case 11:
		return strings.Repeat("a", 40) // over the test's MaxString
	case 12:
		return []any{"a", "b", "c", "d", "e", "f"} // over the test's MaxList
	case 13:
		return json.Number("1e400")
	case 14:
		return []string{"fin", "a"}
	}
	return false
}

func (g *exprGen) input() *Input {
	claims := map[string]any{}
	for _, k := range []string{"a", "b", "dept", "level", "list", "obj", "n"} {
		if g.next(3) != 0 {
			claims[k] = g.claimValue(2)
		}
	}
	if g.next(5) == 0 {
		claims = nil
	}
	args := map[string]any{}
	for _, k := range []string{"a", "level", "obj"} {
		if g.next(2) == 0 {
			args[k] = g.claimValue(1)
		}
	}
	headers := HeaderMap{}
	for _, k := range []string{"a", "x-a", "dept"} {
		if g.next(2) == 0 {
			headers[k] = g.pick("a", "fin", "", strings.Repeat("b", 40))
		}
	}
	var hs Headers = headers
	if g.next(6) == 0 {
		hs = nil
	}
	lists := func() []string {
		return [][]string{nil, {"a"}, {"fin", "GET"}, {"a", "b", "c", "d", "e", "f"}}[g.next(4)]
	}
	c := &Caller{
		Tenant: g.pick("acme", "", "a"), Subject: g.pick("a", "alice"), Method: g.pick("jwt", "api_key"),
		Admin: g.next(2) == 0, Groups: lists(), Scopes: lists(), Audiences: lists(), Claims: claims,
	}
	in := &Input{
		Caller:   c,
		Target:   &Target{Tenant: "acme", Tool: g.pick("a", "billing"), Operation: g.pick("", "a", "get")},
		Method:   g.pick("GET", "POST", "a", "DELETE"),
		Path:     g.pick("/a", "/", "", "/a/b/c/"+strings.Repeat("x", 40)),
		Host:     g.pick("a", "example.com"),
		Headers:  hs,
		SourceIP: g.pick("10.1.2.3", "192.0.2.1", "::1"),
	}
	if g.next(3) != 0 {
		in.Arguments = args
	}
	if g.next(8) == 0 {
		in.Caller = nil
	}
	return in
}
