package federation

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/telemetry/tracing"
)

// TestTraceContextInParams: a call whose context carries a span sends
// its traceparent (and the caller's tracestate, JSON-escaped) in
// params._meta — merged into the 2026-07-28 _meta, added for the
// initialize era and stdio — and nothing when untraced.
func TestTraceContextInParams(t *testing.T) {
	tr := tracing.New(slog.New(slog.DiscardHandler))
	swap, err := tr.Prepare(tracing.Config{Enabled: true, Endpoint: "http://127.0.0.1:1/v1/traces", SampleRatio: 1, Accept: tracing.AcceptAll})
	if err != nil {
		t.Fatal(err)
	}
	swap()
	defer tr.Stop(context.Background())
	in := &tracing.Incoming{Traceparent: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), Tracestate: []byte(`a=x"y\z`)}
	sp := tr.Start(in, "tools/call", tracing.KindClient)
	defer sp.End()
	var tb [tracing.TraceparentLen]byte
	wantTP := string(sp.AppendTraceparent(tb[:0]))
	trace := traceMeta(tracing.ContextWithSpan(context.Background(), sp))
	if traceMeta(context.Background()) != nil {
		t.Error("untraced context: trace members")
	}
	ht := &httpTransport{clientInfo: []byte(`{"name":"stoa","version":"t"}`)}
	r := &request{method: "tools/call", inner: []byte(`"name":"echo","arguments":{"text":"hi"}`), trace: trace}
	for name, body := range map[string][]byte{
		"modern": ht.encode(&httpSession{hs: handshake{modern: true}, meta: ht.modernMeta()}, 7, r),
		"legacy": ht.encode(&httpSession{}, 7, r),
		"stdio":  appendParams(nil, r),
	} {
		var m struct {
			Params struct {
				Meta      map[string]any `json:"_meta"`
				Name      string
				Arguments map[string]any
			}
			Meta map[string]any `json:"_meta"`
			Name string
		}
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, body)
		}
		meta, n := m.Params.Meta, m.Params.Name
		if name == "stdio" {
			meta, n = m.Meta, m.Name
		}
		if meta["traceparent"] != wantTP || meta["tracestate"] != `a=x"y\z` || n != "echo" {
			t.Errorf("%s: %s", name, body)
		}
		if name == "modern" && meta["io.modelcontextprotocol/protocolVersion"] != VersionModern {
			t.Errorf("modern _meta lost its members: %s", body)
		}
	}
	r.trace = nil
	if got := string(appendParams(nil, r)); got != `{"name":"echo","arguments":{"text":"hi"}}` {
		t.Errorf("untraced params: %s", got)
	}
}
