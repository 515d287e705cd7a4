package sepm

import (
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// connCounter counts the connections a fake's server accepted.
type connCounter struct {
	mu  sync.Mutex
	new int
}

func (cc *connCounter) hook(_ net.Conn, s http.ConnState) {
	if s == http.StateNew {
		cc.mu.Lock()
		cc.new++
		cc.mu.Unlock()
	}
}

func (cc *connCounter) count() int {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.new
}

// newCountingFake starts a TLS fake whose server counts accepted connections.
func newCountingFake(t *testing.T) (*fakeSEPM, *connCounter) {
	f := newFakeUnstarted(t)
	cc := &connCounter{}
	f.srv.Config.ConnState = cc.hook
	f.srv.StartTLS()
	return f, cc
}

// chunkedPages serves items in pages like SEPM, each reply written in two parts
// with a flush between, so it goes out chunked (as the simulator's and SEPM's
// large replies do): a reader that stops at the end of the JSON value never sees
// the terminating chunk. fault, if not nil, may answer a request instead.
func chunkedPages(t *testing.T, items []json.RawMessage, size int, served *atomic.Int64,
	fault func(w http.ResponseWriter, idx int) bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		idx, _ := strconv.Atoi(r.URL.Query().Get("pageIndex"))
		if fault != nil && fault(w, idx) {
			return
		}
		lo := min((idx-1)*size, len(items))
		hi := min(lo+size, len(items))
		pages := (len(items) + size - 1) / size
		b, err := json.Marshal(map[string]any{"content": items[lo:hi], "lastPage": idx >= pages, "totalPages": pages,
			"totalElements": len(items), "number": idx - 1, "size": size, "numberOfElements": hi - lo, "firstPage": idx == 1})
		if err != nil {
			t.Error(err)
		}
		w.Header().Set("Content-Type", "application/json")
		half := len(b) / 2
		n1, _ := w.Write(b[:half])
		w.(http.Flusher).Flush()
		n2, _ := w.Write(b[half:])
		served.Add(int64(n1 + n2))
	}
}

// TestSweepUsesOneConnection: a sweep of 40 pages, with a 500 in the middle (then
// a retry), a refused token (then a log-in) and, in a second sweep, a page that
// does not decode, runs over the one connection the log-in opened: every reply,
// good or bad, is read to its end so net/http keeps the connection. Without the
// drain, each chunked page costs a new connection (and a TLS handshake).
func TestSweepUsesOneConnection(t *testing.T) {
	f, cc := newCountingFake(t)
	const total, size = 2000, 50
	items := fakeComputers(t, total)
	var served atomic.Int64
	var failed500, expired, broken atomic.Bool
	f.handle("GET /sepm/api/v1/computers", chunkedPages(t, items, size, &served, func(w http.ResponseWriter, idx int) bool {
		switch {
		case idx == 13 && !failed500.Load():
			failed500.Store(true)
			writeError(w, http.StatusInternalServerError, "An internal server error occurred.")
			return true
		case idx == 21 && !expired.Load():
			expired.Store(true)
			f.expireAll() // the next page is refused with a 401: the client logs in again
		case idx == 5 && broken.Load():
			broken.Store(false)
			writeRaw(w, http.StatusOK, []byte(`{"content":[{"uniqueId":"X","onlineStatus":"one"}],"lastPage":false}`))
			return true
		}
		return false
	}))
	c := newTestClient(t, f, nil)
	before := c.Stats()
	got, err := c.Computers(t.Context(), ComputerQuery{PageSize: size})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != total {
		t.Fatalf("got %d computers, want %d", len(got), total)
	}
	if !failed500.Load() || !expired.Load() || f.refusedCount() != 1 || f.loginCount() != 2 {
		t.Fatalf("faults not exercised: 500 %v, expired %v, refused %d, logins %d",
			failed500.Load(), expired.Load(), f.refusedCount(), f.loginCount())
	}
	if n := cc.count(); n != 1 {
		t.Errorf("the server accepted %d connections during the sweep, want 1", n)
	}
	d := c.Stats().Sub(before)
	// 40 pages, one retried after the 500 and one after the 401, plus two log-ins.
	if d.Connections != 1 || d.Requests != 40+2+2 {
		t.Errorf("client stats = %+v, want 1 connection and 44 requests", d)
	}
	if d.BodyBytes < served.Load() {
		t.Errorf("client read %d body bytes, the server sent %d of pages alone", d.BodyBytes, served.Load())
	}

	// A page that does not decode fails the sweep but leaves the connection usable.
	broken.Store(true)
	if _, err := c.Computers(t.Context(), ComputerQuery{PageSize: size}); err == nil {
		t.Fatal("a page with a wrong type decoded without an error")
	}
	if _, err := c.Computers(t.Context(), ComputerQuery{PageSize: size}); err != nil {
		t.Fatal(err)
	}
	if n := cc.count(); n != 1 {
		t.Errorf("the server accepted %d connections over three sweeps, want 1", n)
	}
	if s := c.Stats(); s.Connections != 1 {
		t.Errorf("client stats after three sweeps = %+v, want 1 connection", s)
	}
}

