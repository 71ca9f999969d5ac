package localapi

import (
	"fmt"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/api"
)

// decodeApplySeeds are apply requests, well-formed or not, around the
// objects or in them.
func decodeApplySeeds() []string {
	tool := func(i int) string {
		return fmt.Sprintf(`{"apiVersion":"stoa.io/v1alpha1","kind":"Tool","metadata":{"name":"t%d","namespace":"acme"},"spec":{"upstream":"http://x/%d"}}`, i, i)
	}
	var many []string
	for i := range 150 {
		many = append(many, tool(i))
	}
	list := "[" + strings.Join(many, ",") + "]"
	return []string{
		`{"objects":` + list + `,"dryRun":true,"prune":true,"scope":{"namespaces":["acme"]},"message":"m","withObjects":true,"force":true}`,
		`{"dryRun":true,"objects":[]}`,
		`{"dryRun":true}`,
		`{"objects":null}`,
		`{"objects":[null]}`,
		`{"objects":[` + tool(1) + `,5]}`,
		`{"objects":5}`,
		`{"objects":` + strings.Replace(list, `"kind":"Tool"`, `"kind":"Bogus"`, 1) + `}`,
		`{"objects":` + strings.Replace(list, `"upstream":"http://x/99"`, `"upstream":99`, 1) + `}`,
		`{"objects":[` + tool(1) + `],"objects":[` + tool(2) + `]}`,
		`{"Objects":[` + tool(1) + `]}`,
		`{"objects":[` + tool(1) + `],"dryRun":"yes"}`,
		`{"objects":[` + tool(1) + `]} trailing`,
		`{"objects":[` + tool(1) + `]`,
		`{"objects":[` + tool(1) + `,]}`,
		`{"objects":[` + tool(1) + `],"OBJECTS":[]}`, `{"\u006fbjects":[` + tool(1) + `]}`, `{"objects":[` + tool(1) + `],"\u017fcope":{}}`,
		`{"objects":[` + tool(1) + `]x}`, `{"objects":[` + tool(1) + `]]}`, `{"objects":[` + tool(1) + `] , }`, `{"objects":[` + tool(1) + `` + "\v" + `]}`,
		` {"scope":{"objects":[]},"objects":[` + tool(1) + `,` + tool(2) + `]} `, `{"objects":[{}x]}`, `{"objects":[` + tool(1) + `` + "\n" + `}`,
		`{}`, `{"objects" "x"}`, `{"objects":[` + tool(1) + `],}`,
		``, `[]`, `null`,
	}
}

// TestDecodeApplyMatchesDecodeBody: an apply request decodes to the same
// request, or the same error, as DecodeBody decodes it — objects decoded
// on all processors or left to encoding/json, whatever surrounds them.
func TestDecodeApplyMatchesDecodeBody(t *testing.T) {
	for _, body := range decodeApplySeeds() {
		checkDecodeApply(t, body)
	}
}

// FuzzDecodeApply holds decodeApply to DecodeBody on any body.
func FuzzDecodeApply(f *testing.F) {
	for _, body := range decodeApplySeeds() {
		f.Add(body)
	}
	f.Fuzz(checkDecodeApply)
}

func checkDecodeApply(t *testing.T, body string) {
	t.Helper()
	want, wantErr := decodeWith(body, func(r *httptest.ResponseRecorder, req *api.ApplyRequest) error {
		return DecodeBody(httptest.NewRequest("POST", "/", strings.NewReader(body)), r, req)
	})
	got, gotErr := decodeWith(body, func(r *httptest.ResponseRecorder, req *api.ApplyRequest) error {
		d, err := decodeApply(httptest.NewRequest("POST", "/", strings.NewReader(body)), r)
		if d != nil {
			*req = *d
		}
		return err
	})
	if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
		t.Errorf("%.100s:\nerror %v\nwant  %v", body, gotErr, wantErr)
	} else if wantErr == nil && !reflect.DeepEqual(got, want) { // on an error the request is dropped
		t.Errorf("%.100s:\ndecoded %+v\nwant    %+v", body, got, want)
	}
}

func decodeWith(body string, decode func(*httptest.ResponseRecorder, *api.ApplyRequest) error) (api.ApplyRequest, error) {
	var req api.ApplyRequest
	err := decode(httptest.NewRecorder(), &req)
	return req, err
}
