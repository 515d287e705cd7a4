package sepm

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// markWant is what a mark must hold for c.
func markWant(c Computer) string {
	return fmt.Sprintf("%s|%s|%d|%d|%s|%s", c.ComputerName, c.UniqueID, c.OnlineStatus, c.LastUpdateTime, c.ProfileSerialNo, c.Group.ID)
}

func markGot(m ComputerMark) string {
	return fmt.Sprintf("%s|%s|%d|%d|%s|%s", m.ComputerName, m.UniqueID, m.OnlineStatus, m.LastUpdateTime, m.ProfileSerialNo, m.Group.ID)
}

// A mark read gives, record by record, what a Computers read gives of the same
// fields; a record that lacks a field gets it empty, never the value the same slot
// of the previous page held.
func TestMarkPagesReadWhatComputersRead(t *testing.T) {
	items := fakeComputers(t, 2345)
	for i := range items {
		if (i/500)%2 == 1 && i%500 >= 250 { // the second half of pages 2 and 4 lacks what pages 1 and 3 had there
			var cm map[string]any
			_ = json.Unmarshal(items[i], &cm)
			delete(cm, "profileSerialNo")
			delete(cm, "lastUpdateTime")
			delete(cm, "onlineStatus")
			if i%2 == 0 {
				cm["computerName"] = nil
			}
			items[i], _ = json.Marshal(cm)
		}
	}
	items[7] = json.RawMessage(strings.Replace(string(items[7]), `"PC-000007"`, `"PC-\u00e9\"7\\"`, 1))
	f := newFake(t)
	f.handle("GET /sepm/api/v1/computers", pager(t, items, envFull))
	c := newTestClient(t, f, nil)
	want, err := c.Computers(t.Context(), ComputerQuery{PageSize: 500})
	if err != nil {
		t.Fatal(err)
	}
	if want[7].ComputerName != `PC-é"7\` {
		t.Fatalf("the escaped name decodes as %q", want[7].ComputerName)
	}
	var got []string
	var sizes []int
	err = c.EachComputerMarkPage(t.Context(), ComputerQuery{PageSize: 500}, func(page []ComputerMark) error {
		sizes = append(sizes, len(page))
		for _, m := range page {
			got = append(got, markGot(m))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(sizes) != "[500 500 500 500 345]" || len(got) != len(want) {
		t.Fatalf("pages %v, %d marks for %d computers", sizes, len(got), len(want))
	}
	for i := range want {
		if w := markWant(want[i]); got[i] != w {
			t.Fatalf("record %d: mark %q, computer %q", i, got[i], w)
		}
	}
}

// A text field that is not a string refuses the page, as decoding it into a
// Computer does, and names the field.
func TestMarkPagesRefuseWrongTypes(t *testing.T) {
	for _, bad := range []string{`123`, `{"a":1}`, `["x"]`, `true`} {
		items := fakeComputers(t, 3)
		items[1] = json.RawMessage(strings.Replace(string(items[1]), `"PC-000001"`, bad, 1))
		f := newFake(t)
		f.handle("GET /sepm/api/v1/computers", pager(t, items, envFull))
		c := newTestClient(t, f, nil)
		_, cerr := c.Computers(t.Context(), ComputerQuery{})
		err := c.EachComputerMarkPage(t.Context(), ComputerQuery{}, func([]ComputerMark) error { return nil })
		if cerr == nil || err == nil || !strings.Contains(err.Error(), "record 2: computerName") {
			t.Errorf("computerName %s: Computers err %v, marks err %v", bad, cerr, err)
		}
	}
}

func TestUnquoteText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{``, ``},
		{`null`, ``},
		{`""`, ``},
		{`"PC-1"`, `PC-1`},
		{`"a\"b\\c\/d\u00e9\n"`, "a\"b\\c/dé\n"},
		{"\"ab\xffc\"", "ab\uFFFDc"}, // as encoding/json decodes a string that is not UTF-8
	} {
		raw := json.RawMessage(tc.in)
		if err := unquoteText(&raw); err != nil || string(raw) != tc.want {
			t.Errorf("unquoteText(%s) = %q, %v; want %q", tc.in, raw, err, tc.want)
		}
	}
}

// Once a read has sized the buffers, a poll's mark read allocates per page what one
// request costs, not per record: a Computers page allocates about 9,000 times. (A
// whole sweep's first page is decoded a second time, for the reduced records'
// check, at about 6,000 allocations a sweep.)
func TestMarkPagesAllocateNothingPerRecord(t *testing.T) {
	f := newFake(t)
	all := fakeComputers(t, 6000)
	var bodies [][]byte
	for p := range 6 {
		b, _ := json.Marshal(map[string]any{"content": all[p*1000 : (p+1)*1000], "lastPage": p == 5})
		bodies = append(bodies, b)
	}
	f.handle("GET /sepm/api/v1/computers", func(w http.ResponseWriter, r *http.Request) {
		idx, _ := strconv.Atoi(r.URL.Query().Get("pageIndex"))
		writeRaw(w, http.StatusOK, bodies[idx-1])
	})
	c := newTestClient(t, f, nil)
	read := func(q ComputerQuery) {
		if err := c.EachComputerMarkPage(t.Context(), q, func([]ComputerMark) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	read(ComputerQuery{}) // log-in, connection, pooled buffers, the reduced records' check
	perPage := testing.AllocsPerRun(3, func() { read(ComputerQuery{LastUpdate: 1}) }) / 6
	if perPage > 300 {
		t.Errorf("%.0f allocations per page of 1000 marks", perPage)
	}
	t.Logf("%.0f allocations per page (the fake server's included)", perPage)
}
