package golden

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestDiff(t *testing.T) {
	if d := Diff("a\nb\n", "a\nb\n"); d != "" {
		t.Fatalf("equal inputs: %q", d)
	}
	d := Diff("1\n2\n3\n4\n5\n6\n", "1\n2\n3\n4\nfive\n6\n")
	if !strings.HasPrefix(d, "first difference at line 5:\n") || !strings.Contains(d, "-5\n+five\n") || !strings.Contains(d, " 4\n") || strings.Contains(d, "1\n") {
		t.Fatalf("diff:\n%s", d)
	}
	if d := Diff("a\n", "a\nb\n"); !strings.Contains(d, "line 2") || !strings.Contains(d, "+b\n") {
		t.Fatalf("added line:\n%s", d)
	}
}

// recorder is a testing.TB that records failures instead of stopping.
type recorder struct {
	testing.TB
	failed bool
	msg    string
}

func (r *recorder) Helper()                      {}
func (r *recorder) Errorf(f string, args ...any) { r.failed, r.msg = true, f }
func (r *recorder) Fatalf(f string, args ...any) { r.failed, r.msg = true, f; panic(r) }
func (r *recorder) Fatal(args ...any)            { r.failed = true; panic(r) }

func check(path string, got []byte) (r *recorder) {
	r = &recorder{}
	defer func() {
		if p := recover(); p != nil && p != r {
			panic(p)
		}
	}()
	Check(r, path, got)
	return r
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "out.golden")
	if r := check(path, []byte("x\n")); !r.failed {
		t.Fatal("a missing golden file passed")
	}
	*update = true
	r := check(path, []byte("x\n"))
	*update = false
	if r.failed {
		t.Fatalf("-update failed: %s", r.msg)
	}
	if r := check(path, []byte("x\n")); r.failed {
		t.Fatalf("same output failed: %s", r.msg)
	}
	if r := check(path, []byte("y\n")); !r.failed {
		t.Fatal("different output passed")
	}
}
