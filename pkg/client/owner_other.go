//go:build !unix

package client

import "io/fs"

func fileOwner(fs.FileInfo) (owner, group string) { return "", "" }
