package spec

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Text that stoa hands to AI agents (tool titles and descriptions, the
// strings inside input schemas) is read by a model, not by the person who
// reviewed the spec. Characters that render as nothing, or that reorder
// what a reviewer sees, let a spec carry instructions nobody approved
// ("tool poisoning"); so does markup that addresses the model directly.
// FindTextHazards finds both; StripInvisible removes the characters. Both
// are pure functions of their input: pkg/mcp uses StripInvisible on what it
// serves, validation uses FindTextHazards to report where they are.
//
// The classes, and why each is a hazard:
//
//   - HazardTag: Unicode tag characters U+E0000–U+E007F. They mirror ASCII,
//     render as nothing, and models read them as text: hidden instructions.
//   - HazardBidi: bidirectional controls U+202A–U+202E, U+2066–U+2069,
//     U+200E, U+200F and U+061C. They make the displayed order differ from
//     the logical order a model reads ("Trojan Source").
//   - HazardInvisible: zero-width and other default-ignorable format
//     characters — U+200B–U+200D, U+2060–U+2064 (and unassigned U+2065),
//     U+206A–U+206F, U+FEFF, U+00AD (soft hyphen), U+034F, U+180E, U+115F,
//     U+1160, U+3164, U+FFA0, U+FFF9–U+FFFB, U+1BCA0–U+1BCA3,
//     U+1D173–U+1D17A. The joiners U+200C and U+200D are allowed between
//     two non-ASCII letters or symbols, where scripts such as Persian and
//     Devanagari and emoji sequences need them.
//   - HazardControl: C0 controls other than tab, line feed and carriage
//     return, DEL, and C1 controls U+0080–U+009F (terminal escapes among
//     them).
//   - HazardVariation: variation selectors U+FE00–U+FE0F and
//     U+E0100–U+E01EF, except a single one directly after a character it
//     can modify (a visible non-ASCII character or a keycap digit, '#' or
//     '*'; a Han ideograph for U+E0100–U+E01EF): the emoji and ideograph
//     variants they exist for. Runs of them, or one with nothing to
//     modify, can encode arbitrary bytes.
//   - HazardMarkup: prompt-injection markup — tags such as <IMPORTANT> or
//     <SYSTEM>, chat-template tokens (<|im_start|>, [INST], <<SYS>>) and
//     phrases such as "ignore previous instructions" or "do not tell the
//     user". These are visible, so StripInvisible keeps them; they are
//     reported so that a person looks at them.

// HazardClass names one kind of text hazard.
type HazardClass string

// The hazard classes (see the comment at the top of texthazards.go).
const (
	HazardTag       HazardClass = "tag-character"
	HazardBidi      HazardClass = "bidi-control"
	HazardInvisible HazardClass = "invisible-character"
	HazardControl   HazardClass = "control-character"
	HazardVariation HazardClass = "variation-selector"
	HazardMarkup    HazardClass = "injection-markup"
)

// Hazard is one hazardous character or piece of markup in a string.
type Hazard struct {
	Class HazardClass
	// Offset and Len locate it in the string, in bytes.
	Offset, Len int
	// Rune is the character for character classes, 0 for markup.
	Rune rune
	// Text is the markup as written, or the character itself.
	Text string
}

// String renders the hazard for messages: "U+202E (RIGHT-TO-LEFT
// OVERRIDE)" or the markup quoted.
func (h Hazard) String() string {
	if h.Class == HazardMarkup {
		return fmt.Sprintf("%q", h.Text)
	}
	return CodePoint(h.Rune)
}

// CodePoint renders r as U+XXXX, with its name when stoa knows it.
func CodePoint(r rune) string {
	s := fmt.Sprintf("U+%04X", r)
	if name := runeNames[r]; name != "" {
		s += " (" + name + ")"
	}
	return s
}

// runeNames are the names of the hazardous characters people meet most.
var runeNames = map[rune]string{
	0x00AD: "SOFT HYPHEN", 0x034F: "COMBINING GRAPHEME JOINER", 0x061C: "ARABIC LETTER MARK",
	0x180E: "MONGOLIAN VOWEL SEPARATOR",
	0x200B: "ZERO WIDTH SPACE", 0x200C: "ZERO WIDTH NON-JOINER", 0x200D: "ZERO WIDTH JOINER",
	0x200E: "LEFT-TO-RIGHT MARK", 0x200F: "RIGHT-TO-LEFT MARK",
	0x202A: "LEFT-TO-RIGHT EMBEDDING", 0x202B: "RIGHT-TO-LEFT EMBEDDING", 0x202C: "POP DIRECTIONAL FORMATTING",
	0x202D: "LEFT-TO-RIGHT OVERRIDE", 0x202E: "RIGHT-TO-LEFT OVERRIDE",
	0x2060: "WORD JOINER", 0x2061: "FUNCTION APPLICATION", 0x2062: "INVISIBLE TIMES", 0x2063: "INVISIBLE SEPARATOR",
	0x2064: "INVISIBLE PLUS", 0x2066: "LEFT-TO-RIGHT ISOLATE", 0x2067: "RIGHT-TO-LEFT ISOLATE",
	0x2068: "FIRST STRONG ISOLATE", 0x2069: "POP DIRECTIONAL ISOLATE",
	0x3164: "HANGUL FILLER", 0xFEFF: "ZERO WIDTH NO-BREAK SPACE", 0xFFA0: "HALFWIDTH HANGUL FILLER",
	0xE0001: "LANGUAGE TAG", 0xE007F: "CANCEL TAG",
}

// runeClass classifies r on its own; context rules (joiners, variation
// selectors) are applied by the callers.
func runeClass(r rune) HazardClass {
	switch {
	case r < 0x20:
		if r == '\t' || r == '\n' || r == '\r' {
			return ""
		}
		return HazardControl
	case r < 0x7F:
		return ""
	case r <= 0x9F:
		return HazardControl
	case r == 0xAD || r == 0x34F || r == 0x180E || r == 0x115F || r == 0x1160 || r == 0x3164 || r == 0xFFA0 || r == 0xFEFF:
		return HazardInvisible
	case r == 0x61C || r == 0x200E || r == 0x200F || r >= 0x202A && r <= 0x202E || r >= 0x2066 && r <= 0x2069:
		return HazardBidi
	case r >= 0x200B && r <= 0x200D || r >= 0x2060 && r <= 0x2065 || r >= 0x206A && r <= 0x206F || r >= 0xFFF9 && r <= 0xFFFB:
		return HazardInvisible
	case r >= 0x1BCA0 && r <= 0x1BCA3 || r >= 0x1D173 && r <= 0x1D17A:
		return HazardInvisible
	case r >= 0xFE00 && r <= 0xFE0F || r >= 0xE0100 && r <= 0xE01EF:
		return HazardVariation
	case r >= 0xE0000 && r <= 0xE007F:
		return HazardTag
	}
	return ""
}

// isJoiner reports whether r is ZWNJ or ZWJ.
func isJoiner(r rune) bool { return r == 0x200C || r == 0x200D }

// joinable reports whether r may stand next to a joiner: a non-ASCII
// letter, mark or symbol (scripts and emoji that use joiners).
func joinable(r rune) bool {
	return r >= 0x80 && (unicode.IsLetter(r) || unicode.IsMark(r) || unicode.Is(unicode.So, r) || r >= 0x1F000 && r <= 0x1FAFF)
}

// variationBase reports whether the selector vs may follow r: standard
// variation selectors (U+FE00–U+FE0F) pick emoji, mathematical and CJK
// variants of visible non-ASCII characters and keycaps (digits, '#' and
// '*'); ideographic ones (U+E0100–U+E01EF) follow Han ideographs.
func variationBase(r, vs rune) bool {
	if r == utf8.RuneError || runeClass(r) != "" || unicode.IsSpace(r) || !unicode.IsGraphic(r) {
		return false
	}
	if vs >= 0xE0100 {
		return unicode.Is(unicode.Han, r)
	}
	return r >= utf8.RuneSelf || r >= '0' && r <= '9' || r == '#' || r == '*'
}

// needsScan reports whether s has any byte that could start a hazardous
// character (all of them are non-ASCII or ASCII controls).
func needsScan(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || c < 0x20 && c != '\t' && c != '\n' && c != '\r' || c == 0x7F {
			return true
		}
	}
	return false
}

