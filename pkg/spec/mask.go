package spec

import (
	"reflect"
	"strings"
	"sync"
)

// Masked replaces secret values in plan and diff output.
const Masked = "***"

// Mask returns a deep copy of o with secret values replaced by "***", for
// plan and diff output: string fields tagged `secret:"true"` and annotation
// values whose key contains secret, token, password or key. (SecretRefs hold
// only the names of environment variables and files, which are shown.)
//
// An object with nothing to mask is returned as is (callers only read it):
// masking 10,000 objects for a diff would otherwise copy them all.
func Mask(o *Object) *Object {
	if o == nil {
		return nil
	}
	if !needsMask(o) {
		return o
	}
	c := Clone(o)
	for k := range c.Metadata.Annotations {
		if sensitiveKey(k) {
			c.Metadata.Annotations[k] = Masked
		}
	}
	if c.Spec != nil {
		maskValue(reflect.ValueOf(c.Spec))
	}
	return c
}

// Clone returns a deep copy of o; the copy shares o's Source (which is
// read-only).
func Clone(o *Object) *Object {
	if o == nil {
		return nil
	}
	c := deepCopy(reflect.ValueOf(o).Elem()).Interface().(Object)
	return &c
}

// deepCopy copies v recursively. Source pointers are shared.
func deepCopy(v reflect.Value) reflect.Value {
	out := reflect.New(v.Type()).Elem()
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return out
		}
		if v.Type() == reflect.TypeFor[*Source]() {
			out.Set(v)
			return out
		}
		p := reflect.New(v.Type().Elem())
		p.Elem().Set(deepCopy(v.Elem()))
		out.Set(p)
	case reflect.Interface:
		if !v.IsNil() {
			out.Set(deepCopy(v.Elem()))
		}
	case reflect.Struct:
		out.Set(v) // copies unexported fields too; exported ones are replaced below
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				out.Field(i).Set(deepCopy(v.Field(i)))
			}
		}
	case reflect.Slice:
		if v.IsNil() {
			return out
		}
		s := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := 0; i < v.Len(); i++ {
			s.Index(i).Set(deepCopy(v.Index(i)))
		}
		out.Set(s)
	case reflect.Map:
		if v.IsNil() {
			return out
		}
		m := reflect.MakeMapWithSize(v.Type(), v.Len())
		iter := v.MapRange()
		for iter.Next() {
			m.SetMapIndex(iter.Key(), deepCopy(iter.Value()))
		}
		out.Set(m)
	default:
		out.Set(v)
	}
	return out
}

func sensitiveKey(k string) bool {
	k = strings.ToLower(k)
	for _, w := range []string{"secret", "token", "password", "key"} {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// needsMask reports whether Mask would change anything in o.
func needsMask(o *Object) bool {
	for k := range o.Metadata.Annotations {
		if sensitiveKey(k) {
			return true
		}
	}
	return o.Spec != nil && hasSecretFields(reflect.TypeOf(o.Spec), nil)
}

// secretTypes caches hasSecretFields per type.
var secretTypes sync.Map // reflect.Type → bool

// hasSecretFields reports whether values of type t can hold a field tagged
// secret:"true".
func hasSecretFields(t reflect.Type, seen map[reflect.Type]bool) bool {
	if v, ok := secretTypes.Load(t); ok {
		return v.(bool)
	}
	if seen[t] {
		return false // a cycle: decided by the outer call
	}
	if seen == nil {
		seen = map[reflect.Type]bool{}
	}
	seen[t] = true
	found := false
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		found = hasSecretFields(t.Elem(), seen)
	case reflect.Map:
		found = t.Elem().Kind() != reflect.Interface && hasSecretFields(t.Elem(), seen)
	case reflect.Struct:
		for i := 0; i < t.NumField() && !found; i++ {
			f := t.Field(i)
			if f.IsExported() && (f.Tag.Get("secret") == "true" || hasSecretFields(f.Type, seen)) {
				found = true
			}
		}
	}
	secretTypes.Store(t, found)
	return found
}

// maskValue walks v and masks string fields tagged secret:"true".
func maskValue(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			maskValue(v.Elem())
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := v.Field(i)
			if !t.Field(i).IsExported() {
				continue
			}
			if t.Field(i).Tag.Get("secret") == "true" {
				maskSecret(f)
				continue
			}
			maskValue(f)
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			maskValue(v.Index(i))
		}
	case reflect.Map:
		if v.Type().Elem().Kind() == reflect.Interface {
			return // free-form JSON Schemas hold no secrets
		}
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k))
			maskValue(e)
			v.SetMapIndex(k, e)
		}
	}
}

// maskSecret replaces a secret field's value (strings and string lists).
func maskSecret(f reflect.Value) {
	switch f.Kind() {
	case reflect.String:
		if f.Len() > 0 {
			f.SetString(Masked)
		}
	case reflect.Slice:
		for i := 0; i < f.Len(); i++ {
			maskSecret(f.Index(i))
		}
	case reflect.Pointer:
		if !f.IsNil() {
			maskSecret(f.Elem())
		}
	case reflect.Map:
		for _, k := range f.MapKeys() {
			if f.MapIndex(k).Kind() == reflect.String {
				f.SetMapIndex(k, reflect.ValueOf(Masked).Convert(f.Type().Elem()))
			}
		}
	}
}
