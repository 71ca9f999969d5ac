package cli

import "path/filepath"

func explainCases() []cmdCase {
	return []cmdCase{
		{name: "a field", args: []string{"tool.auth"}, formats: formats(shapeObject), calls: []string{},
			out: []string{"KIND:     Tool", "FIELD:    spec.auth <ToolAuth>", "Auth is what callers must present; default {type: apiKey}."}},
		{name: "recursive", args: []string{"gateway.xdp", "--recursive"}, out: []string{"interfaces", "perSource"}},
		{name: "through lists", args: []string{"tool.operations.method", "-o", "json"}, out: []string{`"kind": "Tool"`, `"path": "spec.operations.method"`}},
		{name: "unknown field", args: []string{"tool.bogus"}, code: ExitFailure, flagErr: true,
			errOut: []string{"bogus", "hint: list a kind's fields with: stoa explain KIND (e.g. stoa explain tool)"}},
		{name: "unknown kind", args: []string{"tol"}, code: ExitFailure, flagErr: true},
		{name: "no path", code: ExitFailure, flagErr: true, errOut: []string{"accepts 1 arg(s), received 0"}},
	}
}

var petstore = filepath.Join("..", "openapi", "testdata", "petstore.yaml")

func importOpenAPICases() []cmdCase {
	return []cmdCase{
		{name: "petstore", args: []string{petstore, "--tenant", "acme", "--name", "petstore"}, formats: formats(shapeSpec), calls: []string{},
			out: []string{"kind: Tool", "name: petstore", "namespace: acme", "name: list_pets", "name: show_pet_by_id"}},
		{name: "some operations", args: []string{petstore, "-n", "acme", "--name", "petstore", "--include-ops", "listPets", "--upstream", "http://127.0.0.1:9001"},
			out: []string{"name: list_pets", "upstream: http://127.0.0.1:9001"}, notOut: []string{"show_pet_by_id"}},
		{name: "no such tag", args: []string{petstore, "-n", "acme", "--name", "petstore", "--include-tags", "cats"}, code: ExitFailure,
			errOut: []string{"import openapi:"}},
		{name: "missing document", args: []string{"no-such.yaml", "-n", "acme", "--name", "x"}, code: ExitFailure, flagErr: true,
			errOut: []string{"import openapi:", "no-such.yaml"}},
		{name: "no name", args: []string{petstore, "--tenant", "acme"}, code: ExitFailure, flagErr: true,
			errOut: []string{"import openapi: --tenant and --name are required"}},
		{name: "no document", args: []string{"--tenant", "acme", "--name", "x"}, code: ExitFailure, flagErr: true},
	}
}
