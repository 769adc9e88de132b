//go:build linux

package fdrestore

import (
	"reflect"
	"strings"
	"unicode/utf8"
)

// A stage request travels as JSON, and encoding/json turns every byte of a
// string that is not UTF-8 into U+FFFD: argv and paths, which are bytes,
// would reach the program changed. Before encoding, every string of the
// request is made valid UTF-8 by escapeBytes (a copy: the caller's plan is
// not touched), and the stage undoes it.

// escapeBytes writes each byte of s that is not part of valid UTF-8, and
// each NUL, as NUL and two hex digits; other strings are returned as they
// are.
func escapeBytes(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	const hex = "0123456789abcdef"
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if s[i] == 0 || (r == utf8.RuneError && n == 1) {
			b.WriteByte(0)
			b.WriteByte(hex[s[i]>>4])
			b.WriteByte(hex[s[i]&15])
			i++
			continue
		}
		b.WriteString(s[i : i+n])
		i += n
	}
	return b.String()
}

// unescapeBytes undoes [escapeBytes].
func unescapeBytes(s string) string {
	if strings.IndexByte(s, 0) < 0 {
		return s
	}
	unhex := func(c byte) byte {
		switch {
		case c >= 'a':
			return c - 'a' + 10
		case c >= 'A':
			return c - 'A' + 10
		}
		return c - '0'
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0 && i+2 < len(s) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// mapStrings returns a deep copy of v with f applied to every string in it
// (struct fields, pointers, slices, arrays, map keys and values).
func mapStrings(v reflect.Value, f func(string) string) reflect.Value {
	switch v.Kind() {
	case reflect.String:
		out := reflect.New(v.Type()).Elem()
		out.SetString(f(v.String()))
		return out
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		out := reflect.New(v.Type().Elem())
		out.Elem().Set(mapStrings(v.Elem(), f))
		return out
	case reflect.Struct:
		out := reflect.New(v.Type()).Elem()
		out.Set(v)
		for i := range v.NumField() {
			if out.Field(i).CanSet() {
				out.Field(i).Set(mapStrings(v.Field(i), f))
			}
		}
		return out
	case reflect.Slice:
		if v.IsNil() || v.Type().Elem().Kind() == reflect.Uint8 {
			return v
		}
		out := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			out.Index(i).Set(mapStrings(v.Index(i), f))
		}
		return out
	case reflect.Array:
		out := reflect.New(v.Type()).Elem()
		for i := range v.Len() {
			out.Index(i).Set(mapStrings(v.Index(i), f))
		}
		return out
	case reflect.Map:
		if v.IsNil() {
			return v
		}
		out := reflect.MakeMapWithSize(v.Type(), v.Len())
		for it := v.MapRange(); it.Next(); {
			out.SetMapIndex(mapStrings(it.Key(), f), mapStrings(it.Value(), f))
		}
		return out
	}
	return v
}
