package torch_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/lvnet-go/lvnet/torch"
)

func roundTrip[T torch.Elem](t *testing.T, s *torch.Scope, want torch.DType, data []T, shape ...int64) {
	t.Helper()
	x := torch.FromSlice(s, data, shape...)
	if err := x.Err(); err != nil {
		t.Fatalf("FromSlice: %v", err)
	}
	if x.DType() != want {
		t.Errorf("DType = %v, want %v", x.DType(), want)
	}
	if !slices.Equal(x.Shape(), shape) {
		t.Errorf("Shape = %v, want %v", x.Shape(), shape)
	}
	if x.Dim() != len(shape) {
		t.Errorf("Dim = %d, want %d", x.Dim(), len(shape))
	}
	if x.Numel() != int64(len(data)) {
		t.Errorf("Numel = %d, want %d", x.Numel(), len(data))
	}
	if x.Device() != torch.CPU {
		t.Errorf("Device = %v, want cpu", x.Device())
	}
	if !x.IsContiguous() {
		t.Error("a new tensor is not contiguous")
	}
	got, err := torch.Data[T](x)
	if err != nil {
		t.Fatalf("Data: %v", err)
	}
	if !slices.Equal(got, data) {
		t.Errorf("round trip = %v, want %v", got, data)
	}
}

func TestCreateExportRoundTrip(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	t.Run("float32", func(t *testing.T) { roundTrip(t, s, torch.Float32, []float32{1.5, -2, 3.25, 1e-7, 65504, -0}, 2, 3) })
	t.Run("float64", func(t *testing.T) { roundTrip(t, s, torch.Float64, []float64{1e300, -1e-300, 0.1, 2}, 2, 1, 2) })
	t.Run("int64", func(t *testing.T) { roundTrip(t, s, torch.Int64, []int64{1 << 62, -5, 0, 7}, 4) })
	t.Run("uint8", func(t *testing.T) { roundTrip(t, s, torch.Uint8, []uint8{0, 255, 128, 1, 2, 3}, 3, 2) })
	t.Run("bool", func(t *testing.T) { roundTrip(t, s, torch.Bool, []bool{true, false, false, true}, 2, 2) })
	t.Run("empty", func(t *testing.T) { roundTrip(t, s, torch.Float32, []float32{}, 0, 3) })
}

func TestScalarShape(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	x := torch.FromSlice(s, []float64{2.5})
	y := torch.Scalar(s, 3)
	if y.Dim() != 0 || len(y.Shape()) != 0 || y.Numel() != 1 {
		t.Errorf("Scalar: dim %d shape %v numel %d, want 0-D with one element", y.Dim(), y.Shape(), y.Numel())
	}
	v, err := x.Mul(y.ToDType(torch.Float64)).Item()
	if err != nil || v != 7.5 {
		t.Errorf("Item = %v, %v; want 7.5", v, err)
	}
	if _, err := torch.Zeros(s, 2).Item(); err == nil {
		t.Error("Item of a 2-element tensor: no error")
	}
}

func TestConversions(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	x := f32(t, s, []float64{-1.7, -0.5, 0.5, 2.5, 3.9}, 5)
	tests := []struct {
		dt   torch.DType
		want []float64
	}{
		{torch.Float64, []float64{float64(float32(-1.7)), -0.5, 0.5, 2.5, float64(float32(3.9))}},
		{torch.Int64, []float64{-1, 0, 0, 2, 3}}, // truncation toward zero
		{torch.Bool, []float64{1, 1, 1, 1, 1}},
		{torch.Int32, []float64{-1, 0, 0, 2, 3}},
	}
	for _, tc := range tests {
		y := x.ToDType(tc.dt)
		if y.DType() != tc.dt {
			t.Errorf("ToDType(%v).DType() = %v", tc.dt, y.DType())
		}
		expectClose(t, "to "+tc.dt.String(), y, tc.want, []int64{5}, 0)
	}
	// Export converts types on the way out.
	ints, err := x.Int64s()
	if err != nil || !slices.Equal(ints, []int64{-1, 0, 0, 2, 3}) {
		t.Errorf("Int64s = %v, %v", ints, err)
	}
}

func TestFullArangeZerosLike(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	expectClose(t, "full", torch.Full(s, 2.5, torch.Float64, torch.CPU, 2, 2), []float64{2.5, 2.5, 2.5, 2.5}, []int64{2, 2}, 0)
	expectClose(t, "ones", torch.Ones(s, 3), []float64{1, 1, 1}, []int64{3}, 0)
	expectClose(t, "arange", torch.Arange(s, 1, 2.2, 0.25, torch.Float64), []float64{1, 1.25, 1.5, 1.75, 2}, []int64{5}, 0)
	a := torch.Arange(s, 0, 6, 1, torch.Int64).Reshape(2, 3)
	z := a.ZerosLike()
	if z.DType() != torch.Int64 || !slices.Equal(z.Shape(), []int64{2, 3}) {
		t.Errorf("ZerosLike = %v", z)
	}
	expectClose(t, "zeros_like", z, make([]float64, 6), nil, 0)
}

