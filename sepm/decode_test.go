package sepm

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
)

// pageSeeds are broken and odd pages a hostile or buggy server might send.
var pageSeeds = []string{
	`{"content":[{"uniqueId":"A","onlineStatus":"one"}]}`,
	`{"content":[{"uniqueId":A}]}`,
	`{"content":[{"uniqueId":"A"`,
	`{"content":[{"uniqueId":"A"}]} trailing`,
	`{"content":[],"totalPages":1e400}`,
	`{"content":{"a":1}}`,
	`[1,2,3]`,
	`{"content":[null,{"uniqueId":"B","group":null}],"lastPage":true}`,
	`{"content":[{"onlineStatus":99999999999999999999}]}`,
	`{"content":[{"uniqueId":"\ud800x\u00e9\n"}]}`,
	`{"CONTENT":[{"UNIQUEID":"case"}]}`,
	`{"content":[{"uniqueId":"x","uniqueId":"y"}]}`,
	`{"content":[{"group":{"domain":{"id":7}}}]}`,
	`{"content":[{"lastUpdateTime":-1.5}]}`,
	`{"content":[{"x":[[[[[[[[[[[[[[[[[[[[{}]]]]]]]]]]]]]]]]]]]}]}`,
	"{\"content\":[{\"uniqueId\":\"\xff\xfe\"}]}",
}

// decodeBoth decodes data with the page decoder and with encoding/json.
func decodeBoth(t *testing.T, data []byte) {
	t.Helper()
	var got, want Page[Computer]
	errGot := unmarshalPage(data, &got)
	errWant := json.Unmarshal(data, &want)
	if (errGot == nil) != (errWant == nil) {
		t.Fatalf("page %q: page decoder error %v, encoding/json error %v", data, errGot, errWant)
	}
	if errWant == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("page %q: page decoder %+v, encoding/json %+v", data, got, want)
	}
}

// TestPageDecoderAgreesWithEncodingJSON: the page decoder refuses exactly the pages
// encoding/json refuses and decodes the others to the same values, on odd pages and
// on thousands of truncated and mutated copies of a real-shaped page.
func TestPageDecoderAgreesWithEncodingJSON(t *testing.T) {
	for _, s := range pageSeeds {
		decodeBoth(t, []byte(s))
	}
	page, err := json.Marshal(map[string]any{"content": fakeComputers(t, 6), "lastPage": false, "totalPages": 3, "totalElements": 18})
	if err != nil {
		t.Fatal(err)
	}
	decodeBoth(t, page)
	rng := rand.New(rand.NewPCG(12, 2026))
	const alphabet = "{}[],:\"0a-.e\\ntf "
	for i := range 3000 {
		d := append([]byte(nil), page...)
		switch i % 3 {
		case 0:
			d = d[:rng.IntN(len(d))]
		case 1:
			for range 1 + rng.IntN(3) {
				d[rng.IntN(len(d))] = alphabet[rng.IntN(len(alphabet))]
			}
		case 2:
			p := rng.IntN(len(d))
			d = append(d[:p:p], append([]byte(`"onlineStatus":`), d[p:]...)...)
		}
		decodeBoth(t, d)
	}
}

// FuzzPageDecoder: `go test -fuzz FuzzPageDecoder ./sepm/` looks for a page on which
// the two decoders disagree (or the page decoder panics).
func FuzzPageDecoder(f *testing.F) {
	for _, s := range pageSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { decodeBoth(t, data) })
}

// TestKeptPagesSurviveBufferReuse: the pages a caller keeps hold their own strings,
// not views of the reply buffer the next page is read into.
func TestKeptPagesSurviveBufferReuse(t *testing.T) {
	f := newFake(t)
	const total = 2345
	f.handle("GET /sepm/api/v1/computers", pager(t, fakeComputers(t, total), envFull))
	c := newTestClient(t, f, nil)
	var kept [][]Computer
	if err := c.EachComputerPage(t.Context(), ComputerQuery{PageSize: 100}, func(p []Computer) error {
		kept = append(kept, p)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Read more replies through the same pool before looking.
	if _, err := c.Computers(t.Context(), ComputerQuery{PageSize: 1000}); err != nil {
		t.Fatal(err)
	}
	i := 0
	for _, p := range kept {
		for _, cm := range p {
			if want := fakeComputerName(i); cm.ComputerName != want || cm.UniqueID != fakeComputerID(i) {
				t.Fatalf("computer %d = %q %q, want %q %q", i, cm.ComputerName, cm.UniqueID, want, fakeComputerID(i))
			}
			i++
		}
	}
	if i != total {
		t.Fatalf("kept %d computers, want %d", i, total)
	}
}
