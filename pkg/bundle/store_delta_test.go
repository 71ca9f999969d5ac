package bundle

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/spec"
)

var (
	mediumOnce sync.Once
	mediumObjs []*spec.Object
)

// mediumConfig is 300 tools in 4 tenants.
func mediumConfig(t testing.TB) []*spec.Object {
	t.Helper()
	mediumOnce.Do(func() { mediumObjs = loadSpecs(t, "medium.yaml", toolsYAML(300, 4, "")) })
	return mediumObjs
}

// revisionOf is revision rev of the medium configuration: one tool's
// description changed per revision, so each differs from the one before
// by one object.
func revisionOf(t testing.TB, objs []*spec.Object, rev int64) *Bundle {
	t.Helper()
	var tools []spec.Ref
	for _, o := range objs {
		if o.Kind == spec.KindTool {
			tools = append(tools, o.Ref())
		}
	}
	out := withToolDescription(objs, tools[int(rev)%len(tools)], fmt.Sprintf("revision %d", rev))
	return mustBuild(t, rev, out)
}

func countPrefix(names []string, prefix string) int {
	n := 0
	for _, name := range names {
		if strings.HasPrefix(name, prefix) {
			n++
		}
	}
	return n
}

func TestStoreWritesDeltas(t *testing.T) {
	s, v := testKey(t)
	dir := filepath.Join(t.TempDir(), "bundles")
	objs := mediumConfig(t)
	st := NewStore(dir)
	var last *Bundle
	full := 0
	for rev := int64(1); rev <= 150; rev++ {
		b := revisionOf(t, objs, rev)
		if err := st.Write(b, mustSign(t, b.Bytes(), s)); err != nil {
			t.Fatal(err)
		}
		names := dirNames(t, dir)
		if countPrefix(names, "bundle-") != 2 || countPrefix(names, ".tmp-") != 0 {
			t.Fatalf("revision %d: %v, want one bundle pair and no temp files", rev, names)
		}
		deltas := countPrefix(names, "delta-")
		if deltas == 0 {
			full++
		}
		if deltas > maxDeltas {
			t.Fatalf("revision %d: %d deltas, at most %d", rev, deltas, maxDeltas)
		}
		got, sig, err := ReadLastGood(dir, v)
		if err != nil || got.Digest() != b.Digest() || got.Revision() != rev || string(got.Bytes()) != string(b.Bytes()) {
			t.Fatalf("revision %d: ReadLastGood = %v, %v", rev, got, err)
		}
		if err := Verify(got.Bytes(), sig, v); err != nil {
			t.Fatalf("revision %d: the signature returned: %v", rev, err)
		}
		last = b
	}
	// A base of ~100 KB takes deltas of ~1 KB up to a quarter of it or
	// maxDeltas: some writes were whole, most were not.
	if full < 2 || full > 20 {
		t.Fatalf("%d of 150 writes were whole", full)
	}
	// A new Store (a restarted data plane) continues the chain.
	st2 := NewStore(dir)
	got, _, err := st2.Load(v)
	if err != nil || got.Digest() != last.Digest() {
		t.Fatalf("Load = %v, %v", got, err)
	}
	before := countPrefix(dirNames(t, dir), "delta-")
	b := revisionOf(t, objs, 151)
	if err := st2.Write(b, mustSign(t, b.Bytes(), s)); err != nil {
		t.Fatal(err)
	}
	if after := countPrefix(dirNames(t, dir), "delta-"); before > 0 && before < maxDeltas/2 && after != before+1 {
		t.Fatalf("after a restart: %d deltas, then %d; want one more", before, after)
	}
	if got, _, err := ReadLastGood(dir, v); err != nil || got.Digest() != b.Digest() {
		t.Fatalf("ReadLastGood = %v, %v", got, err)
	}
}

// withDeltas writes revisions 1 to 4, the last three as deltas.
func withDeltas(t *testing.T, dir string) (*Bundle, []Digest) {
	t.Helper()
	s, _ := testKey(t)
	st := NewStore(dir)
	var b *Bundle
	var ds []Digest
	for rev := int64(1); rev <= 4; rev++ {
		b = revisionOf(t, mediumConfig(t), rev)
		if err := st.Write(b, mustSign(t, b.Bytes(), s)); err != nil {
			t.Fatal(err)
		}
		if rev > 1 {
			ds = append(ds, b.Digest())
		}
	}
	if n := countPrefix(dirNames(t, dir), "delta-"); n != 3 {
		t.Fatalf("%d deltas, want 3", n)
	}
	return b, ds
}

