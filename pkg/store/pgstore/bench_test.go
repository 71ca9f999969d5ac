package pgstore

import (
	"testing"

	"github.com/stoa-gateway/stoa/pkg/store"
	"github.com/stoa-gateway/stoa/pkg/store/storetest"
)

// The same workloads as boltstore's benchmarks (storetest's), on a fresh
// database each: compare with
//
//	go test -run '^$' -bench 10kTools -benchtime 5x ./pkg/store/boltstore/ ./pkg/store/pgstore/

func newBenchStore(b *testing.B) store.Store {
	s, err := Open(ctx, freshDB(b), Options{})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func BenchmarkCommit10kTools(b *testing.B) { storetest.BenchCommit10kTools(b, newBenchStore) }

func BenchmarkLoad10kTools(b *testing.B) { storetest.BenchLoad10kTools(b, newBenchStore) }

func BenchmarkAppendEvent(b *testing.B) { storetest.BenchAppendEvent(b, newBenchStore) }
