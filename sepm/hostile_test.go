package sepm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Replies from a broken or hostile server (or a proxy in front of SEPM): the client
// returns a clear error, never panics, never loops on, never holds unbounded memory.

// TestHugeReplyRefused: a 2xx body beyond the reply limit is refused, not buffered
// whole, and not retried.
func TestHugeReplyRefused(t *testing.T) {
	f := newFake(t)
	var calls atomic.Int32
	f.handle("GET /sepm/api/v1/stats/client/version", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"lastUpdated":1,"clientVersionList":[{"version":"`))
		chunk := bytes.Repeat([]byte("a"), 1<<20)
		for range 70 { // 70 MiB, more than any real SEPM reply
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
		_, _ = w.Write([]byte(`"}]}`))
	})
	// Reading 64 MiB takes seconds on a loaded machine (tens under -race): the
	// per-request timeout must not expire first, or the refusal under test turns into
	// a timeout and is retried.
	c := newTestClient(t, f, func(cfg *Config) { cfg.Timeout = 2 * time.Minute })
	_, err := c.ClientVersions(t.Context())
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err = %v, want a reply-too-large error", err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("calls = %d, want 1 (an oversized reply is not retried)", n)
	}
}

// allocDuring reports the bytes allocated while fn runs.
func allocDuring(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestLyingTotalElementsNoHugeAllocation: the announced totalElements does not make
// the client reserve memory for items that never come.
func TestLyingTotalElementsNoHugeAllocation(t *testing.T) {
	f := newFake(t)
	f.handle("GET /sepm/api/v1/computers", func(w http.ResponseWriter, r *http.Request) {
		writeRaw(w, http.StatusOK, []byte(`{"content":[{"uniqueId":"A"}],"lastPage":true,"totalPages":1,"totalElements":10000000}`))
	})
	f.handle("GET /sepm/api/v1/groups", func(w http.ResponseWriter, r *http.Request) {
		writeRaw(w, http.StatusOK, []byte(`{"content":[{"id":"G"}],"lastPage":true,"totalPages":1,"totalElements":1000000}`))
	})
	c := newTestClient(t, f, nil)
	if err := c.Login(t.Context()); err != nil {
		t.Fatal(err)
	}
	var cs []Computer
	var gs []Group
	var err1, err2 error
	n := allocDuring(func() {
		cs, err1 = c.Computers(t.Context(), ComputerQuery{})
		gs, err2 = c.Groups(t.Context())
	})
	if err1 != nil || err2 != nil || len(cs) != 1 || len(gs) != 1 {
		t.Fatalf("computers %d %v, groups %d %v", len(cs), err1, len(gs), err2)
	}
	if n > 32<<20 {
		t.Errorf("allocated %d MiB for two one-item replies", n>>20)
	}
}

// TestPagingStopsWhenPagesRepeatWithoutKeys: a server that ignores pageIndex and
// whose items carry no id is caught too (not paged a million times).
func TestPagingStopsWhenPagesRepeatWithoutKeys(t *testing.T) {
	f := newFake(t)
	f.handle("GET /sepm/api/v1/computers", func(w http.ResponseWriter, r *http.Request) {
		writeRaw(w, http.StatusOK, []byte(`{"content":[{"computerName":"X"}],"lastPage":false,"totalPages":0}`))
	})
	c := newTestClient(t, f, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second) // a hang guard; the call count is the assertion
	defer cancel()
	_, err := c.Computers(ctx, ComputerQuery{})
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a paging error before the deadline", err)
	}
	if n := f.hitCount("GET /sepm/api/v1/computers"); n > 3 {
		t.Errorf("calls = %d, want at most 3", n)
	}
}

// TestPagingStopsBeyondAnnouncedTotal: a server that announced 3 items but keeps
// sending new pages without ever saying it is done is stopped.
func TestPagingStopsBeyondAnnouncedTotal(t *testing.T) {
	f := newFake(t)
	var n atomic.Int64
	f.handle("GET /sepm/api/v1/computers", func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		writeRaw(w, http.StatusOK, fmt.Appendf(nil, `{"content":[{"uniqueId":"U%d"}],"lastPage":false,"totalPages":0,"totalElements":3}`, i))
	})
	c := newTestClient(t, f, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second) // a hang guard; the call count is the assertion
	defer cancel()
	_, err := c.Computers(ctx, ComputerQuery{PageSize: 1})
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a paging error before the deadline", err)
	}
	if k := n.Load(); k > 20 {
		t.Errorf("calls = %d, want a handful", k)
	}
}

