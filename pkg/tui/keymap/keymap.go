// Package keymap defines the dashboard's key bindings and the help line
// that shows them.
package keymap

import (
	"slices"
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/stoa-gateway/stoa/pkg/tui/styles"
)

// Binding is one action and the keys that trigger it.
type Binding struct {
	Keys []string // as tea.KeyPressMsg.String() spells them
	Key  string   // how the help line shows the keys
	Help string   // what the action does
}

// Matches reports whether msg presses one of b's keys.
func (b Binding) Matches(msg tea.KeyPressMsg) bool {
	return slices.Contains(b.Keys, msg.String())
}

// KeyMap is every binding of the dashboard.
type KeyMap struct {
	Quit, Up, Down, PageUp, PageDown, Top, Bottom  Binding
	Open, Back, Sort, Reverse, Filter, ClearFilter Binding
	Events                                         Binding
}

// Default returns the default bindings.
func Default() *KeyMap {
	return &KeyMap{
		Quit:        Binding{Keys: []string{"q", "ctrl+c"}, Key: "q", Help: "quit"},
		Up:          Binding{Keys: []string{"up", "k"}, Key: "↑/k", Help: "up"},
		Down:        Binding{Keys: []string{"down", "j"}, Key: "↓/j", Help: "down"},
		PageUp:      Binding{Keys: []string{"pgup"}, Key: "pgup", Help: "page up"},
		PageDown:    Binding{Keys: []string{"pgdown"}, Key: "pgdn", Help: "page down"},
		Top:         Binding{Keys: []string{"home", "g"}, Key: "g", Help: "top"},
		Bottom:      Binding{Keys: []string{"end", "G"}, Key: "G", Help: "bottom"},
		Open:        Binding{Keys: []string{"enter"}, Key: "enter", Help: "detail"},
		Back:        Binding{Keys: []string{"esc", "backspace"}, Key: "esc", Help: "back"},
		Sort:        Binding{Keys: []string{"s"}, Key: "s", Help: "sort"},
		Reverse:     Binding{Keys: []string{"r"}, Key: "r", Help: "reverse"},
		Filter:      Binding{Keys: []string{"/"}, Key: "/", Help: "filter"},
		ClearFilter: Binding{Keys: []string{"esc"}, Key: "esc", Help: "clear filter"},
	}
}

// HelpLine renders bindings as "key help · key help", cut to width. The
// last binding (quit, by convention) is always kept: bindings before it
// give way first.
func HelpLine(st *styles.Styles, width int, bs ...Binding) string {
	if len(bs) == 0 {
		return ""
	}
	last := bs[len(bs)-1]
	room := width - len([]rune(last.Key+" "+last.Help))
	var parts []string
	used := 0
	for _, b := range bs[:len(bs)-1] {
		plain := b.Key + " " + b.Help
		if used+len([]rune(plain))+3 > room {
			break
		}
		used += len([]rune(plain)) + 3
		parts = append(parts, st.HelpKey.Render(b.Key)+" "+st.HelpDesc.Render(b.Help))
	}
	parts = append(parts, st.HelpKey.Render(last.Key)+" "+st.HelpDesc.Render(last.Help))
	return strings.Join(parts, st.HelpDesc.Render(" · "))
}
