package boltstore

import (
	"testing"

	"github.com/stoa-gateway/stoa/pkg/store"
	"github.com/stoa-gateway/stoa/pkg/store/storetest"
)

func newBenchStore(b *testing.B) store.Store {
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkCommit10kTools: see storetest.BenchCommit10kTools (the same
// workload runs on pgstore).
func BenchmarkCommit10kTools(b *testing.B) { storetest.BenchCommit10kTools(b, newBenchStore) }

// BenchmarkLoad10kTools: see storetest.BenchLoad10kTools.
func BenchmarkLoad10kTools(b *testing.B) { storetest.BenchLoad10kTools(b, newBenchStore) }

// BenchmarkAppendEvent: see storetest.BenchAppendEvent.
func BenchmarkAppendEvent(b *testing.B) { storetest.BenchAppendEvent(b, newBenchStore) }