// TestErrorBodyVariants: SEPM's errorMessage is kept even when errorCode comes as a
// number; a proxy's HTML error page gives the status text; neither leaks.
func TestErrorBodyVariants(t *testing.T) {
	f := newFake(t)
	f.handle("GET /sepm/api/v1/groups/{id}", func(w http.ResponseWriter, r *http.Request) {
		switch r.PathValue("id") {
		case "num":
			writeRaw(w, http.StatusBadRequest, []byte(`{"errorCode":400,"appErrorCode":"","errorMessage":"Group id is invalid."}`))
		case "html":
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`<html><body><h1>403 Forbidden</h1>` + strings.Repeat("x", 5000) + `</body></html>`))
		}
	})
	c := newTestClient(t, f, nil)
	_, err := c.Group(t.Context(), "num")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Message != "Group id is invalid." || ae.Code != "400" {
		t.Errorf("numeric errorCode: %#v", err)
	}
	_, err = c.Group(t.Context(), "html")
	if !errors.As(err, &ae) || ae.Status != 403 || ae.Message != "Forbidden" {
		t.Errorf("HTML error page: %#v", err)
	}
}

// TestMalformedRepliesNoPanic: assorted broken 2xx replies give errors, not panics.
func TestMalformedRepliesNoPanic(t *testing.T) {
	bodies := map[string]string{
		"html":         `<html>proxy login</html>`,
		"empty":        ``,
		"wrong type":   `{"content":{"a":1}}`,
		"null content": `{"content":null,"lastPage":false}`,
		"huge number":  `{"content":[],"totalPages":1e400}`,
		"truncated":    `{"content":[{"uniqueId":"A"`,
		"array":        `[1,2,3]`,
		"nested null":  `{"content":[null,{"uniqueId":"B","group":null}],"lastPage":true}`,
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			f := newFake(t)
			f.handle("GET /sepm/api/v1/computers", func(w http.ResponseWriter, r *http.Request) {
				writeRaw(w, http.StatusOK, []byte(body))
			})
			f.handle("GET /sepm/api/v1/groups/{g}/locations", func(w http.ResponseWriter, r *http.Request) {
				writeRaw(w, http.StatusOK, []byte(body))
			})
			c := newTestClient(t, f, func(cfg *Config) { cfg.MaxRetries = -1 })
			_, _ = c.Computers(t.Context(), ComputerQuery{})
			_, _ = c.Locations(t.Context(), "G")
		})
	}
}

// TestHugeTokenExpirationNoLoginStorm: a tokenExpiration so large that seconds to
// nanoseconds overflows must not turn into a lifetime of a fraction of a second
// (a login before nearly every call).
func TestHugeTokenExpirationNoLoginStorm(t *testing.T) {
	f := newFake(t)
	f.ttl = 18446744074 // * 1e9 wraps to about 0.29 s
	okGroups(f)
	c := newTestClient(t, f, nil)
	clock := &fakeClock{t: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	c.now = clock.now
	for range 3 {
		if _, err := c.Groups(t.Context()); err != nil {
			t.Fatal(err)
		}
		clock.advance(time.Second)
	}
	if n := f.loginCount(); n != 1 {
		t.Errorf("logins = %d, want 1", n)
	}
}
