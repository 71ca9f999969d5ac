// Package common holds what every dashboard component shares: the
// Component interface, the messages data arrives in, the styles and key
// map, and the figure formatting.
package common

import (
	tea "charm.land/bubbletea/v2"

	"github.com/stoa-gateway/stoa/pkg/tui/keymap"
	"github.com/stoa-gateway/stoa/pkg/tui/styles"
)

// Component is one part of the dashboard. It changes only in Update, in
// response to messages (data from stoad, keys, sizes), and renders into
// exactly the size it was last given.
type Component interface {
	// Update applies msg and returns a command to run, if any.
	Update(msg tea.Msg) tea.Cmd
	// View renders the component, at most width columns and height lines.
	View() string
	// SetSize sets the space the component renders into.
	SetSize(width, height int)
}

// Common is the context every component shares.
type Common struct {
	Styles *styles.Styles
	Keys   *keymap.KeyMap
	// History keeps recent figures per tool for sparklines.
	History *History
}

// New returns a Common with default styles and keys.
func New() *Common {
	return &Common{Styles: styles.Default(), Keys: keymap.Default(), History: NewHistory(300)}
}
