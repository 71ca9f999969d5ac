package spec

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// parseAllowed lists the files outside pkg/spec that may turn text into a
// Duration or Rate, and why: text that never was a spec field. Spec fields
// are parsed once, by the decoder, and read with D(), Count(), Per().
var parseAllowed = map[string]string{
	"pkg/cli/audit.go":     "the --since flag",
	"pkg/localapi/keys.go": "LocalAPI request fields expiresIn and grace",
	"pkg/localapi/xdp.go":  "LocalAPI request field for",
}

// runtimeDirs hold runtimes, and runtimeFiles the runtimes that live
// beside their domain's logic: they compile defaulted specs (state.New
// defaults every object) and keep no default of their own.
var runtimeDirs = []string{"pkg/proxy", "pkg/daemon", "pkg/mcp/mcprt", "pkg/xdp/xdprt", "pkg/auth/identity",
	"pkg/keys", "pkg/telemetry/stats"}

var runtimeFiles = map[string]bool{
	"pkg/quota/admission.go": true, "pkg/quota/admission_events.go": true, "pkg/snapshot/runtime.go": true,
	"pkg/webhook/runtime.go": true, "pkg/audit/trail.go": true,
}

// defaultOwnedFiles are the runtime files (beside pkg/proxy) that compile
// spec values; other servers (the LocalAPI, the MCP socket) have timeouts
// of their own that merely look like the Gateway's.
var defaultOwnedFiles = map[string]bool{
	"pkg/webhook/runtime.go": true, "pkg/snapshot/runtime.go": true, "pkg/xdp/xdprt/xdprt.go": true,
	"pkg/xdp/xdprt/status.go": true, "pkg/daemon/gitops.go": true,
}

// sameValueAllowed are literals that equal a default but mean something
// else.
var sameValueAllowed = map[string]string{
	"pkg/proxy/proxy.go 2m0s": "the grace period before unused upstream pools close",
}

// TestRuntimesNeitherParseNorDefault keeps spec values parsed once and
// defaulted in one place: no runtime re-parses a spec string, and none
// holds a literal of a default that pkg/spec defines (a timeout, a
// Gateway limit, the upstream credential's header).
func TestRuntimesNeitherParseNorDefault(t *testing.T) {
	root := filepath.Join("..", "..")
	durations := map[time.Duration]string{}
	for name, d := range map[string]Duration{
		"timeouts.connect": defaultConnectTimeout, "timeouts.header": defaultHeaderTimeout,
		"timeouts.total": defaultTotalTimeout, "circuitBreaker.ejection": defaultEjection,
		"healthCheck.interval": defaultHealthInterval, "healthCheck.timeout": defaultHealthTimeout,
		"webhook timeout":          defaultWebhookTimeout,
		"limits.readHeaderTimeout": DefaultGatewayLimits.ReadHeaderTimeout, "limits.readTimeout": DefaultGatewayLimits.ReadTimeout,
		"limits.writeTimeout": DefaultGatewayLimits.WriteTimeout, "limits.idleTimeout": DefaultGatewayLimits.IdleTimeout,
	} {
		durations[d.D()] = name
	}
	ints := map[int64]string{
		int64(DefaultGatewayLimits.MaxBodyBytes):        "limits.maxBodyBytes",
		int64(DefaultGatewayLimits.MaxRequestLineBytes): "limits.maxRequestLineBytes",
	}
	strs := map[string]string{defaultUpstreamAuthHeader: "upstreamAuth.header", defaultBearerPrefix: "upstreamAuth.prefix"}

	var problems []string
	err := filepath.WalkDir(filepath.Join(root, "pkg"), func(path string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := filepath.ToSlash(strings.TrimPrefix(path, root+string(filepath.Separator)))
		if e.IsDir() {
			if rel == "pkg/spec" || e.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		runtime := runtimeFiles[rel]
		for _, d := range runtimeDirs {
			if filepath.Dir(rel) == d {
				runtime = true
			}
		}
		checkValues := runtime && (strings.HasPrefix(rel, "pkg/proxy/") || defaultOwnedFiles[rel])
		ast.Inspect(f, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.CallExpr:
				if sel, ok := x.Fun.(*ast.SelectorExpr); ok && isIdent(sel.X, "spec") {
					switch sel.Sel.Name {
					case "NewDuration", "NewRate", "MustDuration", "MustRate":
						if _, ok := parseAllowed[rel]; !ok {
							problems = append(problems, rel+": spec."+sel.Sel.Name+": read the decoded value of the spec field instead")
						}
					}
				}
			case *ast.GenDecl:
				if !runtime || x.Tok == token.IMPORT || x.Tok == token.TYPE {
					return true
				}
				for _, sp := range x.Specs {
					for _, name := range sp.(*ast.ValueSpec).Names {
						if strings.HasPrefix(name.Name, "default") && len(name.Name) > 7 {
							problems = append(problems, rel+": "+name.Name+": defaults belong in pkg/spec/defaults.go")
						}
					}
				}
			case *ast.BinaryExpr:
				if !checkValues {
					return true
				}
				if d, ok := durationLit(x); ok && durations[d] != "" && sameValueAllowed[rel+" "+d.String()] == "" {
					problems = append(problems, rel+": "+d.String()+" is the default of "+durations[d]+": read the defaulted spec")
				}
				if x.Op == token.SHL {
					a, okA := intLit(x.X)
					b, okB := intLit(x.Y)
					if okA && okB && ints[a<<b] != "" {
						problems = append(problems, rel+": "+strconv.FormatInt(a<<b, 10)+" is the default of "+ints[a<<b])
					}
				}
			case *ast.BasicLit:
				if !checkValues {
					return true
				}
				if v, ok := intLit(x); ok && ints[v] != "" {
					problems = append(problems, rel+": "+x.Value+" is the default of "+ints[v])
				}
				if x.Kind == token.STRING {
					if s, err := strconv.Unquote(x.Value); err == nil && strs[s] != "" {
						problems = append(problems, rel+": "+x.Value+" is the default of "+strs[s])
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
	for file := range parseAllowed {
		if _, err := os.Stat(filepath.Join(root, file)); err != nil {
			t.Errorf("parseAllowed names %s: %v", file, err)
		}
	}
	for _, files := range []map[string]bool{runtimeFiles, defaultOwnedFiles} {
		for file := range files {
			if _, err := os.Stat(filepath.Join(root, file)); err != nil {
				t.Errorf("the runtime file %s is gone: %v", file, err)
			}
		}
	}
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

func intLit(e ast.Expr) (int64, bool) {
	bl, ok := e.(*ast.BasicLit)
	if !ok || bl.Kind != token.INT {
		return 0, false
	}
	v, err := strconv.ParseInt(bl.Value, 0, 64)
	return v, err == nil
}

// durationLit evaluates N * time.Unit (either order).
func durationLit(x *ast.BinaryExpr) (time.Duration, bool) {
	if x.Op != token.MUL {
		return 0, false
	}
	units := map[string]time.Duration{"Nanosecond": time.Nanosecond, "Microsecond": time.Microsecond,
		"Millisecond": time.Millisecond, "Second": time.Second, "Minute": time.Minute, "Hour": time.Hour}
	for _, pair := range [][2]ast.Expr{{x.X, x.Y}, {x.Y, x.X}} {
		n, ok := intLit(pair[0])
		sel, ok2 := pair[1].(*ast.SelectorExpr)
		if ok && ok2 && isIdent(sel.X, "time") && units[sel.Sel.Name] != 0 {
			return time.Duration(n) * units[sel.Sel.Name], true
		}
	}
	return 0, false
}