func TestShapeOps(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	x := f32(t, s, seq(0, 6), 2, 3) // [[0 1 2] [3 4 5]]

	tr := x.Transpose(0, 1)
	if tr.IsContiguous() {
		t.Error("transpose is contiguous; want a strided view")
	}
	expectClose(t, "transpose", tr, []float64{0, 3, 1, 4, 2, 5}, []int64{3, 2}, 0)
	c := tr.Contiguous()
	if !c.IsContiguous() {
		t.Error("Contiguous() result is not contiguous")
	}
	expectClose(t, "contiguous", c, []float64{0, 3, 1, 4, 2, 5}, []int64{3, 2}, 0)
	expectClose(t, "reshape -1", x.Reshape(3, -1), seq(0, 6), []int64{3, 2}, 0)

	y := f32(t, s, seq(0, 24), 2, 3, 4)
	p := y.Permute(2, 0, 1) // p[k][i][j] = y[i][j][k] = 12i + 4j + k
	var want []float64
	for k := 0; k < 4; k++ {
		for i := 0; i < 2; i++ {
			for j := 0; j < 3; j++ {
				want = append(want, float64(12*i+4*j+k))
			}
		}
	}
	expectClose(t, "permute", p, want, []int64{4, 2, 3}, 0)
	expectClose(t, "flatten", y.Flatten(1, 2), seq(0, 24), []int64{2, 12}, 0)
	expectClose(t, "unsqueeze", x.Unsqueeze(1), seq(0, 6), []int64{2, 1, 3}, 0)
	expectClose(t, "squeeze", x.Unsqueeze(0).Squeeze(0), seq(0, 6), []int64{2, 3}, 0)
	expectClose(t, "narrow", x.Narrow(1, 1, 2), []float64{1, 2, 4, 5}, []int64{2, 2}, 0)
	expectClose(t, "expand", f32(t, s, []float64{1, 2}, 2, 1).Expand(2, 3), []float64{1, 1, 1, 2, 2, 2}, []int64{2, 3}, 0)
	expectClose(t, "flip", x.Flip(1), []float64{2, 1, 0, 5, 4, 3}, []int64{2, 3}, 0)
	expectClose(t, "repeat", f32(t, s, []float64{1, 2}, 2).Repeat(2, 2), []float64{1, 2, 1, 2, 1, 2, 1, 2}, []int64{2, 4}, 0)

	// cat / stack / split
	a := f32(t, s, []float64{1, 2}, 1, 2)
	b := f32(t, s, []float64{3, 4, 5, 6}, 2, 2)
	expectClose(t, "cat 0", torch.Cat(0, a, b), []float64{1, 2, 3, 4, 5, 6}, []int64{3, 2}, 0)
	expectClose(t, "cat 1", torch.Cat(1, b, b), []float64{3, 4, 3, 4, 5, 6, 5, 6}, []int64{2, 4}, 0)
	expectClose(t, "stack", torch.Stack(0, a, a), []float64{1, 2, 1, 2}, []int64{2, 1, 2}, 0)
	parts := x.Split(1, 1, 2)
	if len(parts) != 2 {
		t.Fatalf("split: %d parts, want 2", len(parts))
	}
	expectClose(t, "split 0", parts[0], []float64{0, 3}, []int64{2, 1}, 0)
	expectClose(t, "split 1", parts[1], []float64{1, 2, 4, 5}, []int64{2, 2}, 0)
	if err := x.Split(1, 1, 1)[0].Err(); err == nil {
		t.Error("split sizes 1+1 of a dimension of 3: no error")
	}

	// indexing
	idx := i64(t, s, []int64{2, 0}, 2)
	expectClose(t, "index_select", x.IndexSelect(1, idx), []float64{2, 0, 5, 3}, []int64{2, 2}, 0)
	gi := i64(t, s, []int64{1, 1, 0, 2}, 2, 2)
	expectClose(t, "gather", x.Gather(1, gi), []float64{1, 1, 3, 5}, []int64{2, 2}, 0)

	// repeat_interleave
	expectClose(t, "repeat_interleave 1-D", f32(t, s, []float64{1, 2, 3}, 3).RepeatInterleave(2, 0),
		[]float64{1, 1, 2, 2, 3, 3}, []int64{6}, 0)
	expectClose(t, "repeat_interleave dim 0", x.RepeatInterleave(2, 0),
		[]float64{0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5}, []int64{4, 3}, 0)
	expectClose(t, "repeat_interleave dim 1", x.RepeatInterleave(2, 1),
		[]float64{0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5}, []int64{2, 6}, 0)
}

