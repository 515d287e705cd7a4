package sepm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Paging limits.
const (
	maxPageSize = 1000
	// maxPages stops a paged read whose server never says it is done
	// (1,000,000 pages of 1000 is far beyond any SEPM).
	maxPages = 1_000_000
	// maxPrealloc bounds the capacity reserved from a reply's totalElements, which a
	// broken server may overstate.
	maxPrealloc = 50_000
)

// ComputerQuery selects computers for Computers and EachComputerPage.
type ComputerQuery struct {
	PageSize   int   // default 1000, at most 1000
	LastUpdate int64 // epoch ms: only computers whose status changed after it; 0 = all
	// Full asks for full records (about 150 fields each) even where the reduced
	// ones (verbose=true) carry what the bot reads: for measuring (sepmbot bench).
	Full bool
}

// eachPage reads path page by page (pageIndex from 1) and hands each non-empty page
// to fn. It stops at lastPage, at totalPages, at an empty page, and refuses a server
// that repeats a page (same first item, or the same items), sends more than twice the
// items it announces, or pages forever. check, if not nil, sees each page's raw
// reply (idx from 1) after it decoded and may refuse it.
//
// The repeat check compares the first item's key with the previous page's: two
// equal pages have equal first keys, so only pages whose first item has no key
// (a broken server) are compared item by item.
//
// reuse, if not nil, makes the read decode every page into one Page (from
// reuse.pages, and back there after the read), whose slice and its elements'
// buffers it keeps (fn must not keep the page): reuse.reset readies it before each decode,
// and reuse.decoded finishes each decoded page and may refuse it. The previous
// page is then overwritten, so a page whose first item has no key is compared with
// it by a hash of its items (reuse.sum) instead.
func eachPage[T any](ctx context.Context, c *Client, path string, q url.Values, pageSize int,
	key func(T) string, check func(idx int, body []byte) error, reuse *pageReuse[T], fn func(p *Page[T]) error) error {
	if q == nil {
		q = url.Values{}
	}
	q.Set("pageSize", strconv.Itoa(pageSize))
	prevKey := ""
	var prev []T
	var prevSum uint64 // with reuse: the previous page's items, hashed when it had no key
	var seen int64
	// One buffer for every page of the read, held for its whole length (a pooled one
	// may be collected by any GC between two pages, and a page regrows it from 512 B).
	buf := getBuffer()
	defer putBuffer(buf)
	p := new(Page[T])
	if reuse != nil {
		p = reuse.pages.Get().(*Page[T])
		defer reuse.pages.Put(p)
	}
	for idx := 1; ; idx++ {
		if idx > maxPages {
			return fmt.Errorf("sepm: GET %s: more than %d pages: the server does not end its paging", path, maxPages)
		}
		q.Set("pageIndex", strconv.Itoa(idx))
		if reuse == nil {
			p = new(Page[T])
		}
		err := c.do(ctx, call{method: http.MethodGet, path: path + "?" + q.Encode(), auth: true, retry: true, buf: buf,
			decode: func(body []byte) error {
				// A retried attempt decodes afresh; room for a whole page spares the
				// decoder growing the slice from nothing.
				if reuse != nil {
					reuse.reset(p)
				} else {
					*p = Page[T]{Content: make([]T, 0, pageSize)}
				}
				if err := unmarshalPage(body, p); err != nil {
					return err
				}
				if reuse != nil {
					if err := reuse.decoded(p); err != nil {
						return err
					}
				}
				if check != nil {
					return check(idx, body)
				}
				return nil
			}})
		if err != nil {
			return err
		}
		if len(p.Content) == 0 {
			return nil
		}
		k := key(p.Content[0])
		repeats, sum := false, uint64(0)
		switch {
		case k != "":
			repeats = k == prevKey
		case reuse != nil:
			sum = reuse.sum(p.Content)
			repeats = idx > 1 && sum == prevSum
		default:
			repeats = idx > 1 && reflect.DeepEqual(prev, p.Content)
		}
		if repeats {
			return fmt.Errorf("sepm: GET %s: page %d repeats page %d: the server ignores pageIndex", path, idx, idx-1)
		}
		prevKey, prev, prevSum = k, p.Content, sum
		seen += int64(len(p.Content))
		if p.TotalElements > 0 && seen > 2*p.TotalElements+int64(pageSize) {
			return fmt.Errorf("sepm: GET %s: page %d brings the count to %d items, but the server announces %d: it does not end its paging",
				path, idx, seen, p.TotalElements)
		}
		if err := fn(p); err != nil {
			return err
		}
		if p.LastPage || (p.TotalPages > 0 && idx >= p.TotalPages) {
			return nil
		}
	}
}

