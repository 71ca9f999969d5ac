package spec

import (
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// quoted builds the node of a one-line quoted scalar s (with its quotes).
func (p *fastParser) quoted(l *fastLine, s string) ast.ScalarNode {
	v := s[1 : len(s)-1]
	if s[0] == '"' {
		if strings.IndexByte(v, '\\') >= 0 {
			bail()
		}
		return p.newString(l, v, s, token.DoubleQuoteType)
	}
	if strings.HasPrefix(l.text[l.off(s)+len(s):], "'") {
		bail() // '' escapes
	}
	return p.newString(l, v, s, token.SingleQuoteType)
}

// scalar builds the node of plain scalar s, typed as goccy types it.
func (p *fastParser) scalar(l *fastLine, s string) ast.ScalarNode {
	c := s[0]
	if c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.' || reservedWords[s] {
		pos := l.pos(l.off(s))
		tk := token.New(s, s, &pos) // a number, null, bool, inf or nan
		switch tk.Type {
		case token.NullType:
			return ast.Null(tk)
		case token.BoolType:
			return ast.Bool(tk)
		case token.IntegerType, token.BinaryIntegerType, token.OctetIntegerType, token.HexIntegerType:
			return ast.Integer(tk)
		case token.FloatType:
			return ast.Float(tk)
		case token.InfinityType:
			return ast.Infinity(tk)
		case token.NanType:
			return ast.Nan(tk)
		case token.StringType:
			return ast.String(tk)
		}
		bail()
	}
	// Strings starting with a letter are never numbers (token.New would
	// find that out at the cost of a strconv error).
	return p.newString(l, s, s, token.StringType)
}

// reservedWords are the plain scalars goccy reads as null, bool, inf or nan.
var reservedWords = map[string]bool{
	"null": true, "Null": true, "NULL": true, "~": true,
	"true": true, "True": true, "TRUE": true, "false": true, "False": true, "FALSE": true,
	".inf": true, ".Inf": true, ".INF": true, "-.inf": true, "-.Inf": true, "-.INF": true,
	".nan": true, ".NaN": true, ".NAN": true,
}

// stringBox holds a string node and everything it points to in one
// allocation.
type stringBox struct {
	node ast.StringNode
	base ast.BaseNode
	tok  token.Token
	pos  token.Position
}

// newString builds a string node for value (written as origin in l).
func (p *fastParser) newString(l *fastLine, value, origin string, typ token.Type) *ast.StringNode {
	b := grab(&p.arena.strs, 64)
	b.pos = l.pos(l.off(origin))
	b.tok = token.Token{Type: typ, CharacterType: token.CharacterTypeMiscellaneous, Indicator: token.NotIndicator,
		Value: value, Origin: origin, Position: &b.pos}
	if typ != token.StringType {
		b.tok.CharacterType, b.tok.Indicator = token.CharacterTypeIndicator, token.QuotedScalarIndicator
	}
	b.base = ast.BaseNode{}
	b.node = ast.StringNode{BaseNode: &b.base, Token: &b.tok, Value: value}
	return &b.node
}

// entryBox holds a mapping entry, its ':' token and position in one
// allocation.
type entryBox struct {
	node ast.MappingValueNode
	base ast.BaseNode
	tok  token.Token
	pos  token.Position
}

// newEntry builds a mapping entry whose ':' is the first byte of colon.
func (p *fastParser) newEntry(l *fastLine, colon string) *ast.MappingValueNode {
	b := grab(&p.arena.entries, 32)
	b.pos = l.pos(l.off(colon))
	b.tok = token.Token{Type: token.MappingValueType, CharacterType: token.CharacterTypeIndicator,
		Indicator: token.BlockStructureIndicator, Value: ":", Origin: ":", Position: &b.pos}
	b.base = ast.BaseNode{}
	b.node = ast.MappingValueNode{BaseNode: &b.base, Start: &b.tok}
	return &b.node
}