func TestViewsShareStorage(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	x := f32(t, s, seq(0, 4), 4)
	v := x.Reshape(2, 2)
	if err := x.Fill(7); err != nil {
		t.Fatal(err)
	}
	expectClose(t, "view after fill", v, []float64{7, 7, 7, 7}, nil, 0)
	c := x.Clone()
	if err := x.Fill(1); err != nil {
		t.Fatal(err)
	}
	expectClose(t, "clone after fill", c, []float64{7, 7, 7, 7}, nil, 0)
	a := x.Alias()
	if !a.SameTensor(x) || c.SameTensor(x) {
		t.Errorf("SameTensor: alias %v (want true), clone %v (want false)", a.SameTensor(x), c.SameTensor(x))
	}
	if err := c.CopyFrom(f32(t, s, []float64{9}, 1)); err != nil { // broadcast copy
		t.Fatal(err)
	}
	expectClose(t, "copy_ broadcast", c, []float64{9, 9, 9, 9}, nil, 0)
}

func TestChannelsLast(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	x := f32(t, s, seq(0, 24), 1, 2, 3, 4)
	if x.IsChannelsLast() {
		t.Error("a fresh NCHW tensor (C=2) reports channels-last")
	}
	cl := x.ChannelsLast()
	if !cl.IsChannelsLast() {
		t.Error("ChannelsLast() result is not channels-last")
	}
	// Same logical values, different memory layout.
	expectClose(t, "channels_last values", cl, seq(0, 24), []int64{1, 2, 3, 4}, 0)
}

func TestScopeOwnership(t *testing.T) {
	s := torch.NewScope()
	x := torch.Zeros(s, 2)
	y := x.AddScalar(1)     // joins x's scope
	z := torch.Ones(nil, 2) // no scope
	w := z.Add(x)           // first operand without scope, second with: joins s
	k := y.MulScalar(2).Keep()
	if y.Scope() != s || w.Scope() != s || z.Scope() != nil || k.Scope() != nil {
		t.Errorf("scopes: y %p w %p z %p k %p, scope %p", y.Scope(), w.Scope(), z.Scope(), k.Scope(), s)
	}
	if n := s.Len(); n != 3 {
		t.Errorf("scope holds %d tensors, want 3 (x, y, w)", n)
	}
	s.Close()
	for name, v := range map[string]*torch.Tensor{"x": x, "y": y, "w": w} {
		if v.Err() == nil {
			t.Errorf("%s usable after its scope closed", name)
		}
	}
	expectClose(t, "kept", k, []float64{2, 2}, nil, 0)
	expectClose(t, "unscoped", z, []float64{1, 1}, nil, 0)
	s2 := torch.NewScope()
	k.In(s2)
	if s2.Len() != 1 || k.Scope() != s2 {
		t.Errorf("In: scope len %d", s2.Len())
	}
	s2.Close()
	if k.Err() == nil {
		t.Error("tensor moved into a closed scope is still usable")
	}
	z.Free()
	z.Free() // twice is fine
	if z.Err() == nil {
		t.Error("freed tensor reports no error")
	}
}

func TestString(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	got := torch.Zeros(s, 2, 3).String()
	if want := "Tensor([2 3], float32, cpu)"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	var n *torch.Tensor
	if got := fmt.Sprint(n.String()); got != "Tensor(error: torch: use: nil tensor)" {
		t.Errorf("nil String = %q", got)
	}
}

func TestParseDTypeDevice(t *testing.T) {
	dts := []struct {
		in   string
		want torch.DType
		ok   bool
	}{
		{"float32", torch.Float32, true}, {"fp32", torch.Float32, true}, {"BF16", torch.BFloat16, true},
		{"double", torch.Float64, true}, {"int64", torch.Int64, true}, {"complex", torch.Invalid, false},
	}
	for _, tc := range dts {
		got, err := torch.ParseDType(tc.in)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("ParseDType(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
	devs := []struct {
		in   string
		want torch.Device
		ok   bool
	}{
		{"cpu", torch.CPU, true}, {"", torch.CPU, true}, {"cuda", torch.CUDA(0), true},
		{"cuda:1", torch.CUDA(1), true}, {"cuda:-1", torch.CPU, false}, {"tpu", torch.CPU, false},
	}
	for _, tc := range devs {
		got, err := torch.ParseDevice(tc.in)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("ParseDevice(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
	if torch.CUDA(2).String() != "cuda:2" || torch.CPU.String() != "cpu" {
		t.Error("Device.String")
	}
}

func TestDataLeavesScopeAlone(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	x := f32(t, s, seq(0, 6), 2, 3)
	tr := x.Transpose(0, 1) // not contiguous: export converts
	n := s.Len()
	for i := 0; i < 3; i++ {
		if _, err := torch.Data[float64](tr); err != nil {
			t.Fatal(err)
		}
		if _, err := torch.Data[float32](tr); err != nil {
			t.Fatal(err)
		}
	}
	if s.Len() != n {
		t.Errorf("exporting added %d temporaries to the scope", s.Len()-n)
	}
	if err := tr.Err(); err != nil {
		t.Errorf("exported tensor unusable afterwards: %v", err)
	}
}