// TestSweepFloor: the floor fetches the same pages over the same connection and
// decodes every record.
func TestSweepFloor(t *testing.T) {
	f, cc := newCountingFake(t)
	const total, size = 1234, 100
	var served atomic.Int64
	f.handle("GET /sepm/api/v1/computers", chunkedPages(t, fakeComputers(t, total), size, &served, nil))
	c := newTestClient(t, f, nil)
	if _, err := c.Computers(t.Context(), ComputerQuery{PageSize: size}); err != nil {
		t.Fatal(err)
	}
	sweepQueries := f.queryLog("GET /sepm/api/v1/computers")
	served.Store(0)
	r, err := c.SweepFloor(t.Context(), ComputerQuery{PageSize: size})
	if err != nil {
		t.Fatal(err)
	}
	if r.Pages != 13 || r.Computers != total || r.Bytes != served.Load() || r.Connections != 0 || r.Duration <= 0 {
		t.Errorf("floor = %+v, want 13 pages, %d computers, %d bytes, no new connection", r, total, served.Load())
	}
	floorQueries := f.queryLog("GET /sepm/api/v1/computers")[len(sweepQueries):]
	if len(floorQueries) != len(sweepQueries) || floorQueries[0] != sweepQueries[0] {
		t.Errorf("floor queries %q, sweep queries %q: want the same pages", floorQueries, sweepQueries)
	}
	if n := cc.count(); n != 1 {
		t.Errorf("connections = %d, want 1", n)
	}
}

// TestReplyCutShortIsRetried: a page whose connection breaks in the middle of the
// body is a transient failure: retried, and named plainly when it persists.
func TestReplyCutShortIsRetried(t *testing.T) {
	f := newFake(t)
	var calls, cuts atomic.Int64
	cuts.Store(1)
	f.handle("GET /sepm/api/v1/computers", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if cuts.Add(-1) >= 0 {
			w.Header().Set("Content-Length", "5000")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte(`{"content":[{"uniqueId":"A","onlineStatus":1`))
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler) // the connection drops mid-body
		}
		writeRaw(w, http.StatusOK, []byte(`{"content":[{"uniqueId":"A","onlineStatus":1,"lastUpdateTime":1,"profileSerialNo":"S","agentVersion":"14.3"}],"lastPage":true}`))
	})
	c := newTestClient(t, f, func(cfg *Config) { cfg.MaxRetries = 2 })
	got, err := c.Computers(t.Context(), ComputerQuery{})
	if err != nil || len(got) != 1 || got[0].UniqueID != "A" {
		t.Fatalf("after one cut: %v, %+v", err, got)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("calls = %d, want 2 (one cut, one retry)", n)
	}
	calls.Store(0)
	cuts.Store(100)
	_, err = c.Computers(t.Context(), ComputerQuery{})
	if err == nil || !strings.Contains(err.Error(), "reading reply") || !strings.Contains(err.Error(), "GET computers") {
		t.Fatalf("err = %v, want a reading-reply error naming the call", err)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("calls = %d, want 3 (MaxRetries 2)", n)
	}
}

// TestFullQueryAsksFullRecords: ComputerQuery.Full leaves verbose out, in a sweep
// and in the floor; without it both ask for reduced records.
func TestFullQueryAsksFullRecords(t *testing.T) {
	f := newFake(t)
	var served atomic.Int64
	f.handle("GET /sepm/api/v1/computers", chunkedPages(t, fakeComputers(t, 30), 10, &served, nil))
	c := newTestClient(t, f, nil)
	for _, full := range []bool{false, true} {
		q := ComputerQuery{PageSize: 10, Full: full}
		if _, err := c.Computers(t.Context(), q); err != nil {
			t.Fatal(err)
		}
		if _, err := c.SweepFloor(t.Context(), q); err != nil {
			t.Fatal(err)
		}
	}
	log := f.queryLog("GET /sepm/api/v1/computers")
	if len(log) != 12 {
		t.Fatalf("queries %q, want 12", log)
	}
	for i, q := range log {
		if want := i < 6; strings.Contains(q, "verbose=true") != want {
			t.Errorf("query %d %q: verbose=true %v, want %v", i, q, !want, want)
		}
	}
}
