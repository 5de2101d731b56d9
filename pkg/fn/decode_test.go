package fn

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
)

// decodeEvent must decode every event exactly as the SDK does.
func TestDecodeEventIsTheSDKsDecoding(t *testing.T) {
	big := `{"schema":{"type":"struct","fields":[{"field":"id","type":"string"},{"field":"n","type":"int64"}]},"payload":{"id":"x\"}","n":1}}`
	attrs := `"specversion":"1.0","id":"1","source":"/s","type":"t","time":"2026-11-23T17:32:58.123Z","partitionkey":"k"`
	for name, raw := range map[string]string{
		"JSON object data":       `{` + attrs + `,"datacontenttype":"application/json","data":` + big + `}`,
		"data first":             `{"data":` + big + `,` + attrs + `,"datacontenttype":"application/json"}`,
		"no content type":        `{` + attrs + `,"data":` + big + `}`,
		"array data":             `{` + attrs + `,"datacontenttype":"application/json","data":[` + big + `,` + big + `]}`,
		"small data":             `{` + attrs + `,"datacontenttype":"application/json","data":{"a":1}}`,
		"string data":            `{` + attrs + `,"datacontenttype":"text/csv","data":"a,b\nc"}`,
		"base64 data":            `{` + attrs + `,"datacontenttype":"application/json","data_base64":"eyJhIjoxfQ=="}`,
		"no data":                `{` + attrs + `}`,
		"object data, text type": `{` + attrs + `,"datacontenttype":"text/plain","data":` + big + `}`,
		"data_base64 and data":   `{` + attrs + `,"data_base64":"eyJhIjoxfQ==","data":` + big + `}`,
		"missing id":             `{"specversion":"1.0","source":"/s","type":"t","data":` + big + `}`,
		"unbalanced data":        `{` + attrs + `,"data":{"a":[` + strings.Repeat("1,", 40) + `1}}`,
		"spec 0.3":               `{"specversion":"0.3","id":"1","source":"/s","type":"t","datacontenttype":"application/json","data":` + big + `}`,
		"escaped key":            `{` + attrs + `,"d\u0061ta":` + big + `}`,
	} {
		var want, got event.Event
		wantErr := want.UnmarshalJSON([]byte(raw))
		gotErr := decodeEvent([]byte(raw), &got)
		if (wantErr == nil) != (gotErr == nil) {
			t.Errorf("%s: SDK error %v, decodeEvent error %v", name, wantErr, gotErr)
			continue
		}
		if wantErr != nil {
			continue
		}
		if !bytes.Equal(got.Data(), want.Data()) || got.DataBase64 != want.DataBase64 ||
			!reflect.DeepEqual(got.Context, want.Context) {
			t.Errorf("%s: decodeEvent = %v (data %q), SDK = %v (data %q)", name, got, got.Data(), want, want.Data())
		}
	}
}
