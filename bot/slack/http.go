package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
)

// HTTP mode: Slack POSTs slash commands, clicks and events to the bot. Every
// request is read (at most MaxBody) and its v0 signature verified before anything
// in it is parsed; a request that fails gets 401, changes nothing, and its body is
// never logged.

// listen opens the HTTP listener; the returned function serves until ctx is done.
func (a *Adapter) listen() (func(context.Context) error, error) {
	ln, err := net.Listen("tcp", a.cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("slack: listening on %s: %w", a.cfg.Listen, err)
	}
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	a.mu.Lock()
	a.server, a.addr = srv, ln.Addr().String()
	a.mu.Unlock()
	return func(ctx context.Context) error {
		go func() {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("slack: HTTP listener: %w", err)
		}
		return nil
	}, nil
}

// Addr is the HTTP listener's address (HTTP mode, after Start).
func (a *Adapter) Addr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.addr
}

// Handler serves /slack/commands, /slack/interactivity and /slack/events.
func (a *Adapter) Handler() http.Handler {
	v := &Verifier{secret: []byte(a.cfg.SigningSecret), Now: a.now}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /slack/commands", func(w http.ResponseWriter, r *http.Request) {
		if body, ok := a.verified(w, r, v); ok {
			a.httpCommand(w, r, body)
		}
	})
	mux.HandleFunc("POST /slack/interactivity", func(w http.ResponseWriter, r *http.Request) {
		if body, ok := a.verified(w, r, v); ok {
			a.httpInteraction(w, r, body)
		}
	})
	mux.HandleFunc("POST /slack/events", func(w http.ResponseWriter, r *http.Request) {
		if body, ok := a.verified(w, r, v); ok {
			a.httpEvent(w, r, body)
		}
	})
	return mux
}

// verified reads the capped body and checks its signature; on failure it has
// answered (413 or 401) and logged the reason only.
func (a *Adapter) verified(w http.ResponseWriter, r *http.Request, v *Verifier) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			a.log.Warn("slack: refused a request larger than the cap", "path", r.URL.Path, "remote", r.RemoteAddr, "cap", MaxBody)
			http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
			return nil, false
		}
		http.Error(w, "unreadable request", http.StatusBadRequest)
		return nil, false
	}
	if err := v.Verify(r.Header, body); err != nil {
		a.log.Warn("slack: refused an unsigned or badly signed request", "path", r.URL.Path, "remote", r.RemoteAddr, "reason", err)
		http.Error(w, "invalid signature", http.StatusUnauthorized)
		return nil, false
	}
	return body, true
}

// wait submits records and waits for their ack; it writes the HTTP answer.
func (a *Adapter) wait(w http.ResponseWriter, r *http.Request, recs []record, command bool) {
	answer := make(chan any, 1)
	a.submit(recs, func(p any) { answer <- p }, command)
	select {
	case p := <-answer:
		writeAck(w, p)
	case <-r.Context().Done():
	}
}

func writeAck(w http.ResponseWriter, p any) {
	switch p := p.(type) {
	case nil:
		w.WriteHeader(http.StatusOK)
	case errorPayload:
		http.Error(w, "not recorded; try again", http.StatusServiceUnavailable)
	case json.RawMessage:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(p))) // one write, not chunked
		_, _ = w.Write(p)
	default:
		raw, err := json.Marshal(p)
		if err != nil {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(raw)
	}
}

func (a *Adapter) httpCommand(w http.ResponseWriter, r *http.Request, body []byte) {
	f, err := url.ParseQuery(string(body))
	if err != nil {
		http.Error(w, "malformed form", http.StatusBadRequest)
		return
	}
	sc := slack.SlashCommand{
		TeamID: f.Get("team_id"), TeamDomain: f.Get("team_domain"), EnterpriseID: f.Get("enterprise_id"),
		ChannelID: f.Get("channel_id"), ChannelName: f.Get("channel_name"), UserID: f.Get("user_id"),
		UserName: f.Get("user_name"), Command: f.Get("command"), Text: f.Get("text"),
		TriggerID: f.Get("trigger_id"), APIAppID: f.Get("api_app_id"),
	}
	rec, no := a.fromCommand(sc)
	if no != "" {
		writeAck(w, map[string]any{"response_type": "ephemeral", "text": string(no)})
		return
	}
	a.wait(w, r, []record{rec}, true)
}

func (a *Adapter) httpInteraction(w http.ResponseWriter, r *http.Request, body []byte) {
	f, err := url.ParseQuery(string(body))
	if err != nil {
		http.Error(w, "malformed form", http.StatusBadRequest)
		return
	}
	var cb slack.InteractionCallback
	if err := json.Unmarshal([]byte(f.Get("payload")), &cb); err != nil {
		http.Error(w, "malformed payload", http.StatusBadRequest)
		return
	}
	recs, no := a.fromInteraction(cb)
	if no != "" || len(recs) == 0 {
		w.WriteHeader(http.StatusOK)
		a.refuse(r.Context(), cb.Container.ChannelID, cb.User.ID, no)
		return
	}
	a.wait(w, r, recs, false)
}

func (a *Adapter) httpEvent(w http.ResponseWriter, r *http.Request, body []byte) {
	ev, err := slackevents.ParseEvent(json.RawMessage(body), slackevents.OptionNoVerifyToken())
	if err != nil {
		// Signed by Slack, so a retry would bring the same: take it and say so.
		a.log.Warn("slack: an event the bot cannot read was dropped", "err", err)
		w.WriteHeader(http.StatusOK)
		return
	}
	if ev.Type == slackevents.AppRateLimited {
		a.log.Warn("slack: Slack is rate-limiting this app's events (app_rate_limited); some reactions may arrive late")
	}
	if ev.Type == slackevents.URLVerification {
		uv, ok := ev.Data.(*slackevents.EventsAPIURLVerificationEvent)
		if !ok {
			http.Error(w, "malformed challenge", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, uv.Challenge)
		return
	}
	recs := a.fromEvent(ev)
	if len(recs) == 0 {
		w.WriteHeader(http.StatusOK)
		return
	}
	a.wait(w, r, recs, false)
}
