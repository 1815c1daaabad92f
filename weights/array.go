// Package weights reads and writes model weights in the formats LVNet meets:
// safetensors (its native checkpoint format), PyTorch torch.save files (the
// authors' checkpoints and the ImageNet Xception file), and NumPy .npy
// arrays (golden test data). It also implements the deterministic weight
// rule of the golden data, and maps the authors' state-dict keys onto
// LVNet's key space.
//
// Everything here is pure Go: tensors are held as [Array] values (raw
// little-endian bytes plus dtype and shape) and handed to the compute engine
// by the caller.
package weights

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Element types of an [Array], named as in the safetensors format.
const (
	F32  = "F32"  // float32
	F64  = "F64"  // float64
	F16  = "F16"  // IEEE 754 half precision
	BF16 = "BF16" // bfloat16
	I64  = "I64"  // int64
	I32  = "I32"  // int32
	U8   = "U8"   // uint8
	BOOL = "BOOL" // bool, one byte per element (0 or 1)
)

// DTypeSize returns the size in bytes of one element of dtype, or 0 when
// dtype is not one of the element types above.
func DTypeSize(dtype string) int {
	switch dtype {
	case F64, I64:
		return 8
	case F32, I32:
		return 4
	case F16, BF16:
		return 2
	case U8, BOOL:
		return 1
	}
	return 0
}

// Array is an in-memory tensor: a row-major (C order) block of
// little-endian elements of type DType with dimensions Shape. A nil or empty
// Shape is a scalar holding one element.
type Array struct {
	DType string
	Shape []int64
	Data  []byte
}

// FromFloat32 returns an F32 array of the given shape holding data. The
// length of data must equal the product of shape.
func FromFloat32(shape []int64, data []float32) Array {
	b := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return Array{DType: F32, Shape: append([]int64(nil), shape...), Data: b}
}

// FromInt64 returns an I64 array of the given shape holding data. The
// length of data must equal the product of shape.
func FromInt64(shape []int64, data []int64) Array {
	b := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(v))
	}
	return Array{DType: I64, Shape: append([]int64(nil), shape...), Data: b}
}

// Numel returns the number of elements, the product of Shape (1 for a
// scalar). It returns -1 when a dimension is negative or the product
// overflows.
func (a Array) Numel() int64 {
	n, ok := numel(a.Shape)
	if !ok {
		return -1
	}
	return n
}

// numel multiplies the dimensions of shape, reporting false on a negative
// dimension or when the product (times 8 bytes) would overflow int64.
func numel(shape []int64) (int64, bool) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, false
		}
		if d != 0 && n > (math.MaxInt64/8)/d {
			return 0, false
		}
		n *= d
	}
	return n, true
}

// Validate reports whether the dtype is known, the shape valid and the data
// length matches the shape.
func (a Array) Validate() error {
	size := DTypeSize(a.DType)
	if size == 0 {
		return fmt.Errorf("unknown dtype %q", a.DType)
	}
	n, ok := numel(a.Shape)
	if !ok {
		return fmt.Errorf("invalid shape %v", a.Shape)
	}
	if int64(len(a.Data)) != n*int64(size) {
		return fmt.Errorf("shape %v of %s needs %d bytes, have %d", a.Shape, a.DType, n*int64(size), len(a.Data))
	}
	return nil
}

// Float32s returns the elements converted to float32 (F32, F64, F16, BF16,
// I64, I32, U8 and BOOL are accepted).
func (a Array) Float32s() ([]float32, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	size := DTypeSize(a.DType)
	out := make([]float32, len(a.Data)/size)
	le := binary.LittleEndian
	for i := range out {
		b := a.Data[i*size:]
		switch a.DType {
		case F32:
			out[i] = math.Float32frombits(le.Uint32(b))
		case F64:
			out[i] = float32(math.Float64frombits(le.Uint64(b)))
		case F16:
			out[i] = halfToFloat32(le.Uint16(b))
		case BF16:
			out[i] = math.Float32frombits(uint32(le.Uint16(b)) << 16)
		case I64:
			out[i] = float32(int64(le.Uint64(b)))
		case I32:
			out[i] = float32(int32(le.Uint32(b)))
		case U8, BOOL:
			out[i] = float32(b[0])
		}
	}
	return out, nil
}

// Int64s returns the elements of an integer or bool array (I64, I32, U8,
// BOOL) as int64.
func (a Array) Int64s() ([]int64, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	size := DTypeSize(a.DType)
	out := make([]int64, len(a.Data)/size)
	le := binary.LittleEndian
	for i := range out {
		b := a.Data[i*size:]
		switch a.DType {
		case I64:
			out[i] = int64(le.Uint64(b))
		case I32:
			out[i] = int64(int32(le.Uint32(b)))
		case U8, BOOL:
			out[i] = int64(b[0])
		default:
			return nil, fmt.Errorf("Int64s: %s is not an integer dtype", a.DType)
		}
	}
	return out, nil
}

// halfToFloat32 converts an IEEE 754 binary16 value to float32, exactly.
func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+127-15)<<23 | frac<<13)
	case frac == 0: // signed zero
		return math.Float32frombits(sign)
	}
	// Subnormal: value = frac * 2^-24.
	v := float32(frac) * (1.0 / (1 << 24))
	if sign != 0 {
		v = -v
	}
	return v
}
