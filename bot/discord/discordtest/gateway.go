package discordtest

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// frame is one gateway payload.
type frame struct {
	Op int             `json:"op"`
	D  json.RawMessage `json:"d,omitempty"`
	S  int64           `json:"s,omitempty"`
	T  string          `json:"t,omitempty"`
}

func (f *Fake) serveGateway(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	held := f.gatewayHeld
	f.mu.Unlock()
	if held != nil {
		select {
		case <-held:
		case <-r.Context().Done():
			return
		}
	}
	c, err := f.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	send := func(fr frame) error {
		f.connMu.Lock()
		defer f.connMu.Unlock()
		return c.WriteJSON(fr)
	}
	if err := send(frame{Op: 10, D: json.RawMessage(`{"heartbeat_interval":41250}`)}); err != nil {
		return
	}
	for {
		var in frame
		if err := c.ReadJSON(&in); err != nil {
			f.mu.Lock()
			if f.conn == c {
				f.conn = nil
			}
			f.touch()
			f.mu.Unlock()
			return
		}
		switch in.Op {
		case 1: // heartbeat
			_ = send(frame{Op: 11})
		case 6: // resume: refused, as v0.29.0 (no resume_gateway_url) often meets
			f.mu.Lock()
			f.resumes++
			f.touch()
			f.mu.Unlock()
			_ = send(frame{Op: 9, D: json.RawMessage(`false`)})
		case 2: // identify
			var id struct {
				Token   string `json:"token"`
				Intents int    `json:"intents"`
			}
			_ = json.Unmarshal(in.D, &id)
			if !strings.HasPrefix(id.Token, "Bot ") || (f.Token != "" && id.Token != "Bot "+f.Token) {
				_ = c.WriteControl(8, []byte{0x0f, 0xa4}, timeNowPlus()) // 4004 authentication failed
				return
			}
			ready, _ := json.Marshal(map[string]any{
				"v": 9, "session_id": "fake-session", "intents": id.Intents,
				"user":        map[string]any{"id": f.BotID, "username": "sepmbot", "bot": true},
				"application": map[string]any{"id": f.AppID, "flags": 0},
				"guilds":      []map[string]any{{"id": f.Guild, "unavailable": true}},
			})
			f.mu.Lock()
			f.identifies++
			f.seq = 1
			f.conn = c
			f.intents = id.Intents
			f.mu.Unlock()
			_ = send(frame{Op: 0, T: "READY", S: 1, D: ready})
			f.mu.Lock()
			f.touch()
			f.mu.Unlock()
		}
	}
}

// Intents are the intents of the last IDENTIFY.
func (v View) Intents() int { return v.f.intents }

// Connected reports whether a gateway session is up (READY sent, not kicked).
func (v View) Connected() bool { return v.f.conn != nil }

// Dispatch sends an event (op 0) with data d (a JSON-marshalable value) on the
// gateway. With no session up, the event is withheld (lost, as Discord loses the
// events of a session that cannot resume) and Dispatch returns false.
func (f *Fake) Dispatch(typ string, d any) bool {
	raw, err := json.Marshal(d)
	if err != nil {
		panic(err)
	}
	f.mu.Lock()
	if m, ok := d.(map[string]any); ok && typ == "INTERACTION_CREATE" {
		if id, ok := m["id"].(string); ok {
			if _, seen := f.dispatched[id]; !seen {
				f.dispatched[id] = f.clock.Now()
			}
		}
	}
	c := f.conn
	if c == nil {
		f.withheld = append(f.withheld, typ)
		f.touch()
		f.mu.Unlock()
		return false
	}
	f.seq++
	fr := frame{Op: 0, T: typ, S: f.seq, D: raw}
	f.mu.Unlock()
	f.connMu.Lock()
	err = c.WriteJSON(fr)
	f.connMu.Unlock()
	return err == nil
}

// Kick drops the gateway connection; with Hold first, the client's reconnect waits
// until Release.
func (f *Fake) Kick() {
	f.mu.Lock()
	c := f.conn
	f.conn = nil
	f.touch()
	f.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
}

// Hold makes new gateway connections wait (the gateway is down).
func (f *Fake) Hold() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gatewayHeld == nil {
		f.gatewayHeld = make(chan struct{})
	}
}

// Release lets held and new gateway connections proceed.
func (f *Fake) Release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gatewayHeld != nil {
		close(f.gatewayHeld)
		f.gatewayHeld = nil
	}
}

// React records a user's reaction as Discord would (MessageReactions lists it) and
// dispatches MESSAGE_REACTION_ADD with the member's roles, unless the gateway is down
// (then the event is withheld and only a reconcile can find the reaction).
func (f *Fake) React(channel, message, emoji, user string) bool {
	f.mu.Lock()
	f.addReaction(channel+"/"+message+"/"+emoji, user)
	roles := f.members[user]
	f.touch()
	f.mu.Unlock()
	if roles == nil {
		roles = []string{}
	}
	return f.Dispatch("MESSAGE_REACTION_ADD", map[string]any{
		"user_id": user, "channel_id": channel, "message_id": message, "guild_id": f.Guild,
		"emoji":  map[string]any{"id": nil, "name": emoji},
		"member": map[string]any{"user": map[string]any{"id": user}, "roles": roles},
	})
}

// Unreact removes a user's reaction and dispatches MESSAGE_REACTION_REMOVE (which
// carries no member, as on Discord).
func (f *Fake) Unreact(channel, message, emoji, user string) bool {
	f.mu.Lock()
	key := channel + "/" + message + "/" + emoji
	var kept []string
	for _, u := range f.reactions[key] {
		if u != user {
			kept = append(kept, u)
		}
	}
	f.reactions[key] = kept
	f.touch()
	f.mu.Unlock()
	return f.Dispatch("MESSAGE_REACTION_REMOVE", map[string]any{
		"user_id": user, "channel_id": channel, "message_id": message, "guild_id": f.Guild,
		"emoji": map[string]any{"id": nil, "name": emoji},
	})
}

// NewInteractionID returns a fresh snowflake for an interaction a test builds.
func (f *Fake) NewInteractionID() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.newID()
}

func timeNowPlus() (t time.Time) { return time.Now().Add(time.Second) }
