package spec

import "testing"

func TestValidateUpstreamTLS(t *testing.T) {
	doc := func(upstream, tlsSpec string) string {
		return "apiVersion: stoa.io/v1alpha1\nkind: Tool\nmetadata: {name: t, namespace: acme}\nspec:\n  upstream: " + upstream +
			"\n  upstreamTLS: " + tlsSpec + "\n"
	}
	for _, tc := range []struct {
		name, upstream, tls string
		sev                 Severity
		path, msg           string
	}{
		{"both CAs", "https://o.internal", "{caFile: /ca.pem, ca: {env: CA}}", SeverityError, "spec.upstreamTLS.ca", "both caFile and ca"},
		{"relative caFile", "https://o.internal", "{caFile: ca.pem}", SeverityError, "spec.upstreamTLS.caFile", "absolute path"},
		{"ca secretRef", "https://o.internal", "{ca: {}}", SeverityError, "spec.upstreamTLS.ca", "missing secretRef"},
		{"server name port", "https://o.internal", "{serverName: o.internal:443}", SeverityError, "spec.upstreamTLS.serverName", "invalid serverName"},
		{"server name", "https://o.internal", "{serverName: -x.internal}", SeverityError, "spec.upstreamTLS.serverName", "invalid serverName"},
		{"insecure", "https://o.internal", "{insecureSkipVerify: true}", SeverityWarning, "spec.upstreamTLS.insecureSkipVerify", "accepts any certificate"},
		{"no https", "http://o.internal", "{caFile: /ca.pem}", SeverityWarning, "spec.upstreamTLS", "no upstream is https"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := mustParse(t, doc(tc.upstream, tc.tls))
			d := findDiag(Validate(objs, ValidateOptions{SkipReferences: true}), tc.path, tc.msg)
			if d == nil || d.Severity != tc.sev || d.Line == 0 {
				t.Fatalf("want a %s at %s containing %q, got %+v", tc.sev, tc.path, tc.msg, Validate(objs, ValidateOptions{SkipReferences: true}))
			}
		})
	}
	for _, ok := range []string{"{caFile: /etc/stoa/ca.pem, serverName: orders.internal}", "{ca: {env: CA}, serverName: 10.0.0.7}", "{serverName: o.internal.}"} {
		objs := mustParse(t, doc("https://10.0.0.7:8443/v1", ok))
		if diags := Validate(objs, ValidateOptions{SkipReferences: true}); len(diags) > 0 {
			t.Errorf("%s: %v", ok, diags)
		}
	}
}
