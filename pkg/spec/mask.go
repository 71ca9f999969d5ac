package spec

import (
	"reflect"
	"strings"
)

// Masked replaces secret values in plan and diff output.
const Masked = "***"

// Mask returns a deep copy of o with secret values replaced by "***", for
// plan and diff output: string fields tagged `secret:"true"` and annotation
// values whose key contains secret, token, password or key. (SecretRefs hold
// only the names of environment variables and files, which are shown.)
func Mask(o *Object) *Object {
	if o == nil {
		return nil
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
