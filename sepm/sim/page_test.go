package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestComputerPageBytesUnchanged: the streamed page, its records built outside the
// model lock, is byte for byte the reply the simulator sent when it built the
// whole page under the lock and encoded it at once, for every kind of query
// (sorts, orders, paging past the end, lastUpdate through the index, names, ids,
// hardware keys, reduced records, one group) on a fleet that has been checking in.
func TestComputerPageBytesUnchanged(t *testing.T) {
	tm := newTestModel(t, Options{Clients: 2500, Heartbeat: 2 * time.Second, OfflinePercent: 10, RoamingPercent: 20, PolicyFetch: 0.7})
	m := tm.model
	for range 20 {
		tm.clk.set(tm.clk.now().Add(150 * time.Millisecond))
		m.mu.Lock()
		m.stepLocked(tm.clk.now())
		m.mu.Unlock()
	}
	now := tm.clk.now().UnixMilli()
	c0, c1 := m.clients[17], m.clients[2400]
	queries := []string{
		"", "pageSize=1000", "pageSize=1000&pageIndex=3", "pageSize=1000&pageIndex=4", "pageIndex=99999999999",
		"sort=COMPUTER_ID", "sort=COMPUTER_ID&order=DESC&pageSize=7&pageIndex=5", "order=desc&pageSize=300&pageIndex=2",
		"lastUpdate=" + strconv.FormatInt(now-1000, 10) + "&pageSize=50",
		"lastUpdate=" + strconv.FormatInt(now-1000, 10) + "&pageSize=50&pageIndex=3&order=DESC&sort=COMPUTER_ID",
		"lastUpdate=" + strconv.FormatInt(now-2500, 10) + "&pageSize=1000&pageIndex=2",
		"lastUpdate=1&pageSize=1000", "lastUpdate=" + strconv.FormatInt(now+5, 10),
		"computerName=" + url.QueryEscape("*-0*1") + "&pageSize=100", "computerName=nomatch",
		"computer_id=" + c0.uid, "hardware_key=" + c1.hwKey, "computer_id=" + c0.uid + "&lastUpdate=1",
		"verbose=true&pageSize=40&pageIndex=2", "verbose=true&lastUpdate=" + strconv.FormatInt(now-1000, 10),
	}
	for _, group := range []string{"", m.groups[1].id, m.groups[len(m.groups)-1].id} {
		for _, qs := range queries {
			vals, _ := url.ParseQuery(qs)
			q, err := parseComputerQuery(vals)
			if err != nil {
				t.Fatalf("%s: %v", qs, err)
			}
			ref, err := m.refComputersPage(q, group)
			if err != nil {
				t.Fatal(err)
			}
			want := httptest.NewRecorder()
			writeJSON(want, 200, ref)
			p, err := m.computersPage(q, group)
			if err != nil {
				t.Fatal(err)
			}
			got := httptest.NewRecorder()
			m.writeComputerPage(got, p)
			if !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) {
				t.Fatalf("group %q, query %q: streamed page differs (%d bytes, want %d)\n got: %.300s\nwant: %.300s",
					group, qs, got.Body.Len(), want.Body.Len(), got.Body.Bytes(), want.Body.Bytes())
			}
			if got.Header().Get("Content-Type") != "application/json" || got.Code != 200 {
				t.Fatalf("%s: %d %q", qs, got.Code, got.Header().Get("Content-Type"))
			}
		}
	}
	// Random lastUpdate values and pages.
	r := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		qs := fmt.Sprintf("lastUpdate=%d&pageSize=%d&pageIndex=%d", now-r.Int64N(3000), 1+r.IntN(200), 1+r.IntN(8))
		vals, _ := url.ParseQuery(qs)
		q, _ := parseComputerQuery(vals)
		ref, _ := m.refComputersPage(q, "")
		want := httptest.NewRecorder()
		writeJSON(want, 200, ref)
		p, _ := m.computersPage(q, "")
		got := httptest.NewRecorder()
		m.writeComputerPage(got, p)
		if !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) {
			t.Fatalf("query %q: streamed page differs", qs)
		}
	}
}

// TestAppendJSONStringIsEncodingJSON: a record's values are escaped exactly as
// encoding/json escapes them, whatever a group or computer name holds.
func TestAppendJSONStringIsEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "WOR-DT-00001", `My Company\Servers`, `a"b`, "<script>&", "tab\there", "\x00\x1f",
		"Büro Köln", "line\u2028sep\u2029", "bad\xffutf8", "emoji 😀", "\u007f"} {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("appendJSONString(%q) = %s, encoding/json %s", s, got, want)
		}
	}
}

// TestPagesWhileClientsCheckIn reads pages (full, reduced, lastUpdate) while the
// fleet checks in, so that the race detector (go test -race) sees the records
// built outside the model lock next to the scheduler's writes; every page must
// decode and count the whole fleet.
func TestPagesWhileClientsCheckIn(t *testing.T) {
	s := startSite(t, Options{Clients: 3000, Heartbeat: time.Second, RoamingPercent: 20})
	c := rawClient(s)
	tok := rawLogin(t, s, c)
	since := strconv.FormatInt(time.Now().Add(-500*time.Millisecond).UnixMilli(), 10)
	for round := range 6 {
		for _, q := range []string{"pageSize=1000&pageIndex=2", "verbose=true&pageSize=500", "lastUpdate=" + since + "&pageSize=1000"} {
			var page struct {
				Content       []map[string]any `json:"content"`
				TotalElements int              `json:"totalElements"`
			}
			if st := getJSON(t, c, s.URL()+"/sepm/api/v1/computers?"+q, tok, &page); st != 200 {
				t.Fatalf("round %d, %s: status %d", round, q, st)
			}
			if !strings.HasPrefix(q, "lastUpdate") && (page.TotalElements != 3000 || len(page.Content) == 0) {
				t.Fatalf("round %d, %s: %d of %d", round, q, len(page.Content), page.TotalElements)
			}
		}
	}
}
