// Package benchspecs generates the spec set of scripts/bench-apply.sh for
// tests and benchmarks: n Tools with two operations each across m tenants
// (tool i belongs to tenant i mod m), every description suffixed by salt.
package benchspecs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// TenantYAML is tenant t's file: its Tenant and its share of the n Tools.
func TenantYAML(t, n, m int, salt string) []byte {
	var b strings.Builder
	writeTenant(&b, t, n, m, salt)
	return []byte(b.String())
}

// YAML is all m tenants' documents as one stream.
func YAML(n, m int, salt string) []byte {
	var b strings.Builder
	for t := range m {
		if t > 0 {
			b.WriteString("---\n")
		}
		writeTenant(&b, t, n, m, salt)
	}
	return []byte(b.String())
}

// WriteDir writes one file per tenant, tenant-NN.yaml, into dir.
func WriteDir(dir string, n, m int, salt string) error {
	for t := range m {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("tenant-%02d.yaml", t)), TenantYAML(t, n, m, salt), 0o600); err != nil {
			return err
		}
	}
	return nil
}

func writeTenant(b *strings.Builder, t, n, m int, salt string) {
	fmt.Fprintf(b, "apiVersion: stoa.io/v1alpha1\nkind: Tenant\nmetadata:\n  name: tenant-%02d\nspec:\n  displayName: Tenant %d\n", t, t)
	for i := t; i < n; i += m {
		fmt.Fprintf(b, `---
apiVersion: stoa.io/v1alpha1
kind: Tool
metadata:
  name: tool-%05d
  namespace: tenant-%02d
spec:
  protocol: rest
  description: Generated tool %d%s.
  upstream: http://127.0.0.1:18081/t%d
  auth:
    type: apiKey
  rateLimit: 100/s
  operations:
    - name: get_item
      method: GET
      path: /items/{id}
      description: Fetch one item.
      input:
        type: object
        properties:
          id: {type: string}
        required: [id]
    - name: create_item
      method: POST
      path: /items
      input:
        type: object
        properties:
          name: {type: string}
`, i, t, i, salt, i)
	}
}
