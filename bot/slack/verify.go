package slack

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxBody caps an inbound HTTP request body: a click's payload carries the whole
// message it was on, so it can be large, but never larger than this.
const MaxBody = 1 << 20

// SignatureWindow is how far a request's timestamp may be from the bot's clock, in
// either direction, before it is refused as a replay (Slack's recommendation).
const SignatureWindow = 5 * time.Minute

// ErrSignature is returned (wrapped, with the reason) for a request that does not
// carry a valid Slack v0 signature. Its text names no header value and no body.
var ErrSignature = errors.New("slack: request signature refused")

// Verifier checks Slack's v0 request signature: HMAC-SHA256 with the signing
// secret over "v0:" + timestamp + ":" + body, compared in constant time, with the
// timestamp at most SignatureWindow from Now in either direction. It is what the
// HTTP endpoints run before parsing anything.
type Verifier struct {
	secret []byte
	// Now is the clock (time.Now when nil); tests set it to Slack's documented
	// example's time.
	Now func() time.Time
}

// NewVerifier returns a verifier for the signing secret.
func NewVerifier(secret string) *Verifier { return &Verifier{secret: []byte(secret)} }

// Verify checks the signature headers against body.
func (v *Verifier) Verify(h http.Header, body []byte) error {
	if len(v.secret) == 0 {
		return fmt.Errorf("%w: no signing secret configured", ErrSignature)
	}
	tsText := h.Get("X-Slack-Request-Timestamp")
	sig := h.Get("X-Slack-Signature")
	if tsText == "" || sig == "" {
		return fmt.Errorf("%w: missing signature headers", ErrSignature)
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: malformed timestamp", ErrSignature)
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	if d := now().Sub(time.Unix(ts, 0)); d > SignatureWindow || d < -SignatureWindow {
		return fmt.Errorf("%w: timestamp outside the %s window", ErrSignature, SignatureWindow)
	}
	hexSig, ok := strings.CutPrefix(sig, "v0=")
	if !ok {
		return fmt.Errorf("%w: not a v0 signature", ErrSignature)
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return fmt.Errorf("%w: malformed signature", ErrSignature)
	}
	m := hmac.New(sha256.New, v.secret)
	m.Write([]byte("v0:" + tsText + ":"))
	m.Write(body)
	if !hmac.Equal(got, m.Sum(nil)) {
		return fmt.Errorf("%w: signature mismatch", ErrSignature)
	}
	return nil
}
