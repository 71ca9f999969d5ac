package policy

import (
	"encoding/json"
)

// The fast path's leaves: constants, variables and map and list access.

// ---------------------------------------------------------------- leaves

type constNode struct{ v val }

func (n *constNode) eval(*Input) val { return n.v }

type varNode struct {
	id      varID
	maxStr  uint64
	maxList uint64
}

func (n *varNode) str(s string) val {
	if uint64(len(s)) > n.maxStr {
		return vBail
	}
	return val{k: kString, s: s}
}

func (n *varNode) list(l []string) val {
	if uint64(len(l)) > n.maxList {
		return vBail
	}
	return val{k: kList, ls: l}
}

func (n *varNode) eval(in *Input) val {
	switch n.id {
	case vRequestMethod:
		return n.str(in.Method)
	case vRequestPath:
		return n.str(in.Path)
	case vRequestHost:
		return n.str(in.Host)
	case vRequestHeaders:
		return val{k: kMap, hm: in.Headers, isHM: true}
	case vSourceIP:
		return n.str(in.SourceIP)
	case vMCPArguments:
		return val{k: kMap, mm: in.Arguments}
	case vToolName:
		return n.str(in.target().Tool)
	case vToolTenant:
		return n.str(in.target().Tenant)
	case vOperationName:
		return n.str(in.target().Operation)
	}
	c := in.caller()
	switch n.id {
	case vCallerTenant:
		return n.str(c.Tenant)
	case vCallerConsumer:
		return n.str(c.Consumer)
	case vCallerSubject:
		return n.str(c.Subject)
	case vCallerIssuer:
		return n.str(c.Issuer)
	case vCallerClientID:
		return n.str(c.ClientID)
	case vCallerMethod:
		return n.str(c.Method)
	case vCallerAdmin:
		return boolVal(c.Admin)
	case vCallerClaims:
		return val{k: kMap, mm: c.Claims}
	case vCallerScopes:
		return n.list(c.Scopes)
	case vCallerGroups:
		return n.list(c.Groups)
	case vCallerAudiences:
		return n.list(c.Audiences)
	}
	return vBail
}

// dynVal converts a JSON value (a claim, an argument) as the CEL path's
// adapter does; a type that adapter would treat differently bails.
func dynVal(x any, maxStr, maxList uint64) val {
	switch v := x.(type) {
	case string:
		if uint64(len(v)) > maxStr {
			return vBail
		}
		return val{k: kString, s: v}
	case bool:
		return boolVal(v)
	case float64:
		return val{k: kDouble, f: v}
	case json.Number:
		f, ok := jsonNumber(v)
		if !ok {
			return vErr
		}
		return val{k: kDouble, f: f}
	case int:
		return val{k: kInt, i: int64(v)}
	case int64:
		return val{k: kInt, i: v}
	case nil:
		return val{k: kNull}
	case []any:
		if uint64(len(v)) > maxList {
			return vBail
		}
		return val{k: kList, la: v}
	case []string:
		if uint64(len(v)) > maxList {
			return vBail
		}
		return val{k: kList, ls: v}
	case map[string]any:
		return val{k: kMap, mm: v}
	}
	return vBail
}

// ---------------------------------------------------------------- access

// indexNode is m[k], m.k and l[i].
type indexNode struct {
	operand, key node
	maxStr       uint64
	maxList      uint64
}

func (n *indexNode) eval(in *Input) val {
	m := n.operand.eval(in)
	if m.k <= kBail {
		return m
	}
	k := n.key.eval(in)
	if k.k <= kBail {
		return k
	}
	switch m.k {
	case kMap:
		if k.k != kString {
			return vBail
		}
		if m.isHM {
			if m.hm == nil {
				return vErr
			}
			s, ok := m.hm.Header(k.s)
			if !ok {
				return vErr
			}
			if uint64(len(s)) > n.maxStr {
				return vBail
			}
			return val{k: kString, s: s}
		}
		x, ok := m.mm[k.s]
		if !ok {
			return vErr
		}
		return dynVal(x, n.maxStr, n.maxList)
	case kList:
		if k.k != kInt {
			return vBail
		}
		i := k.i
		switch {
		case m.ls != nil:
			if i < 0 || i >= int64(len(m.ls)) {
				return vErr
			}
			return dynVal(m.ls[i], n.maxStr, n.maxList)
		case m.la != nil:
			if i < 0 || i >= int64(len(m.la)) {
				return vErr
			}
			return dynVal(m.la[i], n.maxStr, n.maxList)
		case m.lc != nil:
			if i < 0 || i >= int64(len(m.lc)) {
				return vErr
			}
			return m.lc[i]
		}
		return vErr
	}
	return vErr
}

// hasNode is has(m.f). cel-go resolves m as usual (a missing key on the
// way is an error) and tests the last field in presence mode: false when m
// has no such key or is a value without fields, an error on a list.
type hasNode struct {
	operand node
	field   string
}

func (n *hasNode) eval(in *Input) val {
	m := n.operand.eval(in)
	if m.k <= kBail {
		return m
	}
	switch m.k {
	case kMap:
		if m.isHM {
			if m.hm == nil {
				return vFalse
			}
			_, ok := m.hm.Header(n.field)
			return boolVal(ok)
		}
		_, ok := m.mm[n.field]
		return boolVal(ok)
	case kList:
		return vErr
	}
	return vFalse
}
