package weights

import (
	"encoding/binary"
	"math"
	"slices"
	"strings"
	"testing"
)

func TestFloat32s(t *testing.T) {
	le := binary.LittleEndian
	u16 := func(v ...uint16) []byte {
		b := make([]byte, 2*len(v))
		for i, x := range v {
			le.PutUint16(b[2*i:], x)
		}
		return b
	}
	f64 := make([]byte, 16)
	le.PutUint64(f64, math.Float64bits(0.1))
	le.PutUint64(f64[8:], math.Float64bits(-2.5))
	i64 := FromInt64([]int64{2}, []int64{-7, 1 << 40}).Data
	i32 := make([]byte, 8)
	le.PutUint32(i32, uint32(0xfffffffd)) // -3
	le.PutUint32(i32[4:], 5)
	tests := []struct {
		name string
		a    Array
		want []float32
	}{
		{"F32", FromFloat32([]int64{3}, []float32{1, -2.5, 3e-8}), []float32{1, -2.5, 3e-8}},
		{"F64", Array{F64, []int64{2}, f64}, []float32{0.1, -2.5}},
		// 0x3c00 = 1, 0xc000 = -2, 0x0001 = 2^-24 (smallest subnormal),
		// 0x3555 = 0.333251953125, 0x7bff = 65504 (largest normal), 0x8000 = -0.
		{"F16", Array{F16, []int64{6}, u16(0x3c00, 0xc000, 0x0001, 0x3555, 0x7bff, 0x8000)},
			[]float32{1, -2, 1.0 / (1 << 24), 0.333251953125, 65504, float32(math.Copysign(0, -1))}},
		{"BF16", Array{BF16, []int64{2}, u16(0x3f80, 0xc040)}, []float32{1, -3}},
		{"I64", Array{I64, []int64{2}, i64}, []float32{-7, 1 << 40}},
		{"I32", Array{I32, []int64{2}, i32}, []float32{-3, 5}},
		{"U8", Array{U8, []int64{2}, []byte{0, 255}}, []float32{0, 255}},
		{"BOOL", Array{BOOL, []int64{1, 2}, []byte{1, 0}}, []float32{1, 0}},
		{"scalar", FromFloat32(nil, []float32{4}), []float32{4}},
		{"empty", FromFloat32([]int64{0, 3}, nil), []float32{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.a.Float32s()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got { // distinguish -0 from 0
				if math.Signbit(float64(got[i])) != math.Signbit(float64(tt.want[i])) {
					t.Fatalf("element %d: sign of %v, want %v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestHalfSpecials(t *testing.T) {
	if v := halfToFloat32(0x7c00); !math.IsInf(float64(v), 1) {
		t.Errorf("0x7c00 = %v, want +Inf", v)
	}
	if v := halfToFloat32(0xfc00); !math.IsInf(float64(v), -1) {
		t.Errorf("0xfc00 = %v, want -Inf", v)
	}
	if v := halfToFloat32(0x7e00); !math.IsNaN(float64(v)) {
		t.Errorf("0x7e00 = %v, want NaN", v)
	}
	if v := halfToFloat32(0x03ff); v != 1023.0/(1<<24) { // largest subnormal
		t.Errorf("0x03ff = %v", v)
	}
}

func TestArrayValidate(t *testing.T) {
	tests := []struct {
		name, want string
		a          Array
	}{
		{"unknown dtype", "unknown dtype", Array{"F8", []int64{1}, []byte{0}}},
		{"short data", "needs 8 bytes, have 4", Array{F32, []int64{2}, make([]byte, 4)}},
		{"long data", "needs 4 bytes, have 8", Array{F32, nil, make([]byte, 8)}},
		{"negative dim", "invalid shape", Array{U8, []int64{2, -1}, nil}},
		{"overflow", "invalid shape", Array{U8, []int64{1 << 40, 1 << 40}, nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.a.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want error containing %q", err, tt.want)
			}
			if _, err := tt.a.Float32s(); err == nil {
				t.Fatal("Float32s accepted an invalid array")
			}
		})
	}
}

func TestNumel(t *testing.T) {
	tests := []struct {
		shape []int64
		want  int64
	}{
		{nil, 1}, {[]int64{}, 1}, {[]int64{0}, 0}, {[]int64{2, 3, 4}, 24}, {[]int64{3, -1}, -1},
	}
	for _, tt := range tests {
		if got := (Array{Shape: tt.shape}).Numel(); got != tt.want {
			t.Errorf("Numel(%v) = %d, want %d", tt.shape, got, tt.want)
		}
	}
}

func TestInt64s(t *testing.T) {
	a := FromInt64([]int64{3}, []int64{-1, 0, math.MaxInt64})
	got, err := a.Int64s()
	if err != nil || !slices.Equal(got, []int64{-1, 0, math.MaxInt64}) {
		t.Fatalf("Int64s() = %v, %v", got, err)
	}
	if got, err := (Array{U8, []int64{2}, []byte{7, 200}}).Int64s(); err != nil || !slices.Equal(got, []int64{7, 200}) {
		t.Fatalf("U8 Int64s() = %v, %v", got, err)
	}
	if _, err := FromFloat32([]int64{1}, []float32{1}).Int64s(); err == nil {
		t.Fatal("Int64s accepted F32")
	}
}
