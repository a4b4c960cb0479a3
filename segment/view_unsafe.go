// This file provides typed views of segment bytes: a *T or []T that aliases
// shared memory, for fixed-layout types.
//
// Invariants the functions check before converting:
//   - the byte slice is at least unsafe.Sizeof(T) bytes (or n*Sizeof for a
//     slice view) long, so the view never reaches past the mapping;
//   - its first byte is aligned to unsafe.Alignof(T);
//   - T holds no pointers, strings, slices, maps, channels, funcs or
//     interfaces (checked once per type with reflect and cached): a Go
//     pointer stored in shared memory is invisible to the garbage collector
//     and meaningless in another process.
//
// Ownership: the view aliases memory owned by the segment (and, for pool
// chunks, by whoever holds the chunk). It is valid only while the segment
// stays mapped and the chunk stays held; callers document that lease.

package segment

import (
	"fmt"
	"reflect"
	"sync"
	"unsafe"
)

// ErrNotFixedLayout reports a type that cannot live in shared memory.
var ErrNotFixedLayout = fmt.Errorf("type is not fixed-layout (holds pointers)")

var fixedCache sync.Map // reflect.Type -> error

// CheckFixedLayout reports whether values of type T can be placed in shared
// memory: no pointers of any kind, directly or in nested fields.
func CheckFixedLayout[T any]() error {
	t := reflect.TypeFor[T]()
	if v, ok := fixedCache.Load(t); ok {
		if v == nil {
			return nil
		}
		return v.(error)
	}
	var err error
	if bad := pointerPath(t, t.String()); bad != "" {
		err = fmt.Errorf("%s: %s: %w", t, bad, ErrNotFixedLayout)
	}
	if err == nil {
		fixedCache.Store(t, nil)
	} else {
		fixedCache.Store(t, err)
	}
	return err
}

func pointerPath(t reflect.Type, path string) string {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return ""
	case reflect.Array:
		return pointerPath(t.Elem(), path+"[i]")
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if p := pointerPath(f.Type, path+"."+f.Name); p != "" {
				return p
			}
		}
		return ""
	}
	return fmt.Sprintf("%s has kind %s", path, t.Kind())
}

// View returns a *T aliasing the start of b. It fails when T is not
// fixed-layout, b is too short or misaligned.
func View[T any](b []byte) (*T, error) {
	if err := CheckFixedLayout[T](); err != nil {
		return nil, err
	}
	var zero T
	size, align := unsafe.Sizeof(zero), unsafe.Alignof(zero)
	if uintptr(len(b)) < size {
		return nil, fmt.Errorf("view %T over %d bytes: need %d", zero, len(b), size)
	}
	if size == 0 {
		return &zero, nil
	}
	p := unsafe.Pointer(unsafe.SliceData(b))
	if uintptr(p)%align != 0 {
		return nil, fmt.Errorf("view %T: address %p not aligned to %d", zero, p, align)
	}
	return (*T)(p), nil
}

// SizeOf returns unsafe.Sizeof of a T, and its alignment.
func SizeOf[T any]() (size, align uintptr) {
	var zero T
	return unsafe.Sizeof(zero), unsafe.Alignof(zero)
}
