package policy

import (
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types"
)

// sizeEstimator gives cel-go's static cost estimate the input sizes the
// fast path is proven for: strings up to MaxString, lists (and maps) up to
// MaxList entries, dyn values (claims, arguments) the larger of the two.
// The fast path bails out to cel-go on any larger value, so a rule whose
// estimate stays under the cost limit never exceeds it on the fast path.
type sizeEstimator struct{ l Limits }

func (s sizeEstimator) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	if len(n.Path()) == 0 {
		return nil
	}
	switch n.Type().Kind() {
	case types.StringKind, types.BytesKind:
		return &cost.SizeEstimate{Min: 0, Max: s.l.MaxString}
	case types.ListKind, types.MapKind:
		return &cost.SizeEstimate{Min: 0, Max: s.l.MaxList}
	}
	return &cost.SizeEstimate{Min: 0, Max: max(s.l.MaxString, s.l.MaxList)}
}

func (sizeEstimator) EstimateCallCost(string, string, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return nil
}
