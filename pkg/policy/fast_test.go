package policy

import (
	"math/rand/v2"
	"testing"
)

// smallLimits make the differential tests reach the fast path's bail-outs
// with small inputs.
var smallLimits = Limits{Cost: 1000, MaxString: 16, MaxList: 4}

func testCompiler(t testing.TB, l Limits) *Compiler {
	t.Helper()
	c, err := NewCompiler(l)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// checkFastMatchesCEL compiles expr and, if the fast path takes it,
// checks that it agrees with cel-go on in: the same bool, or both failing.
// It reports whether the fast path answered.
func checkFastMatchesCEL(t *testing.T, c *Compiler, expr string, in *Input) bool {
	t.Helper()
	p, diags := c.Compile(Owner{Kind: "Tool", Name: "t"}, Spec{Rules: []RuleSpec{{Allow: expr}}})
	if diags != nil {
		return false
	}
	r := p.Rules[0]
	if r.fast == nil {
		return false
	}
	v := r.fast.eval(in)
	want, err := r.EvalCEL(in)
	var claims, args any
	if in.Caller != nil {
		claims = in.Caller.Claims
	}
	args = in.Arguments
	defer func() {
		if t.Failed() {
			t.Logf("claims=%#v\nargs=%#v\nheaders=%#v\nin=%+v", claims, args, in.Headers, *in)
		}
	}()
	switch v.k {
	case kBail:
		return false
	case kErr:
		if err == nil {
			t.Errorf("%s: fast path failed, cel-go gives %v", expr, want)
		}
	case kBool:
		if err != nil {
			t.Errorf("%s: fast path gives %v, cel-go fails: %v", expr, v.b, err)
		}
		if v.b != want {
			t.Errorf("%s: fast path gives %v, cel-go %v", expr, v.b, want)
		}
	default:
		t.Errorf("%s: fast path returned kind %d", expr, v.k)
	}
	return true
}

// FuzzFastPath is the differential test of the fast path against cel-go:
// the bytes pick an expression from a grammar of policy shapes and an
// input; whenever the fast path answers, cel-go must agree.
func FuzzFastPath(f *testing.F) {
	for i := range 64 {
		r := rand.New(rand.NewPCG(uint64(i), 7))
		b := make([]byte, 48)
		for j := range b {
			b[j] = byte(r.IntN(256))
		}
		f.Add(b)
	}
	c := testCompiler(f, smallLimits)
	f.Fuzz(func(t *testing.T, b []byte) {
		g := &exprGen{b: b}
		expr := g.boolExpr(3)
		in := g.input()
		checkFastMatchesCEL(t, c, expr, in)
	})
}

// TestFastPathDifferential runs the differential check over many
// generated cases on every go test run (the fuzz target explores more).
func TestFastPathDifferential(t *testing.T) {
	c := testCompiler(t, smallLimits)
	r := rand.New(rand.NewPCG(1, 2))
	n := 4000
	if testing.Short() {
		n = 500
	}
	answered := 0
	for range n {
		b := make([]byte, 64)
		for j := range b {
			b[j] = byte(r.IntN(256))
		}
		g := &exprGen{b: b}
		expr := g.boolExpr(3)
		if checkFastMatchesCEL(t, c, expr, g.input()) {
			answered++
		}
	}
	// The grammar is built so that most expressions are fast-path shapes;
	// if the fast path stopped answering, this test would prove nothing.
	if answered < n/4 {
		t.Errorf("fast path answered only %d of %d cases", answered, n)
	}
	t.Logf("fast path answered %d of %d cases", answered, n)
}
