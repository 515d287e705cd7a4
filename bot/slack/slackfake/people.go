package slackfake

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// What people do in Slack reaches the bot over the websocket (Socket Mode, the
// default) or, after SetHTTPTarget, as signed POSTs to the bot's endpoints.

var idSeq atomic.Int64

func nextID(prefix string) string { return fmt.Sprintf("%s%08d", prefix, idSeq.Add(1)) }

// SetHTTPTarget sends people's actions to the bot's HTTP endpoints under base (e.g.
// "http://127.0.0.1:8080"), signed with secret; "" goes back to Socket Mode.
func (s *Server) SetHTTPTarget(base, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.httpBase, s.httpSecret = strings.TrimRight(base, "/"), secret
}

// Sign computes Slack's v0 signature of body at timestamp ts with secret.
func Sign(secret, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(m, "v0:%s:", ts)
	m.Write(body)
	return "v0=" + hex.EncodeToString(m.Sum(nil))
}

// Answer is the bot's immediate answer to a delivery: the ack payload (Socket
// Mode) or the HTTP response (HTTP mode).
type Answer struct {
	Status int    // HTTP status (Socket Mode: 200 once acked)
	Body   []byte // raw payload
	Text   string // the "text" of a JSON payload, or a text/plain body
}

// Ephemeral reports whether the answer is shown to the user only (Slack's default
// response_type for slash commands).
func (a Answer) Ephemeral() bool {
	var p struct {
		ResponseType string `json:"response_type"`
	}
	_ = json.Unmarshal(a.Body, &p)
	return p.ResponseType != "in_channel"
}

// ErrNoAck means the client never acknowledged within the wait.
var ErrNoAck = errors.New("slackfake: no ack")

// deliverWait bounds how long a delivery waits for the bot's answer (a test
// failure guard, not a timing assertion: Slack itself gives up after 3 s).
const deliverWait = 10 * time.Second

func (s *Server) httpTarget() (string, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.httpBase, s.httpSecret
}

// deliver sends one payload to the bot in the current mode and returns its answer.
func (s *Server) deliver(typ string, payload any, retry int) (Answer, error) {
	base, secret := s.httpTarget()
	if base == "" {
		env, err := s.Push(typ, payload, retry)
		if err != nil {
			return Answer{}, err
		}
		stop := make(chan struct{})
		t := time.AfterFunc(deliverWait, func() { close(stop) })
		defer t.Stop()
		p, ok := env.Ack(stop)
		if !ok {
			return Answer{}, ErrNoAck
		}
		a := Answer{Status: http.StatusOK, Body: p}
		var body struct {
			Text string `json:"text"`
		}
		_ = json.Unmarshal(p, &body)
		a.Text = body.Text
		return a, nil
	}
	var path, ctype string
	var body []byte
	switch typ {
	case "slash_commands":
		path, ctype = "/slack/commands", "application/x-www-form-urlencoded"
		form := url.Values{}
		for k, v := range payload.(map[string]string) {
			form.Set(k, v)
		}
		body = []byte(form.Encode())
	case "interactive":
		path, ctype = "/slack/interactivity", "application/x-www-form-urlencoded"
		raw, _ := json.Marshal(payload)
		body = []byte(url.Values{"payload": {string(raw)}}.Encode())
	default:
		path, ctype = "/slack/events", "application/json"
		body, _ = json.Marshal(payload)
	}
	return s.PostSigned(base+path, secret, ctype, body, retry)
}

