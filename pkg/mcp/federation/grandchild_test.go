package federation

import (
	"fmt"
	"os"
	"os/exec"
)

// spawnGrandchild starts `sleep 300` in the stdio server's process group
// and writes its pid to the file FED_STDIO_CHILD names.
func spawnGrandchild() {
	cmd := exec.Command("sleep", "300")
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "spawn grandchild:", err)
		os.Exit(1)
	}
	os.WriteFile(os.Getenv("FED_STDIO_CHILD"), []byte(fmt.Sprint(cmd.Process.Pid)), 0o600)
}
