// Command benchspecs writes the bench-apply spec set into a directory, one
// file per tenant, for the bench scripts (bench-apply, bench-controlplane,
// bench-metrics):
//
//	go run ./internal/benchspecs/cmd/benchspecs -n 10000 -m 20 DIR
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/stoa-gateway/stoa/internal/benchspecs"
)

func main() {
	n := flag.Int("n", 10000, "tools")
	m := flag.Int("m", 20, "tenants")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: benchspecs [-n tools] [-m tenants] DIR")
		os.Exit(2)
	}
	if err := benchspecs.WriteDir(flag.Arg(0), *n, *m, ""); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
