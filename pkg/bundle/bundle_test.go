package bundle

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stoa-gateway/stoa/internal/golden"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

// TestBuildGolden pins the canonical encoding: a change here changes every
// bundle digest, so data planes of two releases would disagree on them.
func TestBuildGolden(t *testing.T) {
	b := mustBuild(t, 42, testObjects(t))
	golden.Check(t, "testdata/specs.bundle.json", b.Bytes())
	if b.Digest() != Digest(sha256.Sum256(b.Bytes())) {
		t.Fatal("digest is not the SHA-256 of the bytes")
	}
	s := string(b.Bytes())
	for _, w := range []string{
		`{"apiVersion":"stoa.io/v1alpha1","kind":"Bundle","revision":42,"objects":[` + "\n",
		`Acme & Sons <EU>`, // never HTML-escaped
		"\n]}\n",
	} {
		if !strings.Contains(s, w) {
			t.Errorf("bundle lacks %q", w)
		}
	}
	// One object per line, in dependency order, each plan.Canonical.
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if len(lines) != 2+b.Len() || b.Len() != 10 {
		t.Fatalf("%d lines for %d objects", len(lines), b.Len())
	}
	for i, o := range b.Objects() {
		var buf bytes.Buffer
		if err := plan.Canonical(&buf, o); err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSuffix(lines[i+1], ","); got != strings.TrimSuffix(buf.String(), "\n") {
			t.Errorf("line %d is not %s's canonical encoding:\n%s", i+2, o.Ref(), got)
		}
		if i > 0 && !b.Objects()[i-1].Ref().Less(o.Ref()) {
			t.Errorf("%s comes after %s", o.Ref(), b.Objects()[i-1].Ref())
		}
	}
	if b.Objects()[0].Kind != spec.KindGateway || b.Objects()[9].Kind != spec.KindWebhook {
		t.Errorf("objects not in dependency order: first %s, last %s", b.Objects()[0].Ref(), b.Objects()[9].Ref())
	}
}

func TestBuildIgnoresInputOrder(t *testing.T) {
	objs := testObjects(t)
	want := mustBuild(t, 3, objs).Digest()
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20; i++ {
		shuffled := append([]*spec.Object(nil), objs...)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if got := mustBuild(t, 3, shuffled).Digest(); got != want {
			t.Fatalf("order changed the digest: %s, want %s", got, want)
		}
	}
	if mustBuild(t, 4, objs).Digest() == want {
		t.Fatal("the revision is not part of the digest")
	}
	// The caller's slice keeps its order.
	if objs[0].Kind != spec.KindGateway && objs[len(objs)-1].Kind != spec.KindWebhook {
		t.Fatal("Build reordered its input")
	}
}

func TestBuildEmpty(t *testing.T) {
	b := mustBuild(t, 1, nil)
	want := `{"apiVersion":"stoa.io/v1alpha1","kind":"Bundle","revision":1,"objects":[` + "\n]}\n"
	if string(b.Bytes()) != want {
		t.Fatalf("empty bundle %q, want %q", b.Bytes(), want)
	}
	p, err := Parse(b.Bytes())
	if err != nil || p.Len() != 0 || p.Digest() != b.Digest() {
		t.Fatalf("Parse(empty) = %v, %v", p, err)
	}
}

