// Command stoad is the stoa gateway daemon.
package main

import (
	"os"

	"github.com/stoa-gateway/stoa/pkg/daemon"
)

func main() { os.Exit(daemon.Main()) }
