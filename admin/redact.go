package admin

import (
	"reflect"

	"sepmbot/bot"
)

// Redactor hides secrets in text; *config.Redactor implements it.
type Redactor interface {
	Redact(s string) string
	Contains(s string) bool
}

// redactMessage returns m with every registered secret replaced in each of its
// strings (whatever fields the message model has), copying only when one holds a
// secret. The caller's message is never changed.
func redactMessage(r Redactor, m bot.Message) bot.Message {
	if r == nil || !holdsSecret(r, reflect.ValueOf(m)) {
		return m
	}
	out := reflect.New(reflect.TypeOf(m)).Elem()
	copyRedacted(r, out, reflect.ValueOf(m))
	return out.Interface().(bot.Message)
}

func holdsSecret(r Redactor, v reflect.Value) bool {
	switch v.Kind() {
	case reflect.String:
		return r.Contains(v.String())
	case reflect.Struct:
		for i := range v.NumField() {
			if holdsSecret(r, v.Field(i)) {
				return true
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if holdsSecret(r, v.Index(i)) {
				return true
			}
		}
	case reflect.Pointer:
		return !v.IsNil() && holdsSecret(r, v.Elem())
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			if holdsSecret(r, it.Key()) || holdsSecret(r, it.Value()) {
				return true
			}
		}
	}
	return false
}

// copyRedacted deep-copies src into dst (settable), redacting strings. Unexported
// fields and kinds without strings are copied as they are.
func copyRedacted(r Redactor, dst, src reflect.Value) {
	switch src.Kind() {
	case reflect.String:
		dst.SetString(r.Redact(src.String()))
	case reflect.Struct:
		dst.Set(src) // unexported fields keep their values
		for i := range src.NumField() {
			if dst.Field(i).CanSet() {
				copyRedacted(r, dst.Field(i), src.Field(i))
			}
		}
	case reflect.Slice:
		if src.IsNil() {
			return
		}
		s := reflect.MakeSlice(src.Type(), src.Len(), src.Len())
		for i := range src.Len() {
			copyRedacted(r, s.Index(i), src.Index(i))
		}
		dst.Set(s)
	case reflect.Array:
		for i := range src.Len() {
			copyRedacted(r, dst.Index(i), src.Index(i))
		}
	case reflect.Pointer:
		if src.IsNil() {
			return
		}
		p := reflect.New(src.Type().Elem())
		copyRedacted(r, p.Elem(), src.Elem())
		dst.Set(p)
	case reflect.Map:
		if src.IsNil() {
			return
		}
		m := reflect.MakeMapWithSize(src.Type(), src.Len())
		it := src.MapRange()
		for it.Next() {
			k := reflect.New(src.Type().Key()).Elem()
			copyRedacted(r, k, it.Key())
			v := reflect.New(src.Type().Elem()).Elem()
			copyRedacted(r, v, it.Value())
			m.SetMapIndex(k, v)
		}
		dst.Set(m)
	default:
		dst.Set(src)
	}
}