// scanChars calls fn for every hazardous character of s and (with class
// "") for every byte that is not valid UTF-8, in order.
func scanChars(s string, fn func(off, size int, r rune, c HazardClass)) {
	prev := rune(-1) // the previous character kept, -1 after a removed selector or at the start
	keptVS := false  // prev is a variation selector that was allowed
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			fn(i, 1, r, "")
			prev, keptVS = r, false
			i++
			continue
		}
		c := runeClass(r)
		switch c {
		case HazardInvisible:
			// Joiners between letters of scripts that need them, or
			// between emoji, are part of the text.
			if isJoiner(r) && prev >= 0 && (joinable(prev) || keptVS) {
				if next, _ := utf8.DecodeRuneInString(s[i+size:]); joinable(next) {
					c = ""
				}
			}
		case HazardVariation:
			// One selector right after a visible character picks its
			// variant; anything else carries nothing visible.
			if prev >= 0 && variationBase(prev, r) {
				c = ""
			}
		}
		if c != "" {
			fn(i, size, r, c)
			if runeClass(r) == HazardVariation {
				prev = -1
			}
			keptVS = false
			i += size
			continue
		}
		keptVS = runeClass(r) == HazardVariation
		prev = r
		i += size
		if r == 0x1F3F4 { // WAVING BLACK FLAG: subdivision flags spell their region in tag characters
			if n := flagTags(s[i:]); n > 0 {
				i += n
				prev, keptVS = 0xE007F, false
			}
		}
	}
}

