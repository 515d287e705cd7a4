package sepm

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestGetRetriesOn5xx(t *testing.T) {
	f := newFake(t)
	var n atomic.Int32
	f.handle("GET /sepm/api/v1/stats/client/version", func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) <= 2 {
			writeError(w, http.StatusServiceUnavailable, "The web service encountered an error while processing the web request.")
			return
		}
		writeRaw(w, http.StatusOK, readTestdata(t, "client-version.json"))
	})
	c := newTestClient(t, f, nil)
	got, err := c.ClientVersions(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(got.ClientVersionList) != 2 || got.ClientVersionList[1].FormattedVersion != "14.2 RU2 MP1" {
		t.Errorf("client versions = %+v", got)
	}
	if n.Load() != 3 {
		t.Errorf("calls = %d, want 3", n.Load())
	}
}

func TestGetGivesUpAfterMaxRetries(t *testing.T) {
	f := newFake(t)
	f.handle("GET /sepm/api/v1/admin/servers", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusInternalServerError, "boom")
	})
	c := newTestClient(t, f, func(cfg *Config) { cfg.MaxRetries = 2 })
	_, err := c.AdminServers(t.Context())
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 500 || ae.Message != "boom" {
		t.Fatalf("err = %v, want *APIError 500 boom", err)
	}
	if n := f.hitCount("GET /sepm/api/v1/admin/servers"); n != 3 {
		t.Errorf("calls = %d, want 1 + 2 retries", n)
	}
}

func TestNoRetryOn4xx(t *testing.T) {
	f := newFake(t)
	f.handle("GET /sepm/api/v1/groups/{id}", func(w http.ResponseWriter, r *http.Request) {
		writeRaw(w, http.StatusBadRequest, []byte(`{"errorCode":"400","appErrorCode":"E12","errorMessage":"The parameters are invalid."}`))
	})
	c := newTestClient(t, f, nil)
	_, err := c.Group(t.Context(), "G 1")
	var ae *APIError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v, want *APIError", err)
	}
	want := APIError{Method: "GET", Path: "groups/G%201", Status: 400, Code: "400", AppCode: "E12", Message: "The parameters are invalid."}
	if *ae != want {
		t.Errorf("APIError = %+v, want %+v", *ae, want)
	}
	if err.Error() != "sepm: GET groups/G%201: 400: The parameters are invalid. (appErrorCode E12)" {
		t.Errorf("Error() = %q", err.Error())
	}
	if n := f.hitCount("GET /sepm/api/v1/groups/G 1"); n != 1 {
		t.Errorf("calls = %d, want 1 (no retry on 4xx)", n)
	}
}

// stallFirst never answers the first n calls: it waits until the client gave up on
// them, then drops the connection without a reply.
func stallFirst(n int32, ok []byte) (http.HandlerFunc, *atomic.Int32) {
	var calls atomic.Int32
	return func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= n {
			stall(r)
		}
		writeRaw(w, http.StatusOK, ok)
	}, &calls
}

// stall waits until the client gives up on r, then aborts the handler so that no
// reply is sent. Merely returning would send an empty 200, and that reply can still
// reach the client: its TLS close_notify goes out before the socket is closed, and
// the transport returns a response read after it cancelled the request.
func stall(r *http.Request) {
	<-r.Context().Done() // the client's per-request timeout closes the connection
	panic(http.ErrAbortHandler)
}

func TestGetRetriesOnTimeout(t *testing.T) {
	f := newFake(t)
	h, calls := stallFirst(1, readTestdata(t, "online-status.json"))
	f.handle("GET /sepm/api/v1/stats/client/onlinestatus", h)
	c := newTestClient(t, f, func(cfg *Config) { cfg.Timeout = 300 * time.Millisecond })
	if err := c.Login(t.Context()); err != nil {
		t.Fatal(err)
	}
	got, err := c.OnlineStatus(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []OnlineStat{{"Online", 371}, {"Offline", 41}}
	if !reflect.DeepEqual(got.ClientCountStatsList, want) {
		t.Errorf("online = %+v", got)
	}
	if calls.Load() != 2 {
		t.Errorf("calls = %d, want 2 (stalled, retried)", calls.Load())
	}
}

func TestTimeoutErrorSaysSo(t *testing.T) {
	f := newFake(t)
	h, calls := stallFirst(100, nil)
	f.handle("GET /sepm/api/v1/replication/status", h)
	c := newTestClient(t, f, func(cfg *Config) { cfg.Timeout = 200 * time.Millisecond; cfg.MaxRetries = 1 })
	if err := c.Login(t.Context()); err != nil {
		t.Fatal(err)
	}
	_, err := c.ReplicationStatus(t.Context())
	if err == nil || !strings.Contains(err.Error(), "no reply within 200ms") {
		t.Fatalf("err = %v, want a timeout naming the limit", err)
	}
	if calls.Load() != 2 {
		t.Errorf("calls = %d, want 2", calls.Load())
	}
}

func TestCanceledContextStopsRetries(t *testing.T) {
	f := newFake(t)
	ctx, cancel := context.WithCancel(t.Context())
	f.handle("GET /sepm/api/v1/admin/servers", func(w http.ResponseWriter, r *http.Request) {
		cancel()
		writeError(w, http.StatusInternalServerError, "boom")
	})
	c := newTestClient(t, f, nil)
	_, err := c.AdminServers(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want canceled", err)
	}
	if n := f.hitCount("GET /sepm/api/v1/admin/servers"); n != 1 {
		t.Errorf("calls = %d, want 1", n)
	}
}

// TestCancelEndsTheBackoff: a call waiting out its retry back-off returns as soon
// as its context ends, not when the back-off does (here an hour).
func TestCancelEndsTheBackoff(t *testing.T) {
	f := newFake(t)
	served := make(chan struct{}, 1)
	f.handle("GET /sepm/api/v1/admin/servers", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusInternalServerError, "boom")
		served <- struct{}{}
	})
	c := newTestClient(t, f, nil)
	c.backoffBase, c.backoffCap = time.Hour, time.Hour
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := c.AdminServers(ctx)
		done <- err
	}()
	<-served
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want canceled", err)
		}
	case <-time.After(time.Minute): // a failure detector: a working client returns at once
		t.Fatal("the call is still waiting out its back-off after its context ended")
	}
}

func TestBackoffCappedExponential(t *testing.T) {
	c := &Client{backoffBase: backoffBase, backoffCap: backoffCap}
	for attempt := range 64 {
		d := min(backoffBase<<min(attempt, 20), backoffCap)
		for range 20 {
			got := c.backoff(attempt)
			if got < d/2 || got > d {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", attempt, got, d/2, d)
			}
		}
	}
	if got := c.backoff(0); got > 100*time.Millisecond {
		t.Errorf("first backoff %v above base", got)
	}
}
