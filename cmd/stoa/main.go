// Command stoa is the stoa CLI.
package main

import (
	"os"

	"github.com/stoa-gateway/stoa/pkg/cli"
)

func main() { os.Exit(cli.Main()) }
