package client

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

// TestApplyBody: the apply request assembled around encoded objects is
// byte for byte what json.Marshal writes for it.
func TestApplyBody(t *testing.T) {
	objs := json.RawMessage(`[{"apiVersion":"stoa.io/v1alpha1","kind":"Tenant","metadata":{"name":"a"},"spec":{"displayName":"\u003cb\u003e \u0026"}}]`)
	for i, req := range []*api.ApplyRequest{
		{},
		{DryRun: true, WithObjects: true},
		{Prune: true, Scope: api.PruneScope{All: true, Namespaces: []string{"a", "b"}, Selector: map[string]string{"team": "x<y"}}, Message: "release <7> & more", Force: true},
	} {
		for _, o := range []json.RawMessage{objs, json.RawMessage(`[]`), json.RawMessage(`null`), nil} {
			got, err := applyBody(req, o)
			if err != nil {
				t.Fatal(err)
			}
			want, err := json.Marshal(struct {
				*api.ApplyRequest
				Objects json.RawMessage `json:"objects"`
			}{req, o})
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("request %d, objects %.20s:\n%s\nwant\n%s", i, o, got, want)
			}
		}
	}
	if b, err := encodeBody(encodedBody(`{"x":1}`)); err != nil || string(b) != `{"x":1}` {
		t.Errorf("encoded body re-encoded: %s %v", b, err)
	}
}

// checkDigestList holds the fast reading of a digest list to
// encoding/json's: whatever it accepts, it reads the same.
func checkDigestList(t *testing.T, b []byte) {
	t.Helper()
	var fast api.DigestList
	ok := parseDigestList(b, &fast)
	var want api.DigestList
	err := json.Unmarshal(b, &want)
	if ok && err != nil {
		t.Fatalf("fast path accepts what encoding/json refuses (%v): %q", err, b)
	}
	if ok && !reflect.DeepEqual(fast, want) {
		t.Fatalf("fast path reads %+v, encoding/json %+v: %q", fast, want, b)
	}
	var viaMethod digestList
	mErr := json.Unmarshal(b, &viaMethod)
	if (mErr == nil) != (err == nil) || err == nil && !reflect.DeepEqual(viaMethod.DigestList, want) {
		t.Fatalf("digestList reads %+v (%v), encoding/json %+v (%v): %q", viaMethod.DigestList, mErr, want, err, b)
	}
}

func sampleDigests(n int) api.DigestList {
	l := api.DigestList{Revision: int64(n) * 7}
	for i := range n {
		ref := spec.Ref{Kind: spec.KindTool, Namespace: fmt.Sprintf("tenant-%d", i%3), Name: fmt.Sprintf("tool-%d", i)}
		if i%4 == 0 {
			ref = spec.Ref{Kind: spec.KindTenant, Name: fmt.Sprintf("tenant-%d", i)}
		}
		l.Items = append(l.Items, api.ObjectDigest{Ref: ref, Digest: plan.Digest(sha256.Sum256([]byte(ref.String())))})
	}
	return l
}

// TestDigestList: stoad's answers are read by the fast path, exactly as
// encoding/json reads them; anything else falls back to encoding/json.
func TestDigestList(t *testing.T) {
	for _, n := range []int{0, 1, 5, 300} {
		l := sampleDigests(n)
		b, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		var got api.DigestList
		if !parseDigestList(b, &got) && n > 0 {
			t.Fatalf("%d digests: fast path refuses stoad's answer %.200s", n, b)
		}
		if !reflect.DeepEqual(got.Items, l.Items) && n > 0 || got.Revision != l.Revision {
			t.Fatalf("%d digests read as %+v", n, got)
		}
		checkDigestList(t, b)
		indented, _ := json.MarshalIndent(l, "", "  ")
		checkDigestList(t, indented)
	}
	for _, s := range []string{
		`{"revision":1,"items":null}`,
		`{"revision":1,"items":[]}`,
		`{"items":[],"revision":2}`,
		`{"revision":1,"items":[{"ref":{"kind":"Tool","name":"a\u0062"},"digest":"` + strings.Repeat("ab", 32) + `"}]}`,
		`{"revision":1,"items":[{"ref":{"kind":"Tool","name":"a"},"digest":"` + strings.Repeat("AB", 32) + `"}]}`,
		`{"revision":1,"items":[{"ref":{"kind":"Tool","name":"a"},"digest":"` + strings.Repeat("ab", 31) + `"}]}`,
		`{"revision":1,"items":[{"ref":{"kind":"Tool","name":"a"},"digest":"` + strings.Repeat("zz", 32) + `"}]}`,
		`{"revision":-1,"items":[]}`,
		`{"revision":01,"items":[]}`,
		`{"revision":1,"items":[]} `,
		`{"revision":1,"items":[],"extra":1}`,
	} {
		checkDigestList(t, []byte(s))
	}
}

// FuzzDigestList: the fast path never reads anything differently from
// encoding/json.
func FuzzDigestList(f *testing.F) {
	for _, n := range []int{0, 2} {
		b, _ := json.Marshal(sampleDigests(n))
		f.Add(b)
	}
	f.Add([]byte(`{"revision":1,"items":[{"ref":{"kind":"Tool","namespace":"","name":"é"},"digest":"` + strings.Repeat("0f", 32) + `"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) { checkDigestList(t, b) })
}
