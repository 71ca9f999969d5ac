package redislimit

import (
	"encoding/json"
	"testing"
)

// FuzzDecodeBlock feeds decodeBlock what anyone with access to Redis could
// publish on the blocks channel. Whatever it accepts is a block a data
// plane can apply as is: a masked prefix, a time, a bounded reason — and
// it survives a round trip through the wire form unchanged.
func FuzzDecodeBlock(f *testing.F) {
	f.Add([]byte(`{"prefix":"192.0.2.7/32","until":"2030-01-01T00:00:00Z","reason":"50 rejections in 1m0s","origin":"dp1","until_ms":1893456000000}`))
	f.Add([]byte(`{"prefix":"2001:db8::/64","until":"2030-01-01T00:00:00.123456789+02:00"}`))
	f.Add([]byte(`{"prefix":"192.0.2.7/24","until":"2030-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"prefix":"0.0.0.0/0","until":"0001-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"prefix":"::ffff:192.0.2.7/128","until":"2030-01-01T00:00:00Z","reason":null}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"prefix":1}`))
	f.Fuzz(func(t *testing.T, p []byte) {
		blk, err := decodeBlock(p)
		if err != nil {
			return
		}
		if !blk.Prefix.IsValid() || blk.Prefix != blk.Prefix.Masked() || blk.Until.IsZero() || len(blk.Reason) > maxReason {
			t.Fatalf("accepted %+v from %q", blk, p)
		}
		wire, err := json.Marshal(wireBlock{Block: blk, UntilMS: blk.Until.UnixMilli()})
		if err != nil {
			t.Fatalf("re-encode %+v: %v", blk, err)
		}
		again, err := decodeBlock(wire)
		if err != nil || again.Prefix != blk.Prefix || !again.Until.Equal(blk.Until) || again.Reason != blk.Reason || again.Origin != blk.Origin {
			t.Fatalf("round trip of %+v: %+v, %v", blk, again, err)
		}
	})
}
