package policy

// Reads is what the chain's rules read: every deny rule and the allow
// rules of the deciding level (the only ones evaluated).
func (c *Chain) Reads() Group {
	var g Group
	for _, r := range c.deny {
		g |= r.reads
	}
	for _, r := range c.allow {
		g |= r.reads
	}
	return g
}
