package auth

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSecretsComparedInConstantTime inspects this package's source: the
// key lookup must compare hashes with subtle.ConstantTimeCompare, and no
// non-test file may compare a .Hash with ==, != or bytes.Equal.
func TestSecretsComparedInConstantTime(t *testing.T) {
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	constantTimeInLookup := false
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.FuncDecl:
				if n.Name.Name == "lookup" && n.Recv != nil && n.Body != nil {
					ast.Inspect(n.Body, func(m ast.Node) bool {
						if isCall(m, "subtle", "ConstantTimeCompare") {
							constantTimeInLookup = true
						}
						return true
					})
				}
			case *ast.BinaryExpr:
				if (n.Op == token.EQL || n.Op == token.NEQ) && (mentionsHash(n.X) || mentionsHash(n.Y)) {
					t.Errorf("%s: hash compared with %s", fset.Position(n.Pos()), n.Op)
				}
			case *ast.CallExpr:
				if isCall(n, "bytes", "Equal") {
					for _, a := range n.Args {
						if mentionsHash(a) {
							t.Errorf("%s: hash compared with bytes.Equal", fset.Position(n.Pos()))
						}
					}
				}
			}
			return true
		})
	}
	if !constantTimeInLookup {
		t.Error("KeyIndex.lookup does not call subtle.ConstantTimeCompare")
	}
}

func isCall(n ast.Node, pkg, fn string) bool {
	c, ok := n.(*ast.CallExpr)
	if !ok {
		return false
	}
	sel, ok := c.Fun.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	id, ok := sel.X.(*ast.Ident)
	return ok && id.Name == pkg && sel.Sel.Name == fn
}

func mentionsHash(e ast.Expr) bool {
	found := false
	ast.Inspect(e, func(n ast.Node) bool {
		if isCall(n, "subtle", "ConstantTimeCompare") {
			return false // its result may be compared
		}
		if s, ok := n.(*ast.SelectorExpr); ok && s.Sel.Name == "Hash" {
			found = true
		}
		return true
	})
	return found
}
