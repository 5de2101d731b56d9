package client

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"time"
)

// Var is a typed live value: its default until the key has a valid value,
// the key's value after, the default again if the key is deleted.
type Var[T any] struct {
	v   atomic.Pointer[T]
	def T
}

// Load is the current value.
func (v *Var[T]) Load() T { return *v.v.Load() }

// Bind makes key a Var of type T with default def (the environment's
// setting). A value that does not decode as T or that check refuses is
// not taken; a duration may be written as a string ("250ms").
func Bind[T any](c *Client, key string, def T, check func(T) error) *Var[T] {
	v := &Var[T]{def: def}
	v.v.Store(&def)
	decode := func(raw json.RawMessage) (T, error) {
		x, err := Decode[T](raw)
		if err == nil && check != nil {
			err = check(x)
		}
		return x, err
	}
	c.Validate(key, func(raw json.RawMessage) error { _, err := decode(raw); return err })
	c.Watch(key, func(raw json.RawMessage, ok bool) {
		if !ok {
			v.v.Store(&v.def)
			return
		}
		x, err := decode(raw)
		if err != nil {
			c.o.Log.Warn("config value refused, keeping the previous one", "key", key, "err", err)
			return
		}
		v.v.Store(&x)
	})
	return v
}

// Decode reads a JSON value as T; a time.Duration also reads "1.5s".
func Decode[T any](raw json.RawMessage) (T, error) {
	var x T
	if _, isDuration := any(x).(time.Duration); isDuration && strings.HasPrefix(strings.TrimSpace(string(raw)), `"`) {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return x, err
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return x, err
		}
		reflect.ValueOf(&x).Elem().SetInt(int64(d))
		return x, nil
	}
	if err := json.Unmarshal(raw, &x); err != nil {
		return x, fmt.Errorf("want %T: %w", x, err)
	}
	return x, nil
}
