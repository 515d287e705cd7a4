package slack

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sepmbot/internal/testkit"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"sepmbot/bot/slack/slackfake"
	"sepmbot/store"
)

// Slack's documented example (api.slack.com/authentication/verifying-requests-from-slack).
const (
	docSecret = "8f742231b10e8888abcd99yyyzzz85a5"
	docTS     = "1531420618"
	docBody   = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
	docSig    = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
)

var docTime = time.Unix(1531420618, 0)

func docHeaders() http.Header {
	h := http.Header{}
	h.Set("X-Slack-Request-Timestamp", docTS)
	h.Set("X-Slack-Signature", docSig)
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	return h
}

func TestVerifierSlackDocumentedExample(t *testing.T) {
	v := NewVerifier(docSecret)
	v.Now = func() time.Time { return docTime.Add(42 * time.Second) }
	if err := v.Verify(docHeaders(), []byte(docBody)); err != nil {
		t.Fatalf("documented example refused: %v", err)
	}
	if got := slackfake.Sign(docSecret, docTS, []byte(docBody)); got != docSig {
		t.Fatalf("the fake signs %s, Slack %s", got, docSig)
	}
}

// inboxCount is how many envelopes the store holds.
func inboxCount(t *testing.T, db *store.DB) int {
	t.Helper()
	n := 0
	_ = db.View(t.Context(), func(tx *store.Tx) error {
		return tx.ForEach(store.BucketInbox, func(string, []byte) error { n++; return nil })
	})
	return n
}

// TestSignedEndpointsRefuseForgeries runs Slack's example through the server's own
// handler (its clock at the example's time): the genuine request gets through the
// signature check (and is then refused as another workspace's, with a reason);
// every forgery gets 401, reaches nothing and leaves the store untouched.
func TestSignedEndpointsRefuseForgeries(t *testing.T) {
	fake := newFake(t, slackfake.Options{})
	db := openStore(t)
	var clockNS atomic.Int64
	clockNS.Store(docTime.Add(10 * time.Second).UnixNano())
	var logs testkit.SyncBuffer
	h := start(t, fake, db, true, func(c *Config) {
		c.SigningSecret = docSecret
		c.Now = func() time.Time { return time.Unix(0, clockNS.Load()) }
		c.Log = slog.New(slog.NewTextHandler(&logs, nil))
	})
	clock := docTime.Add(10 * time.Second)
	handler := h.a.Handler()
	send := func(path string, hdr http.Header, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		r.Header = hdr
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		return w
	}
	w := send("/slack/commands", docHeaders(), docBody)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "workspace") {
		t.Fatalf("genuine example: %d %s", w.Code, w.Body)
	}
	calls := fake.Calls("chat.postMessage") + fake.Calls("chat.postEphemeral")

	without := func(name string) http.Header { h := docHeaders(); h.Del(name); return h }
	with := func(name, v string) http.Header { h := docHeaders(); h.Set(name, v); return h }
	cases := []struct {
		name string
		hdr  http.Header
		body string
		now  time.Time
	}{
		{"changed body", docHeaders(), strings.Replace(docBody, "text=", "text=rotate+site-a", 1), clock},
		{"stale timestamp", docHeaders(), docBody, docTime.Add(5*time.Minute + time.Second)},
		{"future timestamp", docHeaders(), docBody, docTime.Add(-5*time.Minute - time.Second)},
		{"missing signature", without("X-Slack-Signature"), docBody, clock},
		{"missing timestamp", without("X-Slack-Request-Timestamp"), docBody, clock},
		{"wrong secret", with("X-Slack-Signature", slackfake.Sign("not-the-secret", docTS, []byte(docBody))), docBody, clock},
		{"not v0", with("X-Slack-Signature", strings.Replace(docSig, "v0=", "v1=", 1)), docBody, clock},
	}
	for _, c := range cases {
		for _, path := range []string{"/slack/commands", "/slack/interactivity", "/slack/events"} {
			clockNS.Store(c.now.UnixNano())
			w := send(path, c.hdr, c.body)
			if w.Code != http.StatusUnauthorized {
				t.Errorf("%s on %s: %d, want 401", c.name, path, w.Code)
			}
			if strings.Contains(w.Body.String(), "token") || strings.Contains(w.Body.String(), "roadrunner") {
				t.Errorf("%s: the answer echoes the request: %s", c.name, w.Body)
			}
		}
	}
	clockNS.Store(docTime.UnixNano())
	for _, secret := range []string{"xyzz0WbapA4vBCDEFasx0q6G", "roadrunner", "webhook-collect", "hooks.slack.com", docSecret} {
		if strings.Contains(logs.String(), secret) {
			t.Fatalf("the log shows part of a refused request (%s):\n%s", secret, logs.String())
		}
	}
	if !strings.Contains(logs.String(), "signature mismatch") {
		t.Fatalf("refusals not logged with their reason:\n%s", logs.String())
	}
	if n := inboxCount(t, db); n != 0 {
		t.Fatalf("%d envelopes recorded from refused requests", n)
	}
	if n := fake.Calls("chat.postMessage") + fake.Calls("chat.postEphemeral"); n != calls {
		t.Fatalf("refused requests caused %d chat calls", n-calls)
	}
	// Over the cap: refused before the signature is even computed.
	big := strings.Repeat("a", MaxBody+1)
	if w := send("/slack/interactivity", docHeaders(), big); w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized body: %d", w.Code)
	}
	select {
	case ev := <-h.events:
		t.Fatalf("a refused request reached the router: %+v", ev)
	default:
	}
}

func TestURLVerificationAnswered(t *testing.T) {
	fake := newFake(t, slackfake.Options{})
	h := start(t, fake, openStore(t), true, nil)
	a, err := fake.PostSigned("http://"+h.a.Addr()+"/slack/events", "test-signing-secret", "application/json",
		[]byte(`{"token":"x","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`), 0)
	if err != nil || a.Status != 200 || a.Text != "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" {
		t.Fatalf("url_verification: %+v %v", a, err)
	}
	a, _ = fake.PostSigned("http://"+h.a.Addr()+"/slack/events", "wrong", "application/json",
		[]byte(`{"token":"x","challenge":"c","type":"url_verification"}`), 0)
	if a.Status != http.StatusUnauthorized {
		t.Fatalf("unsigned url_verification answered %d", a.Status)
	}
}
