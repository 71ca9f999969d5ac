package spec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// checkDefaultLog holds DefaultLog to Default for the objects decoded from
// data: noting the defaults writes exactly what Default writes, and Undo
// brings every object back to what was decoded, byte for byte in JSON and
// value for value (a nil block stays nil, an empty list stays empty).
func checkDefaultLog(t *testing.T, data []byte) {
	t.Helper()
	objs, _ := Parse("f.yaml", data)
	if len(objs) == 0 {
		return
	}
	want, _ := Parse("f.yaml", data) // the same objects, defaulted plainly
	written := make([][]byte, len(objs))
	for i, o := range objs {
		b, err := json.Marshal(o)
		if err != nil {
			return // not encodable either way
		}
		written[i] = b
		Default(want[i])
	}
	before := make([]*Object, len(objs))
	for i, o := range objs {
		before[i] = Clone(o)
	}
	var l DefaultLog
	for _, o := range objs {
		l.Default(o)
	}
	for i, o := range objs {
		if !reflect.DeepEqual(o.Spec, want[i].Spec) || !reflect.DeepEqual(o.Metadata, want[i].Metadata) {
			t.Fatalf("object %d: DefaultLog.Default differs from Default:\n%+v\n%+v", i, o.Spec, want[i].Spec)
		}
	}
	l.Undo()
	for i, o := range objs {
		b, _ := json.Marshal(o)
		if string(b) != string(written[i]) {
			t.Fatalf("object %d after Undo:\n%s\nwant as written:\n%s", i, b, written[i])
		}
		if !reflect.DeepEqual(o.Spec, before[i].Spec) || !reflect.DeepEqual(o.Metadata, before[i].Metadata) {
			t.Fatalf("object %d after Undo: %+v\nwant %+v", i, o.Spec, before[i].Spec)
		}
		// Defaulted again, it is what Default makes of it.
		Default(o)
		if !reflect.DeepEqual(o.Spec, want[i].Spec) {
			t.Fatalf("object %d defaulted after Undo differs", i)
		}
	}
	if !reflect.DeepEqual(l, DefaultLog{}) {
		t.Fatal("Undo leaves the log filled")
	}
}

// TestDefaultLog runs checkDefaultLog on every spec in testdata and the
// examples: every kind, with and without the blocks Default fills.
func TestDefaultLog(t *testing.T) {
	var paths []string
	for _, g := range []string{"testdata/valid/*.yaml", "testdata/golden/*.yaml", "../../examples/*/*.yaml", "../../examples/*/*/*.yaml"} {
		p, _ := filepath.Glob(g)
		paths = append(paths, p...)
	}
	checkSpecFiles(t, paths, checkDefaultLog)
	checkDefaultLog(t, []byte(tenantDoc+"---\n"+toolDoc))
}

// FuzzDefaultLog runs checkDefaultLog on anything that decodes.
func FuzzDefaultLog(f *testing.F) {
	for _, g := range []string{"testdata/valid/*.yaml", "testdata/golden/*.yaml"} {
		paths, _ := filepath.Glob(g)
		for _, p := range paths {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
	f.Add([]byte(tenantDoc + "---\n" + toolDoc))
	f.Fuzz(func(t *testing.T, data []byte) { checkDefaultLog(t, data) })
}
