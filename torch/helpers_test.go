package torch_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/lvnet-go/lvnet/torch"
)

// f32 builds a float32 tensor in scope s from float64 values (convenient
// literals), failing the test on error.
func f32(t testing.TB, s *torch.Scope, data []float64, shape ...int64) *torch.Tensor {
	t.Helper()
	v := make([]float32, len(data))
	for i, x := range data {
		v[i] = float32(x)
	}
	x := torch.FromSlice(s, v, shape...)
	if err := x.Err(); err != nil {
		t.Fatalf("FromSlice %v: %v", shape, err)
	}
	return x
}

// f64 builds a float64 tensor in scope s.
func f64(t testing.TB, s *torch.Scope, data []float64, shape ...int64) *torch.Tensor {
	t.Helper()
	x := torch.FromSlice(s, data, shape...)
	if err := x.Err(); err != nil {
		t.Fatalf("FromSlice %v: %v", shape, err)
	}
	return x
}

// i64 builds an int64 tensor in scope s.
func i64(t testing.TB, s *torch.Scope, data []int64, shape ...int64) *torch.Tensor {
	t.Helper()
	x := torch.FromSlice(s, data, shape...)
	if err := x.Err(); err != nil {
		t.Fatalf("FromSlice %v: %v", shape, err)
	}
	return x
}

// values exports x as float64, failing the test if x carries an error.
func values(t testing.TB, x *torch.Tensor) []float64 {
	t.Helper()
	v, err := torch.Data[float64](x)
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	return v
}

// seq returns start, start+1, ..., start+n-1.
func seq(start float64, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = start + float64(i)
	}
	return v
}

// closeTo reports the first index where got and want differ by more than
// atol + rtol*|want|, or -1.
func closeTo(got, want []float64, atol, rtol float64) int {
	if len(got) != len(want) {
		return 0
	}
	for i := range got {
		if math.IsNaN(got[i]) != math.IsNaN(want[i]) || math.Abs(got[i]-want[i]) > atol+rtol*math.Abs(want[i]) {
			return i
		}
	}
	return -1
}

// expectClose fails the test when x's values (and shape, if given) differ from want.
func expectClose(t testing.TB, name string, x *torch.Tensor, want []float64, shape []int64, atol float64) {
	t.Helper()
	if err := x.Err(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if shape != nil && fmt.Sprint(x.Shape()) != fmt.Sprint(shape) {
		t.Fatalf("%s: shape %v, want %v", name, x.Shape(), shape)
	}
	got := values(t, x)
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", name, len(got), len(want))
	}
	if i := closeTo(got, want, atol, 1e-6); i >= 0 {
		t.Fatalf("%s: element %d = %.8g, want %.8g\ngot  %v\nwant %v", name, i, got[i], want[i], got, want)
	}
}

// randValues returns n pseudo-random values in [-1, 1) from a small LCG, so
// that test inputs are fixed without depending on libtorch's generator.
func randValues(seed uint64, n int) []float64 {
	v := make([]float64, n)
	x := seed*6364136223846793005 + 1442695040888963407
	for i := range v {
		x = x*6364136223846793005 + 1442695040888963407
		v[i] = float64(x>>11)/float64(1<<53)*2 - 1
	}
	return v
}