// flagTags returns the length of the emoji tag sequence s starts with —
// 2 to 7 tag letters or digits ended by U+E007F CANCEL TAG, as in the flag
// of Scotland — or 0. It is the one legitimate use of tag characters.
func flagTags(s string) int {
	n := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == 0xE007F:
			if n >= 2 && n <= 7 {
				return i + size
			}
			return 0
		case r >= 0xE0030 && r <= 0xE0039 || r >= 0xE0061 && r <= 0xE007A:
			n++
			i += size
		default:
			return 0
		}
	}
	return 0
}

// StripInvisible returns s without the characters FindTextHazards reports
// (tag characters, bidi controls, invisible and control characters, stray
// variation selectors); bytes that are not valid UTF-8 become U+FFFD.
// Markup is visible and is kept. It returns s itself when there is nothing
// to remove.
func StripInvisible(s string) string {
	if !needsScan(s) {
		return s
	}
	var b strings.Builder
	last := 0
	scanChars(s, func(off, size int, r rune, c HazardClass) {
		if b.Cap() == 0 {
			b.Grow(len(s))
		}
		b.WriteString(s[last:off])
		if c == "" {
			b.WriteRune(utf8.RuneError)
		}
		last = off + size
	})
	if b.Cap() == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// FindTextHazards lists the hazards in s in order of their offset: every
// hazardous character (each character of a run of variation selectors
// after the first) and every piece of prompt-injection markup. Bytes that
// are not valid UTF-8 are not hazards here (the loader refuses them).
func FindTextHazards(s string) []Hazard {
	var out []Hazard
	if needsScan(s) {
		scanChars(s, func(off, size int, r rune, c HazardClass) {
			if c != "" {
				out = append(out, Hazard{Class: c, Offset: off, Len: size, Rune: r, Text: s[off : off+size]})
			}
		})
	}
	if m := findMarkup(s); len(m) > 0 {
		out = mergeHazards(out, m)
	}
	return out
}

// mergeHazards merges two offset-ordered lists.
func mergeHazards(a, b []Hazard) []Hazard {
	if len(a) == 0 {
		return b
	}
	out := make([]Hazard, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if a[0].Offset <= b[0].Offset {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return append(append(out, a...), b...)
}

// markupTags are tag names used to address a model with authority; any of
// them written as <name>, </name> or <name attr...> is reported.
var markupTags = []string{"important", "system", "instructions", "instruction", "admin", "hidden", "secret", "assistant", "sys", "prompt", "user_instructions", "system_prompt"}

// markupTokens are chat-template tokens (compared case-insensitively).
var markupTokens = []string{"<|im_start|>", "<|im_end|>", "<|system|>", "<|assistant|>", "<|user|>", "<|endoftext|>", "[inst]", "[/inst]", "<<sys>>", "<</sys>>"}

// markupPhrases are instruction-override phrases, as sequences of words
// matched case-insensitively with whitespace between them. A word "a|b"
// matches either alternative; a trailing "|" makes it optional.
var markupPhrases = [][]string{
	{"ignore|disregard|forget", "all|any|", "of|", "the|your|my|", "previous|prior|above|earlier|preceding|former|system", "instructions|instruction|prompts|prompt|rules|directions|messages|guidelines|context"},
	{"do|don't|dont", "not|", "tell|inform|mention", "this|it|that|anything|", "to|", "the", "user"},
	{"without", "telling|informing", "the", "user"},
	{"new", "system", "prompt|instructions"},
}

// findMarkup finds prompt-injection markup in s. The markup is ASCII and
// matched with ASCII case folding in place, so offsets are offsets into s
// and clean text costs no allocation.
func findMarkup(s string) []Hazard {
	var out []Hazard
	for i := 0; i < len(s); i++ {
		n := 0
		switch c := lowerByte(s[i]); {
		case c == '<' || c == '[':
			if n = matchToken(s[i:]); n == 0 && c == '<' {
				n = matchTag(s[i:])
			}
		case c >= 'a' && c <= 'z' && (i == 0 || !isWordByte(lowerByte(s[i-1]))):
			n = matchPhrase(s[i:])
		}
		if n > 0 {
			out = append(out, Hazard{Class: HazardMarkup, Offset: i, Len: n, Text: s[i : i+n]})
			i += n - 1
		}
	}
	return out
}

func lowerByte(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// hasPrefixFold reports whether s starts with the lower-case ASCII prefix,
// ignoring ASCII case.
func hasPrefixFold(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		if lowerByte(s[i]) != prefix[i] {
			return false
		}
	}
	return true
}

// TextClean reports whether s has no hazard at all; it is FindTextHazards
// without the list, and allocates nothing.
func TextClean(s string) bool {
	if needsScan(s) {
		clean := true
		scanChars(s, func(off, size int, r rune, c HazardClass) {
			if c != "" {
				clean = false
			}
		})
		if !clean {
			return false
		}
	}
	for i := 0; i < len(s); i++ {
		switch c := lowerByte(s[i]); {
		case c == '<' || c == '[':
			if matchToken(s[i:]) > 0 || c == '<' && matchTag(s[i:]) > 0 {
				return false
			}
		case c >= 'a' && c <= 'z' && (i == 0 || !isWordByte(lowerByte(s[i-1]))):
			if matchPhrase(s[i:]) > 0 {
				return false
			}
		}
	}
	return true
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c >= 0x80
}

// matchToken returns the length of the chat-template token s starts with.
func matchToken(s string) int {
	for _, t := range markupTokens {
		if hasPrefixFold(s, t) {
			return len(t)
		}
	}
	return 0
}

// matchTag returns the length of a markup tag (<name ...>, </name>) s
// starts with, for the names in markupTags.
func matchTag(s string) int {
	i := 1
	if i < len(s) && s[i] == '/' {
		i++
	}
	for i < len(s) && s[i] == ' ' {
		i++
	}
	start := i
	for i < len(s) {
		c := lowerByte(s[i])
		if !(c >= 'a' && c <= 'z' || c == '_' || c == '-') {
			break
		}
		i++
	}
	found := false
	for _, t := range markupTags {
		if len(t) == i-start && tagNameIs(s[start:i], t) {
			found = true
			break
		}
	}
	if !found {
		return 0
	}
	// Attributes or spaces up to '>' on the same line, within reason.
	for j := i; j < len(s) && j < i+200; j++ {
		switch s[j] {
		case '>':
			return j + 1
		case '<', '\n':
			return 0
		}
	}
	return 0
}

// tagNameIs compares a tag name with t, ignoring case and '-' vs '_'.
func tagNameIs(name, t string) bool {
	for i := 0; i < len(t); i++ {
		c := lowerByte(name[i])
		if c == '-' {
			c = '_'
		}
		if c != t[i] {
			return false
		}
	}
	return true
}

// phraseWords are markupPhrases with each word split into its
// alternatives.
var phraseWords = func() [][][]string {
	out := make([][][]string, len(markupPhrases))
	for i, words := range markupPhrases {
		for _, w := range words {
			out[i] = append(out[i], strings.Split(w, "|"))
		}
	}
	return out
}()

// phraseStart marks the bytes a phrase can start with.
var phraseStart = func() (m [256]bool) {
	for _, words := range markupPhrases {
		for alt := range strings.SplitSeq(words[0], "|") {
			if alt != "" {
				m[alt[0]] = true
			}
		}
	}
	return m
}()

// matchPhrase returns the length of an instruction-override phrase s
// starts with, or 0.
func matchPhrase(s string) int {
	if !phraseStart[lowerByte(s[0])] {
		return 0
	}
	for _, words := range phraseWords {
		if n := matchFrom(s, 0, words, true); n > 0 {
			return n
		}
	}
	return 0
}

// matchFrom matches words at s[pos:] and returns where the match ends, or
// 0; first says no whitespace precedes the first word.
func matchFrom(s string, pos int, words [][]string, first bool) int {
	if len(words) == 0 {
		return pos
	}
	for _, alt := range words[0] {
		if alt == "" { // the word is optional
			if n := matchFrom(s, pos, words[1:], first); n > 0 {
				return n
			}
			continue
		}
		p := pos
		if !first {
			for p < len(s) && (s[p] == ' ' || s[p] == '\t' || s[p] == '\n' || s[p] == '\r') {
				p++
			}
			if p == pos {
				continue
			}
		}
		if hasPrefixFold(s[p:], alt) && (p+len(alt) == len(s) || !isWordByte(lowerByte(s[p+len(alt)]))) {
			if n := matchFrom(s, p+len(alt), words[1:], false); n > 0 {
				return n
			}
		}
	}
	return 0
}
