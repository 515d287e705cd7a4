package discord

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"sepmbot/bot/discord/discordtest"
)

// RFC 8032 section 7.1, TEST 1.
const (
	rfcSeed   = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
	rfcPublic = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
	rfcSigNil = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
	// The RFC key's signature over "1700000000" + `{"type":1}` (Ed25519 is deterministic).
	rfcSigPing = "1695961a47c91a1ec033b819b7e87e3dbc583dd0cee6d1fd0216f58ac87b6228ae531ddbf91fb7bc28d7edf7f08604da16f54624f38a6bc0614e4dc13cd47f0f"
)

func rfcKey(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	seed, _ := hex.DecodeString(rfcSeed)
	priv := ed25519.NewKeyFromSeed(seed)
	pub, err := ParsePublicKey(rfcPublic)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(priv.Public().(ed25519.PublicKey), pub) {
		t.Fatal("RFC 8032 test 1: seed and public key disagree")
	}
	sig, _ := hex.DecodeString(rfcSigNil)
	if !ed25519.Verify(pub, nil, sig) {
		t.Fatal("RFC 8032 test 1: the empty message's signature does not verify")
	}
	return pub, priv
}

func signed(priv ed25519.PrivateKey, ts, body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, InteractionsPath, strings.NewReader(body))
	r.Header.Set("X-Signature-Timestamp", ts)
	r.Header.Set("X-Signature-Ed25519", hex.EncodeToString(ed25519.Sign(priv, []byte(ts+body))))
	return r
}

func TestVerifyRFC8032FixedVector(t *testing.T) {
	pub, _ := rfcKey(t)
	r := httptest.NewRequest(http.MethodPost, InteractionsPath, strings.NewReader(`{"type":1}`))
	r.Header.Set("X-Signature-Timestamp", "1700000000")
	r.Header.Set("X-Signature-Ed25519", rfcSigPing)
	body, err := Verify(r, pub, time.Unix(1700000000, 0).Add(4*time.Minute))
	if err != nil || string(body) != `{"type":1}` {
		t.Fatalf("fixed vector: body %q, err %v", body, err)
	}
}

func TestHandlerSignatures(t *testing.T) {
	pub, priv := rfcKey(t)
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	genPub, genPriv, _ := ed25519.GenerateKey(rand.Reader)
	d, f, clock := setup(t, nil)
	now := clock.Now()
	ts := fmt.Sprint(now.Unix())
	ping := `{"id":"1","type":1,"application_id":"1","token":"t"}`
	cmd := `{"id":"42","type":2,"application_id":"1","token":"t","channel_id":"9","member":{"user":{"id":"7"},"roles":[]},"data":{"name":"sepm","options":[{"name":"list","type":1}]}}`

	cases := []struct {
		name   string
		key    ed25519.PublicKey
		req    *http.Request
		status int
	}{
		{"RFC 8032 key pair, PING", pub, signed(priv, ts, ping), http.StatusOK},
		{"generated key, PING", genPub, signed(genPriv, ts, ping), http.StatusOK},
		{"changed body", genPub, func() *http.Request {
			r := signed(genPriv, ts, cmd)
			r.Body = ioNop(strings.Replace(cmd, `"list"`, `"rotate"`, 1))
			return r
		}(), http.StatusUnauthorized},
		{"wrong key", genPub, signed(otherPriv, ts, cmd), http.StatusUnauthorized},
		{"stale timestamp (5 min 1 s)", genPub, signed(genPriv, fmt.Sprint(now.Add(-5*time.Minute-time.Second).Unix()), cmd), http.StatusUnauthorized},
		{"timestamp from the future", genPub, signed(genPriv, fmt.Sprint(now.Add(6*time.Minute).Unix()), cmd), http.StatusUnauthorized},
		{"oversized body", genPub, signed(genPriv, ts, `{"type":2,"pad":"`+strings.Repeat("x", maxBody)+`"}`), http.StatusUnauthorized},
		{"no signature", genPub, func() *http.Request {
			r := signed(genPriv, ts, cmd)
			r.Header.Del("X-Signature-Ed25519")
			return r
		}(), http.StatusUnauthorized},
		{"malformed timestamp", genPub, signed(genPriv, "yesterday", cmd), http.StatusUnauthorized},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			d.Handler(tc.key).ServeHTTP(w, tc.req)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d (%s)", w.Code, tc.status, w.Body)
			}
			if tc.status == http.StatusOK && strings.TrimSpace(w.Body.String()) != `{"type":1}` {
				t.Fatalf("PING answered %q, want PONG", w.Body)
			}
			none(t, d)
			f.Snapshot(func(v discordtest.View) {
				if n := len(v.Calls()); n != 0 {
					t.Fatalf("a refused or PING request made %d REST calls", n)
				}
			})
		})
	}

	// A valid command is accepted (202) and becomes exactly one event, once.
	for range 2 {
		w := httptest.NewRecorder()
		d.Handler(genPub).ServeHTTP(w, signed(genPriv, ts, cmd))
		if w.Code != http.StatusAccepted {
			t.Fatalf("valid command: status %d", w.Code)
		}
	}
	ev := next(t, d)
	if ev.Text != "/sepm list" || ev.User != "7" || ev.DeliveryID != "42" || ev.Reply == nil {
		t.Fatalf("event %+v", ev)
	}
	none(t, d)
}

type nopBody struct{ *strings.Reader }

func (nopBody) Close() error { return nil }

func ioNop(s string) nopBody { return nopBody{strings.NewReader(s)} }