// PostSigned POSTs body to the bot signed as Slack does (X-Slack-Signature,
// X-Slack-Request-Timestamp, X-Slack-Retry-Num when retry > 0).
func (s *Server) PostSigned(u, secret, ctype string, body []byte, retry int) (Answer, error) {
	ts := strconv.FormatInt(s.opts.Now().Unix(), 10)
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(string(body)))
	if err != nil {
		return Answer{}, err
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", Sign(secret, ts, body))
	if retry > 0 {
		req.Header.Set("X-Slack-Retry-Num", strconv.Itoa(retry))
		req.Header.Set("X-Slack-Retry-Reason", "http_timeout")
	}
	c := &http.Client{Timeout: deliverWait}
	resp, err := c.Do(req)
	if err != nil {
		return Answer{}, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := Answer{Status: resp.StatusCode, Body: raw, Text: string(raw)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		var p struct {
			Text string `json:"text"`
		}
		_ = json.Unmarshal(raw, &p)
		a.Text = p.Text
	}
	return a, nil
}

// record keeps an ephemeral answer as shown to the user.
func (s *Server) record(a Answer, channel, user string) {
	if a.Status == http.StatusOK && len(a.Body) > 0 && a.Text != "" && a.Ephemeral() {
		s.addEphemeral(Ephemeral{Channel: channel, User: user, Text: a.Text})
	}
}

// CommandPayload builds a /sepm slash command payload by user in channel.
func (s *Server) CommandPayload(user, channel, text string) map[string]string {
	team := s.teamOf(user)
	return map[string]string{
		"token": "verification-token-unused", "team_id": team, "team_domain": "sepm-fake",
		"channel_id": channel, "channel_name": "sepm", "user_id": user, "user_name": strings.ToLower(user),
		"command": "/sepm", "text": text, "api_app_id": "A0SEPM", "is_enterprise_install": "false",
		"response_url": "https://hooks.slack.invalid/commands/T0SEPM/1/x", "trigger_id": nextID("trig."),
	}
}

// Command runs `/sepm text` as user in channel and returns the bot's immediate
// answer (recorded as an ephemeral when it is one).
func (s *Server) Command(user, channel, text string) (Answer, error) {
	return s.SendCommand(s.CommandPayload(user, channel, text), 0)
}

// SendCommand delivers a slash command payload (retry > 0 marks a redelivery).
func (s *Server) SendCommand(p map[string]string, retry int) (Answer, error) {
	a, err := s.deliver("slash_commands", p, retry)
	if err == nil {
		s.record(a, p["channel_id"], p["user_id"])
	}
	return a, err
}

func (s *Server) teamOf(user string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.users[user]; ok {
		return u.TeamID
	}
	return s.opts.TeamID
}

// ClickPayload builds the block_actions payload of user clicking the button with
// actionID on message (channel, ts); ok is false if the message has no such button.
func (s *Server) ClickPayload(user, channel, ts, actionID string) (map[string]any, bool) {
	m, ok := s.Message(channel, ts)
	if !ok {
		return nil, false
	}
	for _, b := range Buttons(m.Blocks) {
		if b.ActionID != actionID {
			continue
		}
		team := s.teamOf(user)
		now := s.opts.Now()
		return map[string]any{
			"type": "block_actions", "token": "verification-token-unused", "api_app_id": "A0SEPM",
			"team":       map[string]any{"id": team, "domain": "sepm-fake"},
			"user":       map[string]any{"id": user, "username": strings.ToLower(user), "team_id": team},
			"channel":    map[string]any{"id": channel, "name": "sepm"},
			"container":  map[string]any{"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": false},
			"message":    map[string]any{"type": "message", "ts": ts, "text": m.Text, "blocks": m.Blocks},
			"trigger_id": nextID("trig."), "response_url": "https://hooks.slack.invalid/actions/T0SEPM/1/x",
			"actions": []any{map[string]any{
				"type": "button", "action_id": b.ActionID, "block_id": "actions", "value": b.Value,
				"text":      map[string]any{"type": "plain_text", "text": b.Text},
				"action_ts": fmt.Sprintf("%d.%06d", now.Unix(), now.Nanosecond()/1000),
			}},
		}, true
	}
	return nil, false
}

// Click has user click the button actionID on (channel, ts) and confirm its dialog.
func (s *Server) Click(user, channel, ts, actionID string) (Answer, error) {
	p, ok := s.ClickPayload(user, channel, ts, actionID)
	if !ok {
		return Answer{}, fmt.Errorf("slackfake: no button %q on %s/%s", actionID, channel, ts)
	}
	return s.SendInteraction(p, 0)
}

// SendInteraction delivers an interaction payload (retry > 0: a redelivery).
func (s *Server) SendInteraction(p map[string]any, retry int) (Answer, error) {
	return s.deliver("interactive", p, retry)
}

// ReactionEvent builds the Events API callback of user adding (or removing) the
// reaction name on (channel, ts).
func (s *Server) ReactionEvent(user, channel, ts, name string, added bool) map[string]any {
	typ := "reaction_added"
	if !added {
		typ = "reaction_removed"
	}
	now := s.opts.Now()
	return map[string]any{
		"token": "verification-token-unused", "team_id": s.opts.TeamID, "api_app_id": "A0SEPM",
		"type": "event_callback", "event_id": nextID("Ev"), "event_time": now.Unix(),
		"event": map[string]any{
			"type": typ, "user": user, "reaction": name, "item_user": s.opts.BotUserID,
			"item":     map[string]any{"type": "message", "channel": channel, "ts": ts},
			"event_ts": fmt.Sprintf("%d.%06d", now.Unix(), now.Nanosecond()/1000),
		},
	}
}

// React has user add the reaction name (no colons) on (channel, ts). The
// reaction is kept on the message even when the bot is away (reactions.get sees
// it); the event is delivered only when the bot can be reached.
func (s *Server) React(user, channel, ts, name string) error {
	if code := s.addReaction(user, channel, ts, name); code != "" {
		return errors.New("slackfake: react: " + code)
	}
	_, err := s.SendEvent(s.ReactionEvent(user, channel, ts, name, true), 0)
	if errors.Is(err, ErrNotConnected) {
		return nil // Slack keeps the reaction; the bot reconciles after reconnecting
	}
	return err
}

// Unreact has user remove the reaction name from (channel, ts).
func (s *Server) Unreact(user, channel, ts, name string) error {
	if !s.removeReaction(user, channel, ts, name) {
		return errors.New("slackfake: unreact: no such reaction")
	}
	_, err := s.SendEvent(s.ReactionEvent(user, channel, ts, name, false), 0)
	if errors.Is(err, ErrNotConnected) {
		return nil
	}
	return err
}

// SendEvent delivers an Events API callback (retry > 0: a redelivery; Slack keeps
// the event_id across retries).
func (s *Server) SendEvent(p map[string]any, retry int) (Answer, error) {
	return s.deliver("events_api", p, retry)
}
