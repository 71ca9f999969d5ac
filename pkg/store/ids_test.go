package store

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
)

func TestIDPrefix(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"dlv_42", 42, true}, {"42", 42, true}, {"dlv_1", 1, true},
		{"dlv_0", 0, false}, {"0", 0, false}, {"dlv_-3", 0, false}, {"-3", 0, false}, {"+3", 0, false},
		{"dlv_", 0, false}, {"", 0, false}, {"snp_42", 0, false}, {"dlv_42x", 0, false}, {" 42", 0, false},
		{"dlv_9223372036854775808", 0, false}, {"dlv_dlv_4", 0, false},
	} {
		n, ok := DeliveryIDs.Parse(tc.in)
		if n != tc.want || ok != tc.ok {
			t.Errorf("Parse(%q) = %d, %v; want %d, %v", tc.in, n, ok, tc.want, tc.ok)
		}
	}
	if got := SnapshotIDs.Format(12); got != "snp_12" {
		t.Errorf("Format: %s", got)
	}
}

func TestSeqCodecOrders(t *testing.T) {
	prev := EncodeSeq(0)
	for _, n := range []int64{1, 2, 255, 256, 1 << 32, 1<<62 + 7} {
		b := EncodeSeq(n)
		if bytes.Compare(prev, b) >= 0 {
			t.Fatalf("EncodeSeq(%d) does not sort after its predecessor", n)
		}
		if m, ok := DecodeSeq(b); !ok || m != n {
			t.Fatalf("DecodeSeq(EncodeSeq(%d)) = %d, %v", n, m, ok)
		}
		prev = b
	}
	if _, ok := DecodeSeq([]byte{1, 2, 3}); ok {
		t.Fatal("a short key decoded")
	}
}

// FuzzParseID: Parse never panics, accepts only positive numbers, and
// accepts exactly what Format produces.
func FuzzParseID(f *testing.F) {
	for _, s := range []string{"dlv_42", "42", "dlv_", "dlv_-1", "snp_3", "dlv_00042", "dlv_+1", "dlv_1e3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := DeliveryIDs.Parse(s)
		if !ok {
			return
		}
		if n <= 0 {
			t.Fatalf("Parse(%q) accepted %d", s, n)
		}
		bare := strings.TrimPrefix(s, "dlv_")
		if v, err := strconv.ParseInt(bare, 10, 64); err != nil || v != n {
			t.Fatalf("Parse(%q) = %d, but the digits say %d (%v)", s, n, v, err)
		}
		if m, ok := DeliveryIDs.Parse(DeliveryIDs.Format(n)); !ok || m != n {
			t.Fatalf("Format(%d) does not parse back", n)
		}
	})
}
