package slackfake

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// socketState is the Socket Mode side: at most one connection at a time.
type socketState struct {
	mu          sync.Mutex
	conn        *websocket.Conn
	connections int
	blocked     bool
	nextID      int
	acks        map[string]json.RawMessage
	ackWait     map[string]chan json.RawMessage
	connected   chan struct{} // closed and replaced on every new connection
}

func (s *socketState) init() {
	s.acks = map[string]json.RawMessage{}
	s.ackWait = map[string]chan json.RawMessage{}
	s.connected = make(chan struct{})
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

// websocket serves /ws: hello, pings, then reads acks until the connection ends.
func (s *Server) websocket(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	revoked := s.revoked
	s.mu.Unlock()
	s.sock.mu.Lock()
	blocked := s.sock.blocked
	s.sock.mu.Unlock()
	if blocked || revoked {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	s.sock.mu.Lock()
	if old := s.sock.conn; old != nil {
		_ = old.Close()
	}
	s.sock.conn = conn
	s.sock.connections++
	hello := fmt.Sprintf(`{"type":"hello","num_connections":1,"connection_info":{"app_id":"A0SEPM"},"debug_info":{"host":"fake","approximate_connection_time":3600}}`)
	err = conn.WriteMessage(websocket.TextMessage, []byte(hello))
	close(s.sock.connected)
	s.sock.connected = make(chan struct{})
	s.sock.mu.Unlock()
	if err != nil {
		return
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(s.opts.PingInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				s.sock.mu.Lock()
				err := conn.WriteControl(websocket.PingMessage, []byte("ping"), time.Now().Add(5*time.Second))
				s.sock.mu.Unlock()
				if err != nil {
					return
				}
			}
		}
	}()
	for {
		_, raw, err := conn.ReadMessage()
		if err != nil {
			s.sock.mu.Lock()
			if s.sock.conn == conn {
				s.sock.conn = nil
			}
			s.sock.mu.Unlock()
			return
		}
		var ack struct {
			EnvelopeID string          `json:"envelope_id"`
			Payload    json.RawMessage `json:"payload"`
		}
		if json.Unmarshal(raw, &ack) != nil || ack.EnvelopeID == "" {
			continue
		}
		s.sock.mu.Lock()
		s.sock.acks[ack.EnvelopeID] = ack.Payload
		if ch, ok := s.sock.ackWait[ack.EnvelopeID]; ok {
			ch <- ack.Payload
			delete(s.sock.ackWait, ack.EnvelopeID)
		}
		s.sock.mu.Unlock()
	}
}

// Connections counts the Socket Mode connections accepted so far.
func (s *Server) Connections() int {
	s.sock.mu.Lock()
	defer s.sock.mu.Unlock()
	return s.sock.connections
}

// Connected is closed at the next new Socket Mode connection.
func (s *Server) Connected() <-chan struct{} {
	s.sock.mu.Lock()
	defer s.sock.mu.Unlock()
	return s.sock.connected
}

// IsConnected reports whether a Socket Mode client is connected now.
func (s *Server) IsConnected() bool {
	s.sock.mu.Lock()
	defer s.sock.mu.Unlock()
	return s.sock.conn != nil
}

// Disconnect drops the Socket Mode connection (the client reconnects).
func (s *Server) Disconnect() {
	s.sock.mu.Lock()
	defer s.sock.mu.Unlock()
	if s.sock.conn != nil {
		_ = s.sock.conn.Close()
		s.sock.conn = nil
	}
}

// BlockConnections refuses (true) or accepts again (false) new websocket
// connections, to keep the bot away while people act.
func (s *Server) BlockConnections(block bool) {
	s.sock.mu.Lock()
	defer s.sock.mu.Unlock()
	s.sock.blocked = block
}

// ErrNotConnected is returned when an envelope is pushed with no client connected.
var ErrNotConnected = errors.New("slackfake: no Socket Mode client connected")

// Envelope is one Socket Mode request as pushed to the client.
type Envelope struct {
	ID   string
	ack  chan json.RawMessage
	Type string
}

// Ack waits for the client's ack of the envelope and returns its payload; ok is
// false when done closes first.
func (e Envelope) Ack(done <-chan struct{}) (json.RawMessage, bool) {
	select {
	case p := <-e.ack:
		return p, true
	case <-done:
		return nil, false
	}
}

// Push sends one envelope (type events_api, interactive or slash_commands) with
// the payload to the connected client.
func (s *Server) Push(typ string, payload any, retryAttempt int) (Envelope, error) {
	raw, err := json.Marshal(payload)
	if err != nil {
		return Envelope{}, err
	}
	s.sock.mu.Lock()
	defer s.sock.mu.Unlock()
	if s.sock.conn == nil {
		return Envelope{}, ErrNotConnected
	}
	s.sock.nextID++
	id := fmt.Sprintf("env-%06d", s.sock.nextID)
	ch := make(chan json.RawMessage, 1)
	s.sock.ackWait[id] = ch
	frame, _ := json.Marshal(map[string]any{
		"envelope_id": id, "type": typ, "payload": json.RawMessage(raw),
		"accepts_response_payload": typ != "events_api", "retry_attempt": retryAttempt,
	})
	if err := s.sock.conn.WriteMessage(websocket.TextMessage, frame); err != nil {
		delete(s.sock.ackWait, id)
		return Envelope{}, fmt.Errorf("slackfake: push: %w", err)
	}
	return Envelope{ID: id, ack: ch, Type: typ}, nil
}