func TestStoreDeltasReverified(t *testing.T) {
	s, v := testKey(t)
	_, otherPub, _ := GenerateKeyPair(nil)
	other, _ := LoadVerifier(otherPub)
	editDelta := func(dir string, to Digest, edit func(*Delta)) {
		p := filepath.Join(dir, deltaName(to))
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		d, err := ParseDelta(raw)
		if err != nil {
			t.Fatal(err)
		}
		edit(d)
		out, _ := json.Marshal(d)
		os.WriteFile(p, out, 0o600)
	}
	for _, tc := range []struct {
		name   string
		damage func(dir string, ds []Digest)
		v      interface{}
		reason string
		want   string
	}{
		{"middle delta changed", func(dir string, ds []Digest) {
			editDelta(dir, ds[1], func(d *Delta) {
				ts := *d.Upsert[0].Spec.(*spec.ToolSpec)
				ts.Description = "forged"
				c := *d.Upsert[0]
				c.Spec = &ts
				d.Upsert[0] = &c
			})
		}, nil, "digest", ""},
		{"last signature replaced", func(dir string, ds []Digest) {
			editDelta(dir, ds[2], func(d *Delta) { d.Signature = mustSign(t, []byte("other"), s) })
		}, nil, "signature", ""},
		{"another key", func(string, []Digest) {}, other, "signature", ""},
		{"delta missing", func(dir string, ds []Digest) { os.Remove(filepath.Join(dir, deltaName(ds[0]))) }, nil, "malformed", "which is missing"},
		{"deltas reordered", func(dir string, ds []Digest) {
			p := pointer{Revision: 4, Digest: ds[2], Base: new(Digest), Deltas: []Digest{ds[1], ds[0], ds[2]}}
			raw, _ := os.ReadFile(filepath.Join(dir, pointerName))
			var cur pointer
			json.Unmarshal(raw, &cur)
			p.Base = cur.Base
			writePointer(dir, p)
		}, nil, "malformed", "leads from"},
		{"pointer ends elsewhere", func(dir string, ds []Digest) {
			raw, _ := os.ReadFile(filepath.Join(dir, pointerName))
			var cur pointer
			json.Unmarshal(raw, &cur)
			cur.Deltas = cur.Deltas[:2]
			writePointer(dir, cur)
		}, nil, "malformed", "do not lead"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			_, ds := withDeltas(t, dir)
			tc.damage(dir, ds)
			vv := v
			if tc.v != nil {
				vv = other
			}
			got, _, err := ReadLastGood(dir, vv)
			if got != nil || Reason(err) != tc.reason || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ReadLastGood = %v, %v; want reason %q and %q", got, err, tc.reason, tc.want)
			}
		})
	}
}

func TestStoreCrashBetweenSteps(t *testing.T) {
	s, v := testKey(t)
	dir := t.TempDir()
	b4, _ := withDeltas(t, dir)
	// Revision 5's delta written, the pointer not yet moved.
	b5 := revisionOf(t, mediumConfig(t), 5)
	d := Diff(b4, b5)
	d.Signature = mustSign(t, b5.Bytes(), s)
	raw, _ := json.Marshal(&d)
	if err := writeFile(dir, deltaName(b5.Digest()), raw); err != nil {
		t.Fatal(err)
	}
	got, _, err := ReadLastGood(dir, v)
	if err != nil || got.Digest() != b4.Digest() {
		t.Fatalf("after a crash before the pointer moved: %v, %v", got, err)
	}
	// The next whole write removes the stray delta with the others.
	if err := WriteFileAtomic(dir, b5, d.Signature); err != nil {
		t.Fatal(err)
	}
	if n := countPrefix(dirNames(t, dir), "delta-"); n != 0 {
		t.Fatalf("%d deltas left after a whole write", n)
	}
}

// TestStoreKill9 kills a process writing revisions with SIGKILL at random
// moments, again and again on the same directory: every time, the last
// good bundle must load and verify, and be the last revision the process
// reported written, or the one it was writing.
func TestStoreKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	s, v := testKey(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "key"), keyPriv, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pub"), keyPub, 0o600); err != nil {
		t.Fatal(err)
	}
	bundles := filepath.Join(dir, "bundles")
	rng := rand.New(rand.NewPCG(1, 2))
	kills := 0
	for round := 0; round < 25; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestStoreKill9Writer$", "-test.v")
		cmd.Env = append(os.Environ(), "STOA_STORE_KILL9_DIR="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		written := make(chan int64, 1024)
		go func() {
			defer close(written)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if r, ok := strings.CutPrefix(sc.Text(), "written "); ok {
					n, _ := strconv.ParseInt(r, 10, 64)
					written <- n
				}
			}
		}()
		// Wait for the first write of this round, then kill at a random
		// moment of the next ones.
		first, ok := <-written
		if !ok {
			cmd.Wait()
			t.Fatalf("round %d: the writer wrote nothing", round)
		}
		time.Sleep(time.Duration(rng.IntN(40_000)) * time.Microsecond)
		cmd.Process.Signal(syscall.SIGKILL)
		last := first
		for n := range written {
			last = n
		}
		cmd.Wait()
		kills++
		got, _, err := ReadLastGood(bundles, v)
		if err != nil {
			t.Fatalf("round %d (killed after revision %d): %v", round, last, err)
		}
		if got.Revision() != last && got.Revision() != last+1 {
			t.Fatalf("round %d: revision %d on disk, the writer had written %d", round, got.Revision(), last)
		}
		if err := Verify(got.Bytes(), mustSign(t, got.Bytes(), s), v); err != nil {
			t.Fatal(err)
		}
	}
	if kills != 25 {
		t.Fatalf("%d kills", kills)
	}
}

// TestStoreKill9Writer is TestStoreKill9's writer process.
func TestStoreKill9Writer(t *testing.T) {
	dir := os.Getenv("STOA_STORE_KILL9_DIR")
	if dir == "" {
		t.Skip("run by TestStoreKill9")
	}
	priv, err := os.ReadFile(filepath.Join(dir, "key"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := LoadSigner(priv, []byte("test-password"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := os.ReadFile(filepath.Join(dir, "pub"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := LoadVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	st := NewStore(filepath.Join(dir, "bundles"))
	rev := int64(1)
	if b, _, err := st.Load(v); err == nil {
		rev = b.Revision() + 1
	}
	objs := mediumConfig(t)
	for ; ; rev++ {
		b := revisionOf(t, objs, rev)
		if err := st.Write(b, mustSign(t, b.Bytes(), s)); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("written %d\n", rev)
	}
}