// pageReuse is how a paged read decodes every page into the same memory (eachPage).
type pageReuse[T any] struct {
	pages   *sync.Pool             // of *Page[T]
	reset   func(p *Page[T])       // before each decode
	decoded func(p *Page[T]) error // after each decode; an error refuses the page
	sum     func(items []T) uint64 // equal items, equal sums
}

// Groups returns every group (GET groups, all pages). A group's full path is
// Group.Path(): some SEPM versions put it in name and leave fullPathName empty.
func (c *Client) Groups(ctx context.Context) ([]Group, error) {
	var out []Group
	err := eachPage(ctx, c, "groups", nil, maxPageSize, func(g Group) string { return g.ID }, nil, nil,
		func(p *Page[Group]) error {
			if out == nil && p.TotalElements > 0 {
				out = make([]Group, 0, min(p.TotalElements, maxPrealloc))
			}
			out = append(out, p.Content...)
			return nil
		})
	return out, err
}

// Group returns one group (GET groups/{id}).
func (c *Client) Group(ctx context.Context, id string) (Group, error) {
	var g Group
	err := c.get(ctx, "groups/"+url.PathEscape(id), &g)
	return g, err
}

// EachComputerPage reads the computers page by page (GET computers) and calls fn with
// each page; fn may keep the slice. It stops at the first error fn returns.
func (c *Client) EachComputerPage(ctx context.Context, q ComputerQuery, fn func(page []Computer) error) error {
	return c.computerPages(ctx, q, func(p *Page[Computer]) error { return fn(p.Content) })
}

