package sepm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	gojson "github.com/goccy/go-json"
)

// Replies are read whole, to EOF, into a pooled buffer and then decoded, so that:
//   - net/http puts the connection back into its idle pool (a body closed before its
//     end, e.g. the last chunk of a chunked page a json.Decoder never asks for,
//     makes the transport drop the connection: one TLS handshake per page);
//   - the bytes are scanned by one decoder call with no regrowing buffer per page.
// A body over its cap is refused without reading the rest; that connection is
// dropped, which is the price of not reading a hostile server's endless reply.

// maxPooledBody is the largest buffer kept for reuse: a page of 1000 full-size
// computers is well under 2 MB; a rare bigger reply gets its buffer collected.
const maxPooledBody = 8 << 20

var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func getBuffer() *bytes.Buffer { return bodyPool.Get().(*bytes.Buffer) }

func putBuffer(b *bytes.Buffer) {
	if b.Cap() > maxPooledBody {
		return
	}
	b.Reset()
	bodyPool.Put(b)
}

// readBody reads body to EOF into buf, at most limit bytes (hint is the announced
// Content-Length, -1 if none). over reports a body longer than limit; its rest is
// left unread.
func (c *Client) readBody(buf *bytes.Buffer, body io.Reader, limit, hint int64) (over bool, err error) {
	if hint > 0 && hint <= limit {
		buf.Grow(int(hint) + bytes.MinRead) // +MinRead: ReadFrom wants room to see EOF
	}
	n, err := buf.ReadFrom(io.LimitReader(body, limit+1))
	c.stats.bodyBytes.Add(n)
	if n > limit {
		return true, nil
	}
	return false, err
}

// discard reads and drops a body the caller does not want, up to maxErrorBody, so
// a short reply (204, an ignored 2xx) leaves its connection reusable.
func (c *Client) discard(body io.Reader) {
	n, _ := io.Copy(io.Discard, io.LimitReader(body, maxErrorBody))
	c.stats.bodyBytes.Add(n)
}

// unmarshal decodes a whole reply with encoding/json: every reply but the pages.
func unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// unmarshalPage decodes a page of a paged read (computers, groups) with
// github.com/goccy/go-json: on a page of 1000 full-size computer records it is
// about 7x faster than encoding/json into the same slim struct, with the same
// allocations (figures in bench_test.go). It copies every string out of the input
// (the pooled buffer is reused), and agrees with encoding/json on which broken
// pages are refused (truncated, wrong types, overflowing numbers, trailing data;
// TestPageDecoderAgreesWithEncodingJSON). The pages carry no secret, and the
// replies that do (log-in) and the settings the rotation verifies stay on
// encoding/json. A panic of the decoder on a hostile page is an error here, not a
// crash of the bot.
func unmarshalPage(data []byte, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("page decoder failed: %v", r)
		}
	}()
	return gojson.Unmarshal(data, v)
}

// send makes one HTTP attempt, bounded by the client's Timeout.
func (c *Client) send(ctx context.Context, k call, tok string) error {
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var body io.Reader
	if k.body != nil {
		body = bytes.NewReader(k.body)
	}
	req, err := http.NewRequestWithContext(actx, k.method, c.url(k.path), body)
	if err != nil {
		return fmt.Errorf("sepm: %s %s: %w", k.method, pathOnly(k.path), err)
	}
	req.Header.Set("Accept", "application/json")
	if k.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	start := time.Now()
	c.stats.requests.Add(1)
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.transportErr(ctx, actx, k, err)
	}
	defer resp.Body.Close()
	c.log.Debug("sepm: request", "method", k.method, "path", k.path, "status", resp.StatusCode, "took", time.Since(start))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return c.apiError(k, resp)
	}
	if (k.out == nil && k.decode == nil) || resp.StatusCode == http.StatusNoContent {
		c.discard(resp.Body)
		return nil
	}
	buf := k.buf
	if buf == nil {
		buf = getBuffer()
		defer putBuffer(buf)
	}
	buf.Reset()
	over, err := c.readBody(buf, resp.Body, maxReplyBody, resp.ContentLength)
	if over {
		// Not transient: the same server would send the same reply again.
		return fmt.Errorf("sepm: %s %s: reply larger than %d bytes: refused", k.method, pathOnly(k.path), maxReplyBody)
	}
	if err != nil {
		return c.transportErr(ctx, actx, k, fmt.Errorf("reading reply: %w", err))
	}
	data := buf.Bytes()
	if len(bytes.TrimSpace(data)) == 0 {
		return fmt.Errorf("sepm: %s %s: empty reply (status %d)", k.method, pathOnly(k.path), resp.StatusCode)
	}
	if k.decode != nil {
		err = k.decode(data)
	} else {
		err = unmarshal(data, k.out)
	}
	if err != nil {
		// The whole body arrived: the same server would send it again. (encoding/json's
		// errors name the offending character and Go types, never the values.)
		return fmt.Errorf("sepm: %s %s: decode reply: %w", k.method, pathOnly(k.path), err)
	}
	return nil
}

// transportErr wraps a transport failure as transient (unless TLS trust failed),
// saying plainly when the attempt ran out of time.
func (c *Client) transportErr(ctx, actx context.Context, k call, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // its message repeats the whole URL
	}
	where := k.method + " " + pathOnly(k.path)
	if isCertError(err) {
		return fmt.Errorf("sepm: %s: %w", where, err)
	}
	if ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded) {
		return &transient{fmt.Errorf("sepm: %s: no reply within %s: %w", where, c.timeout, err)}
	}
	return &transient{fmt.Errorf("sepm: %s: %w", where, err)}
}

// apiError reads SEPM's error body (to its end, up to maxErrorBody, so the
// connection stays reusable) into an *APIError, with secrets redacted.
func (c *Client) apiError(k call, resp *http.Response) error {
	buf := getBuffer()
	defer putBuffer(buf)
	over, _ := c.readBody(buf, resp.Body, maxErrorBody, resp.ContentLength)
	raw := buf.Bytes()
	if over {
		raw = raw[:maxErrorBody]
	}
	e := &APIError{Method: k.method, Path: pathOnly(k.path), Status: resp.StatusCode}
	// Codes as strings (documented) or numbers (tolerated).
	var eb struct {
		ErrorCode    json.RawMessage `json:"errorCode"`
		AppErrorCode json.RawMessage `json:"appErrorCode"`
		ErrorMessage string          `json:"errorMessage"`
	}
	if json.Unmarshal(raw, &eb) == nil && (eb.ErrorMessage != "" || len(eb.ErrorCode) > 0) {
		e.Code, e.AppCode, e.Message = codeText(eb.ErrorCode), codeText(eb.AppErrorCode), eb.ErrorMessage
	} else if t := strings.TrimSpace(string(raw)); t != "" && len(t) <= 200 && !strings.ContainsAny(t, "<{") {
		e.Message = t
	}
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	e.Message = c.redact(e.Message)
	e.Code = c.redact(e.Code)
	e.AppCode = c.redact(e.AppCode)
	return e
}

// codeText renders an error code sent as a JSON string or number; anything else is "".
func codeText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// redact removes the password and the current token from text the server sent back.
func (c *Client) redact(s string) string {
	c.mu.Lock()
	tok := c.tok
	c.mu.Unlock()
	for _, secret := range []string{c.cfg.Password, tok} {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "[redacted]")
		}
	}
	return s
}
