package sepm

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// FloorResult is what SweepFloor measured.
type FloorResult struct {
	// Duration is from the first page's request to the last page decoded (the
	// log-in, if one was needed, is done before the clock starts).
	Duration time.Duration
	// Fetch is the part of Duration spent sending the requests and reading the
	// bodies; the rest is json.Unmarshal.
	Fetch time.Duration
	// Bytes is the sum of the reply bodies.
	Bytes int64
	// Pages is the number of pages fetched (the empty page that ends a server's
	// paging without lastPage or totalPages included), Computers the records decoded.
	Pages, Computers int
	// Connections is the number of new connections dialled while measuring (0 when
	// a kept-alive one carried every page).
	Connections int64
}

// SweepFloor is a measurement aid for benchmarks (sepmbot bench), not for the
// bot's own reads: it fetches the pages a full sweep (Computers with q) reads, raw,
// one after another over the client's own transport (so one kept-alive connection)
// and token, reads each body into one reused buffer and json.Unmarshal's it into
// the slim Page[Computer], and reports the time and bytes. There are no retries,
// no paging checks beyond a page cap, no reduced-record check and nothing kept, so
// it is the floor a sweep of the same pages in the same run cannot go below by much.
//
// It asks for the records the client's sweeps ask for at the moment (reduced, or
// full after the fallback of computerPages or with q.Full): run one sweep first on
// a server whose reduced records may be incomplete. Its requests and bytes count in
// Stats like any other.
func (c *Client) SweepFloor(ctx context.Context, q ComputerQuery) (FloorResult, error) {
	var r FloorResult
	tok, err := c.token(ctx)
	if err != nil {
		return r, err
	}
	size := q.PageSize
	if size <= 0 || size > maxPageSize {
		size = maxPageSize
	}
	v := url.Values{}
	if q.LastUpdate > 0 {
		v.Set("lastUpdate", strconv.FormatInt(q.LastUpdate, 10))
	}
	if !q.Full && !c.fullComputers.Load() {
		v.Set("verbose", "true")
	}
	v.Set("pageSize", strconv.Itoa(size))
	buf := getBuffer()
	defer putBuffer(buf)
	conns := c.stats.connections.Load()
	start := time.Now()
	for idx := 1; idx <= maxPages; idx++ {
		v.Set("pageIndex", strconv.Itoa(idx))
		fetchStart := time.Now()
		k := call{method: http.MethodGet, path: "computers?" + v.Encode()}
		req, err := http.NewRequestWithContext(ctx, k.method, c.url(k.path), nil)
		if err != nil {
			return r, fmt.Errorf("sepm: floor: %w", err)
		}
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		c.stats.requests.Add(1)
		resp, err := c.hc.Do(req)
		if err != nil {
			return r, fmt.Errorf("sepm: floor: %w", c.transportErr(ctx, ctx, k, err))
		}
		if resp.StatusCode != http.StatusOK {
			err := c.apiError(k, resp)
			resp.Body.Close()
			return r, fmt.Errorf("sepm: floor: %w", err)
		}
		buf.Reset()
		over, err := c.readBody(buf, resp.Body, maxReplyBody, resp.ContentLength)
		resp.Body.Close()
		if over {
			return r, fmt.Errorf("sepm: floor: GET computers page %d: reply larger than %d bytes: refused", idx, maxReplyBody)
		}
		if err != nil {
			return r, fmt.Errorf("sepm: floor: GET computers page %d: reading reply: %w", idx, err)
		}
		r.Fetch += time.Since(fetchStart)
		var p Page[Computer]
		if err := json.Unmarshal(buf.Bytes(), &p); err != nil {
			return r, fmt.Errorf("sepm: floor: GET computers page %d: %w", idx, err)
		}
		r.Pages++
		r.Bytes += int64(buf.Len())
		r.Computers += len(p.Content)
		if len(p.Content) == 0 || p.LastPage || (p.TotalPages > 0 && idx >= p.TotalPages) {
			break
		}
	}
	r.Duration = time.Since(start)
	r.Connections = c.stats.connections.Load() - conns
	return r, nil
}
