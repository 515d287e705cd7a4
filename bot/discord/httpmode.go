package discord

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bwmarrin/discordgo"
)

// InteractionsPath is where Discord posts interactions in HTTP mode.
const InteractionsPath = "/discord/interactions"

// maxBody caps an interaction's body before its signature is checked (Discord's
// largest interactions, a modal with resolved data, stay far below).
const maxBody = 64 << 10

// maxSkew is how old (or how far ahead) a signed timestamp may be.
const maxSkew = 5 * time.Minute

// ParsePublicKey reads DISCORD_PUBLIC_KEY (hex, from the Developer Portal).
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	raw, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, errors.New("DISCORD_PUBLIC_KEY must be the application's public key: 64 hex digits")
	}
	return ed25519.PublicKey(raw), nil
}

// Verify checks one interaction request: body within maxBody, a hex Ed25519
// signature over timestamp+body by key, and a timestamp (Unix seconds) within 5
// minutes of now. It returns the body.
func Verify(r *http.Request, key ed25519.PublicKey, now time.Time) ([]byte, error) {
	sig, err := hex.DecodeString(r.Header.Get("X-Signature-Ed25519"))
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, errors.New("missing or malformed X-Signature-Ed25519")
	}
	ts := r.Header.Get("X-Signature-Timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return nil, errors.New("missing or malformed X-Signature-Timestamp")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > maxSkew || d < -maxSkew {
		return nil, fmt.Errorf("timestamp %s is more than %s from now", ts, maxSkew)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("reading the body: %w", err)
	}
	if len(body) > maxBody {
		return nil, fmt.Errorf("body over %d bytes", maxBody)
	}
	msg := make([]byte, 0, len(ts)+len(body))
	msg = append(append(msg, ts...), body...)
	if !ed25519.Verify(key, msg, sig) {
		return nil, errors.New("signature does not verify")
	}
	return body, nil
}

// Handler serves Discord's Interactions Endpoint URL (InteractionsPath): every
// request is verified first (401 and no effect on any failure: Discord sends bad
// signatures on purpose and removes a URL that accepts them); PING is answered with
// PONG inline; any other interaction is acknowledged with 202 and answered through
// its callback, exactly as one from the gateway.
func (d *Discord) Handler(key ed25519.PublicKey) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody+1)
		body, err := Verify(r, key, d.cfg.Now())
		if err != nil {
			d.log.Info("discord: refused an interaction request", "err", err)
			http.Error(w, "invalid request signature", http.StatusUnauthorized)
			return
		}
		var i discordgo.Interaction
		if err := json.NewDecoder(bytes.NewReader(body)).Decode(&i); err != nil {
			http.Error(w, "malformed interaction", http.StatusBadRequest)
			return
		}
		if i.Type == discordgo.InteractionPing {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"type":1}`))
			return
		}
		func() {
			defer d.survive("interaction")
			d.interaction(&i)
		}()
		w.WriteHeader(http.StatusAccepted)
	})
}
