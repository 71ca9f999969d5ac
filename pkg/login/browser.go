package login

import (
	"errors"
	"os"
	"os/exec"
	"runtime"
)

// SystemBrowser opens url in the desktop's default browser. It fails
// when there is no desktop (no DISPLAY or WAYLAND_DISPLAY on Linux and the
// BSDs, or no opener installed), so the caller prints the URL instead.
func SystemBrowser(url string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", url)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	default:
		if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
			return errors.New("no graphical display")
		}
		cmd = exec.Command("xdg-open", url)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	// Reap the opener without waiting for it: xdg-open may stay in the
	// foreground as long as the browser runs.
	go func() { _ = cmd.Wait() }()
	return nil
}