func TestBuildRejects(t *testing.T) {
	objs := testObjects(t)
	tool := objs[3]
	badVersion := *tool
	badVersion.APIVersion = "stoa.io/v0"
	noSpec := *tool
	noSpec.Spec = nil
	wrongSpec := *tool
	wrongSpec.Spec = &spec.TenantSpec{}
	for _, tc := range []struct {
		name string
		rev  int64
		objs []*spec.Object
		want string
	}{
		{"revision 0", 0, objs, "revisions run from 1"},
		{"negative revision", -1, objs, "revisions run from 1"},
		{"revision too big", MaxRevision + 1, objs, "revisions run from 1"},
		{"duplicate", 1, append(append([]*spec.Object(nil), objs...), tool), "is given twice"},
		{"apiVersion", 1, []*spec.Object{&badVersion}, `apiVersion "stoa.io/v0"`},
		{"no spec", 1, []*spec.Object{&noSpec}, "missing spec"},
		{"spec of another kind", 1, []*spec.Object{&wrongSpec}, "is a Tenant spec"},
		{"nil", 1, []*spec.Object{nil}, "nil object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Build(tc.rev, tc.objs)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Build error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestBuildRefusesWhatParseWouldRefuse: an object built in code whose
// JSON does not decode to itself (an integer beyond float64 precision)
// would make a bundle that no data plane accepts; Build says so instead.
func TestBuildRefusesWhatParseWouldRefuse(t *testing.T) {
	objs := testObjects(t)
	tool := *objs[3]
	ts := *tool.Spec.(*spec.ToolSpec)
	ts.Operations = append([]spec.Operation(nil), ts.Operations...)
	ts.Operations[0].Input = map[string]any{"maximum": uint64(12345678901234567891)}
	tool.Spec = &ts
	_, err := Build(1, []*spec.Object{objs[1], &tool})
	if err == nil || !strings.Contains(err.Error(), "does not decode to the same object") || !strings.Contains(err.Error(), "Tool/acme/billing-api") {
		t.Fatalf("Build error %v, want a round-trip error naming the tool", err)
	}
}

func TestParseRoundTrip(t *testing.T) {
	for _, objs := range [][]*spec.Object{testObjects(t), loadSpecs(t, "g.yaml", toolsYAML(50, 3, ""))} {
		b := mustBuild(t, 7, objs)
		p, err := Parse(b.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if p.Revision() != 7 || p.Digest() != b.Digest() || p.Len() != b.Len() || !bytes.Equal(p.Bytes(), b.Bytes()) {
			t.Fatalf("Parse(Build) differs: rev %d digest %s len %d", p.Revision(), p.Digest(), p.Len())
		}
		for i := range p.Objects() {
			if !plan.Equal(p.Objects()[i], b.Objects()[i]) {
				t.Fatalf("object %d differs after Parse", i)
			}
		}
		again := mustBuild(t, 7, p.Objects())
		if again.Digest() != b.Digest() {
			t.Fatal("Build(Parse(Build)) changed the digest")
		}
	}
}

// TestParseOnlyCanonical: every way of writing the same (or almost the
// same) content differently is refused, so one content has one digest.
func TestParseOnlyCanonical(t *testing.T) {
	good := string(mustBuild(t, 12, testObjects(t)).Bytes())
	lines := strings.Split(strings.TrimSuffix(good, "\n"), "\n")
	join := func(ls []string) string { return strings.Join(ls, "\n") + "\n" }
	swapped := append([]string(nil), lines...)
	swapped[2], swapped[3] = strings.TrimSuffix(swapped[3], ",")+",", swapped[2]
	dup := append(append([]string(nil), lines[:3]...), lines[2:]...)
	lastComma := append([]string(nil), lines...)
	lastComma[len(lastComma)-2] += ","
	noComma := append([]string(nil), lines...)
	noComma[2] = strings.TrimSuffix(noComma[2], ",")
	for _, tc := range []struct {
		name, in, want string
	}{
		{"empty", "", "not a stoa bundle"},
		{"not JSON", "hello", "not a stoa bundle"},
		{"other kind", `{"apiVersion":"stoa.io/v1alpha1","kind":"Tool"}`, `kind "Tool"`},
		{"other apiVersion", `{"apiVersion":"stoa.io/v2","kind":"Bundle"}`, `unsupported apiVersion "stoa.io/v2"`},
		{"indented", strings.Replace(good, `{"apiVersion":"stoa.io/v1alpha1","kind":"Bundle"`, "{\n  \"apiVersion\": \"stoa.io/v1alpha1\",\"kind\":\"Bundle\"", 1), "not in canonical form"},
		{"keys reordered in header", strings.Replace(good, `{"apiVersion":"stoa.io/v1alpha1","kind":"Bundle"`, `{"kind":"Bundle","apiVersion":"stoa.io/v1alpha1"`, 1), "not in canonical form"},
		{"revision 0", strings.Replace(good, `"revision":12`, `"revision":0`, 1), "revision must be"},
		{"revision leading zero", strings.Replace(good, `"revision":12`, `"revision":012`, 1), "revision must be"},
		{"revision negative", strings.Replace(good, `"revision":12`, `"revision":-12`, 1), "revision must be"},
		{"revision float", strings.Replace(good, `"revision":12`, `"revision":12.0`, 1), `must end with ,"objects":[`},
		{"revision too big", strings.Replace(good, `"revision":12`, `"revision":9999999999999999999`, 1), "revision must be"},
		{"revision above 2^53-1", strings.Replace(good, `"revision":12`, `"revision":9007199254740992`, 1), "revision must be"},
		{"no final newline", strings.TrimSuffix(good, "\n"), "cut short"},
		{"CRLF", strings.ReplaceAll(good, "\n", "\r\n"), `must end with ,"objects":[`},
		{"trailing data", good + "{}\n", "cut short or has data after the end"},
		{"trailing newline", good + "\n", "cut short or has data after the end"},
		{"truncated", good[:len(good)/2], "cut short"},
		{"objects swapped", join(swapped), "out of order"},
		{"object twice", join(dup), "appears twice"},
		{"comma after last object", join(lastComma), "must not end with a comma"},
		{"missing comma", join(noComma), "separated by a comma"},
		{"empty object line", strings.Replace(good, "[\n", "[\n\n", 1), "separated by a comma"},
		{"space in object", strings.Replace(good, `{"apiVersion":"stoa.io/v1alpha1","kind":"Tenant"`, `{"apiVersion": "stoa.io/v1alpha1","kind":"Tenant"`, 1), "not in canonical form"},
		{"unknown field", strings.Replace(good, `"kind":"Tenant","metadata":{`, `"kind":"Tenant","metadata":{"uid":"x",`, 1), "not in canonical form"},
		{"field order", strings.Replace(good, `{"apiVersion":"stoa.io/v1alpha1","kind":"Tenant"`, `{"kind":"Tenant","apiVersion":"stoa.io/v1alpha1"`, 1), "not in canonical form"},
		{"escaped letter", strings.Replace(good, `"displayName":"Globex"`, `"displayName":"Glob\u0065x"`, 1), "not in canonical form"},
		{"HTML-escaped", strings.Replace(good, `Acme & Sons`, `Acme \u0026 Sons`, 1), "not in canonical form"},
		{"duplicate key", strings.Replace(good, `"displayName":"Globex"`, `"displayName":"Globex","displayName":"Globex"`, 1), "not in canonical form"},
		{"number written otherwise", strings.Replace(good, `"minimum":0.5`, `"minimum":5e-1`, 1), "not in canonical form"},
		{"unknown kind", strings.Replace(good, `"kind":"Tenant"`, `"kind":"Tenantx"`, 1), `unknown kind "Tenantx"`},
		{"object apiVersion", strings.Replace(good, `{"apiVersion":"stoa.io/v1alpha1","kind":"Tenant"`, `{"apiVersion":"stoa.io/v0","kind":"Tenant"`, 1), `apiVersion "stoa.io/v0"`},
		{"array instead of object", strings.Replace(good, "[\n", "[\n[],\n", 1), "want one object per line"},
		{"invalid UTF-8", strings.Replace(good, "Globex", "Glob\xffx", 1), "not in canonical form"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.in == good {
				t.Fatal("test input equals the canonical bundle")
			}
			_, err := Parse([]byte(tc.in))
			var fe *FormatError
			if !errors.As(err, &fe) || !errors.Is(err, ErrMalformed) || Reason(err) != "malformed" {
				t.Fatalf("Parse error %v (%T), want a *FormatError", err, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse error %q, want %q", err, tc.want)
			}
		})
	}
	if _, err := Parse([]byte(good)); err != nil {
		t.Fatalf("the canonical bundle itself: %v", err)
	}
}

func TestParseErrorLines(t *testing.T) {
	good := string(mustBuild(t, 1, testObjects(t)).Bytes())
	bad := strings.Replace(good, `"displayName":"Globex"`, `"displayName":"Globex" `, 1)
	_, err := Parse([]byte(bad))
	var fe *FormatError
	if !errors.As(err, &fe) || fe.Line != 4 {
		t.Fatalf("error %v, want line 4 (the second Tenant)", err)
	}
	if !strings.Contains(err.Error(), "Tenant/globex") {
		t.Fatalf("error %q does not name the object", err)
	}
}

func TestDigestText(t *testing.T) {
	d := mustBuild(t, 1, nil).Digest()
	s := d.String()
	if !strings.HasPrefix(s, "sha256:") || len(s) != 7+64 {
		t.Fatalf("digest %q", s)
	}
	for _, in := range []string{s, strings.TrimPrefix(s, "sha256:")} {
		got, err := ParseDigest(in)
		if err != nil || got != d {
			t.Fatalf("ParseDigest(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "sha256:", "sha256:abc", "md5:" + s[7:], s + "00", "sha256:" + strings.Repeat("zz", 32)} {
		if _, err := ParseDigest(in); err == nil {
			t.Errorf("ParseDigest(%q) accepted", in)
		}
	}
}

func TestBundleIsACopy(t *testing.T) {
	src := mustBuild(t, 5, testObjects(t)).Bytes()
	in := bytes.Clone(src)
	p, err := Parse(in)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		in[i] = 'x'
	}
	if !bytes.Equal(p.Bytes(), src) || p.Digest() != Digest(sha256.Sum256(src)) {
		t.Fatal("the bundle shares the caller's buffer")
	}
}

func TestMaxRevisionRoundTrips(t *testing.T) {
	b := mustBuild(t, MaxRevision, testObjects(t))
	p, err := Parse(b.Bytes())
	if err != nil || p.Revision() != MaxRevision {
		t.Fatalf("Parse(revision %d) = %v", int64(MaxRevision), err)
	}
}
