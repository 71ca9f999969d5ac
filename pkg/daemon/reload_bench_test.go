package daemon

import (
	"context"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/specload"
)

// BenchmarkReloadOneTool measures a data plane's reload of a 10,000-tool
// revision in which one Tool changed, as a verified delta hands it over
// (dataplane.Syncer → applyBundle): the unchanged objects are the very
// objects of the previous revision, the changed one is new. Each
// iteration alternates between two versions of that Tool.
func BenchmarkReloadOneTool(b *testing.B) {
	const n, m = 10000, 20
	res, err := specload.Load(context.Background(), []string{benchSpecs(b, n, m, "")}, specload.Options{})
	if err != nil || res.Diagnostics.HasErrors() {
		b.Fatal(err, res.Diagnostics.Error())
	}
	base := res.Objects
	_, d, stop := benchDaemon(b)
	defer stop()
	if err := d.applyBundle(1, base, "bench", "first"); err != nil {
		b.Fatal(err)
	}
	// Two versions of one tool, in the live set's order.
	live := d.Live().Objects
	at := -1
	for i, o := range live {
		if o.Kind == spec.KindTool && o.Metadata.Name == "tool-04242" {
			at = i
		}
	}
	if at < 0 {
		b.Fatal("tool-04242 not found")
	}
	versions := make([][]*spec.Object, 2)
	for v := range versions {
		objs := append([]*spec.Object(nil), live...)
		c := *objs[at]
		ts := *c.Spec.(*spec.ToolSpec)
		ts.Description = ts.Description + []string{" (a)", " (b)"}[v]
		c.Spec = &ts
		objs[at] = &c
		versions[v] = objs
	}
	rev := int64(2)
	b.ReportAllocs()
	defer reportCPU(b, processCPUTime())
	start := time.Now()
	for b.Loop() {
		if err := d.applyBundle(rev, versions[rev%2], "bench", "one tool"); err != nil {
			b.Fatal(err)
		}
		rev++
	}
	_ = start
}
