// Package logs owns sepmbot's log output: a log/slog handler in JSON or text that
// redacts every registered secret (and any attribute whose key names a password,
// token or secret) and adds the current step to every line that names a rotation.
//
// Guarantees: a value registered with the Redactor never appears in a record this
// handler writes, in its message, its attributes (nested groups included) or the
// text of an error attribute; a record with a "rotation" attribute but no "step"
// gets the step the rotation was last seen at (see Steps).
package logs

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
)

// Redactor is what the handler needs to hide secrets; *config.Redactor implements it.
type Redactor interface {
	Redact(s string) string
}

// Options configure New.
type Options struct {
	Format string // "json" or "text" (default)
	Level  slog.Leveler
	Redact Redactor // nil: only secret-named keys are redacted
	Steps  *Steps   // nil: no step added
}

// New returns a logger writing to w.
func New(w io.Writer, o Options) (*slog.Logger, error) {
	h, err := NewHandler(w, o)
	if err != nil {
		return nil, err
	}
	return slog.New(h), nil
}

// NewHandler returns the redacting handler writing to w.
func NewHandler(w io.Writer, o Options) (slog.Handler, error) {
	ho := &slog.HandlerOptions{Level: o.Level}
	var inner slog.Handler
	switch strings.ToLower(o.Format) {
	case "", "text":
		inner = slog.NewTextHandler(w, ho)
	case "json":
		inner = slog.NewJSONHandler(w, ho)
	default:
		return nil, fmt.Errorf("--log-format %q: want json or text", o.Format)
	}
	return &handler{inner: inner, red: o.Redact, steps: o.Steps}, nil
}

// Redacted replaces a secret.
const Redacted = "[REDACTED]"

type handler struct {
	inner    slog.Handler
	red      Redactor
	steps    *Steps
	rotation string // from WithAttrs
	hasStep  bool
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, h.text(r.Message), r.PC)
	rot, hasStep := h.rotation, h.hasStep
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "rotation" {
			rot = a.Value.Resolve().String()
		}
		if a.Key == "step" {
			hasStep = true
		}
		out.AddAttrs(h.attr(a))
		return true
	})
	if rot != "" && !hasStep && h.steps != nil {
		if s := h.steps.Get(rot); s != "" {
			out.AddAttrs(slog.String("step", s))
		}
	}
	return h.inner.Handle(ctx, out)
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	red := make([]slog.Attr, 0, len(as))
	for _, a := range as {
		if a.Key == "rotation" {
			c.rotation = a.Value.Resolve().String()
		}
		if a.Key == "step" {
			c.hasStep = true
		}
		red = append(red, h.attr(a))
	}
	c.inner = h.inner.WithAttrs(red)
	return &c
}

func (h *handler) WithGroup(name string) slog.Handler {
	c := *h
	c.inner = h.inner.WithGroup(name)
	return &c
}

func (h *handler) text(s string) string {
	if h.red == nil {
		return s
	}
	return h.red.Redact(s)
}

// secretKey reports whether an attribute key names a secret.
func secretKey(k string) bool {
	k = strings.ToLower(k)
	for _, w := range []string{"password", "passwd", "token", "secret", "authorization", "cookie", "signing", "private_key", "api_key"} {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

func (h *handler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	if secretKey(a.Key) && v.Kind() != slog.KindGroup {
		return slog.String(a.Key, Redacted)
	}
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.text(v.String()))
	case slog.KindGroup:
		g := v.Group()
		out := make([]any, 0, len(g))
		for _, ga := range g {
			out = append(out, h.attr(ga))
		}
		return slog.Group(a.Key, out...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.String(a.Key, h.text(x.Error()))
		case fmt.Stringer:
			return slog.String(a.Key, h.text(x.String()))
		case []string:
			cp := make([]string, len(x))
			for i, s := range x {
				cp[i] = h.text(s)
			}
			return slog.Any(a.Key, cp)
		default:
			return slog.String(a.Key, h.text(fmt.Sprintf("%+v", x)))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

// Steps remembers the step each rotation is at, for log lines that name only the
// rotation. It is safe for concurrent use.
type Steps struct {
	mu sync.RWMutex
	m  map[string]string
}

// Set records rotation's current step ("" forgets it).
func (s *Steps) Set(rotation, step string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]string{}
	}
	if step == "" {
		delete(s.m, rotation)
		return
	}
	s.m[rotation] = step
}

// Get returns rotation's current step, or "".
func (s *Steps) Get(rotation string) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.m[rotation]
}

// AtLeast returns h limited to records at level min or above.
func AtLeast(h slog.Handler, min slog.Level) slog.Handler { return floor{h, min} }

type floor struct {
	slog.Handler
	min slog.Level
}

func (f floor) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= f.min && f.Handler.Enabled(ctx, l)
}

func (f floor) WithAttrs(as []slog.Attr) slog.Handler { return floor{f.Handler.WithAttrs(as), f.min} }

func (f floor) WithGroup(name string) slog.Handler { return floor{f.Handler.WithGroup(name), f.min} }