// Computers returns every computer matching q (all pages).
//
// The pages are joined once at the end, into a slice of the exact size: growing
// one slice page by page copies it over and over (a 100,000-computer sweep
// allocated 72 MB that way, four times the result).
func (c *Client) Computers(ctx context.Context, q ComputerQuery) ([]Computer, error) {
	var pages [][]Computer
	n := 0
	err := c.computerPages(ctx, q, func(p *Page[Computer]) error {
		pages = append(pages, p.Content)
		n += len(p.Content)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, nil
	}
	return slices.Concat(pages...), nil
}

// errReducedIncomplete: the first page of reduced records (verbose=true) lacks a
// field the bot reads.
var errReducedIncomplete = errors.New("sepm: reduced computer records lack fields sepmbot reads")

// computerPresence marks which of the fields a reduced record (verbose=true) might
// leave out a record carries (a null counts as missing).
type computerPresence struct {
	AgentVersion    *string `json:"agentVersion"`
	OnlineStatus    *int    `json:"onlineStatus"`
	LastUpdateTime  *int64  `json:"lastUpdateTime"`
	ProfileSerialNo *string `json:"profileSerialNo"`
}

// reducedComplete checks a first page of reduced records: at least one record must
// carry every field the bot reads. It decodes the page a second time, into marks
// only; at one page per sweep that costs about 1% of a sweep.
// carried reports whether a record showed the fields present (an empty page passes
// without showing it).
func reducedComplete(body []byte) (carried bool, err error) {
	var p Page[computerPresence]
	if err := unmarshalPage(body, &p); err != nil {
		return false, err
	}
	if len(p.Content) == 0 {
		return false, nil // an empty fleet says nothing about the records
	}
	for _, r := range p.Content {
		if r.OnlineStatus != nil && r.LastUpdateTime != nil && r.ProfileSerialNo != nil && r.AgentVersion != nil {
			return true, nil
		}
	}
	return false, errReducedIncomplete
}

func computerKey(cm Computer) string { return cm.UniqueID }

// computerPages sweeps GET computers, decoding each page once, straight into the
// slim Computer. A full record has about 150 fields; the spec's verbose=true asks
// for a reduced set, so the client asks for that and checks the first page: if no
// record on it carries onlineStatus, lastUpdateTime, profileSerialNo and
// agentVersion (the spec does not list the reduced set, and SEPM versions may
// differ), it sweeps again with full records, and keeps doing so. q.Full asks for
// full records from the start.
//
// Every whole sweep (no lastUpdate) checks its first page. A lastUpdate read skips
// the check once a whole sweep's records passed it: the check decodes its page a
// second time, about 1% of a sweep but a tenth of a read of a few pages. Should
// SEPM change its reduced set between two sweeps, a missing field reads as its zero
// value, which the wait's map takes as no newer check-in (lastUpdateTime), offline,
// or not on the new policy, never as caught up; the next whole sweep checks again.
func (c *Client) computerPages(ctx context.Context, q ComputerQuery, fn func(p *Page[Computer]) error) error {
	return computerPagesOf(ctx, c, q, computerKey, nil, fn)
}

// computerPagesOf is computerPages for a record type T (Computer, or ComputerMark
// with reuse) keyed by key.
func computerPagesOf[T any](ctx context.Context, c *Client, q ComputerQuery, key func(T) string, reuse *pageReuse[T], fn func(p *Page[T]) error) error {
	size := q.PageSize
	if size <= 0 || size > maxPageSize {
		size = maxPageSize
	}
	for {
		v := url.Values{}
		if q.LastUpdate > 0 {
			v.Set("lastUpdate", strconv.FormatInt(q.LastUpdate, 10))
		}
		var check func(int, []byte) error
		if !q.Full && !c.fullComputers.Load() {
			v.Set("verbose", "true")
			whole := q.LastUpdate <= 0
			check = func(idx int, body []byte) error {
				if idx != 1 || (!whole && c.reducedOK.Load()) {
					return nil
				}
				carried, err := reducedComplete(body)
				if carried && whole {
					c.reducedOK.Store(true)
				}
				return err
			}
		}
		err := eachPage(ctx, c, "computers", v, size, key, check, reuse, fn)
		if errors.Is(err, errReducedIncomplete) {
			c.fullComputers.Store(true)
			c.log.Info("sepm: this SEPM's reduced computer records (verbose=true) lack what sepmbot reads; reading full records")
			continue
		}
		return err
	}
}

// Locations returns a group's locations (GET groups/{g}/locations?hasName=true).
func (c *Client) Locations(ctx context.Context, groupID string) ([]Location, error) {
	var raw []json.RawMessage
	path := "groups/" + url.PathEscape(groupID) + "/locations?hasName=true"
	if err := c.get(ctx, path, &raw); err != nil {
		return nil, err
	}
	out := make([]Location, 0, len(raw))
	for _, r := range raw {
		l, err := decodeLocation(r)
		if err != nil {
			return nil, fmt.Errorf("sepm: GET %s: %w", pathOnly(path), err)
		}
		out = append(out, l)
	}
	return out, nil
}

// decodeLocation accepts the documented string form and, defensively, an object
// with id and name.
func decodeLocation(r json.RawMessage) (Location, error) {
	var s string
	if err := json.Unmarshal(r, &s); err == nil {
		return parseLocation(s)
	}
	var o struct {
		ID         string `json:"id"`
		LocationID string `json:"locationId"`
		Name       string `json:"name"`
	}
	if err := json.Unmarshal(r, &o); err != nil {
		return Location{}, fmt.Errorf("location entry %s: %w", r, err)
	}
	if o.ID == "" {
		o.ID = o.LocationID
	}
	if o.ID == "" {
		return Location{}, fmt.Errorf("location entry %s has no id", r)
	}
	return Location{ID: o.ID, Name: o.Name}, nil
}

// parseLocation parses one entry of GET groups/{g}/locations:
// "Name:/sepm/api/v1/groups/G/locations/ID" (hasName=true) or a bare id or path.
// The name may itself contain colons; the id is the last path segment.
func parseLocation(s string) (Location, error) {
	s = strings.TrimSpace(s)
	name, ref := "", s
	if i := strings.LastIndex(s, ":/"); i >= 0 {
		name, ref = s[:i], s[i+1:]
	}
	ref = strings.TrimRight(ref, "/")
	id := ref[strings.LastIndexByte(ref, '/')+1:]
	if id == "" {
		return Location{}, fmt.Errorf("location entry %q has no id", s)
	}
	return Location{ID: id, Name: name}, nil
}

// LocationSettings returns the settings of one location of a group.
func (c *Client) LocationSettings(ctx context.Context, groupID, locationID string) (Settings, error) {
	var s Settings
	err := c.get(ctx, settingsPath(groupID, locationID), &s)
	if cs := s.Configuration.CommunicationSettings; err == nil && cs != nil {
		cs.Mode = strings.ToUpper(cs.Mode) // SEPM versions differ: "PUSH", "Push"
	}
	return s, err
}

func settingsPath(groupID, locationID string) string {
	return "groups/" + url.PathEscape(groupID) + "/locations/" + url.PathEscape(locationID) + "/settings"
}

// ClientVersions returns the client counts per agent version (GET stats/client/version).
func (c *Client) ClientVersions(ctx context.Context) (ClientVersionResponse, error) {
	var r ClientVersionResponse
	err := c.get(ctx, "stats/client/version", &r)
	return r, err
}

// OnlineStatus returns the online and offline client counts (GET stats/client/onlinestatus).
func (c *Client) OnlineStatus(ctx context.Context) (OnlineStatusResponse, error) {
	var r OnlineStatusResponse
	err := c.get(ctx, "stats/client/onlinestatus", &r)
	for i := range r.ClientCountStatsList {
		// SEPM versions differ: "ONLINE", "Online"; callers compare with "Online".
		switch st := &r.ClientCountStatsList[i].Status; {
		case strings.EqualFold(*st, "online"):
			*st = "Online"
		case strings.EqualFold(*st, "offline"):
			*st = "Offline"
		}
	}
	return r, err
}

// AdminServers returns the site's management servers (GET admin/servers).
func (c *Client) AdminServers(ctx context.Context) ([]Server, error) {
	var r []Server
	err := c.get(ctx, "admin/servers", &r)
	return r, err
}

// ReplicationStatus returns the site's replication state (GET replication/status).
func (c *Client) ReplicationStatus(ctx context.Context) (ReplicationStatusResponse, error) {
	var r ReplicationStatusResponse
	err := c.get(ctx, "replication/status", &r)
	return r, err
}

// IsReplicated reports whether the site has a replication partner
// (GET replication/is_replicated).
func (c *Client) IsReplicated(ctx context.Context) (bool, error) {
	var raw json.RawMessage
	if err := c.get(ctx, "replication/is_replicated", &raw); err != nil {
		return false, err
	}
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return b, nil
	}
	var s string // tolerate "true" / "false" as a string
	if json.Unmarshal(raw, &s) == nil {
		if b, err := strconv.ParseBool(s); err == nil {
			return b, nil
		}
	}
	return false, fmt.Errorf("sepm: GET replication/is_replicated: want a boolean, got %.40s", raw)
}
