package torch_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/lvnet-go/lvnet/torch"
)

// wantErr checks that x carries an error from op whose message contains each
// of the fragments.
func wantErr(t *testing.T, name string, err error, op string, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error", name)
		return
	}
	var te *torch.Error
	if !errors.As(err, &te) {
		t.Errorf("%s: error %T (%v), want *torch.Error", name, err, err)
		return
	}
	if op != "" && te.Op != op {
		t.Errorf("%s: error from op %q, want %q (%v)", name, te.Op, op, err)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("%s: error %q does not mention %q", name, err, f)
		}
	}
}

func TestLibtorchErrors(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	a := torch.Zeros(s, 2, 3)
	img := torch.Zeros(s, 1, 3, 8, 8)
	tests := []struct {
		name      string
		got       *torch.Tensor
		op        string
		fragments []string
	}{
		{"matmul shapes", a.Matmul(a), "matmul", []string{"2x3", "cannot be multiplied"}},
		{"add shapes", a.Add(torch.Zeros(s, 4)), "add", []string{"size of tensor a (3) must match", "(4)"}},
		{"conv channels", img.Conv2d(torch.Zeros(s, 4, 2, 3, 3), nil, torch.Conv{}), "conv2d", []string{"expected input", "channels"}},
		// libtorch 1.13 convolves int64 with int64; int64 input with float weights fails.
		{"conv int64 input", img.ToDType(torch.Int64).Conv2d(torch.Zeros(s, 4, 3, 3, 3), nil, torch.Conv{}), "conv2d", []string{"Long", "Float"}},
		{"batch norm int64", img.ToDType(torch.Int64).BatchNorm(nil, nil, nil, nil, true, 0.1, 1e-5), "batch_norm", []string{"not implemented for 'Long'"}},
		{"softmax int64", a.ToDType(torch.Int64).Softmax(1), "softmax", []string{"not implemented for 'Long'"}},
		{"mean int64", a.ToDType(torch.Int64).Mean(false), "mean", []string{"Long"}},
		{"where float condition", torch.Where(a, a, a), "where", []string{"boolean"}},
		{"conv mixed dtypes", img.Conv2d(torch.Zeros(s, 4, 3, 3, 3).ToDType(torch.Float64), nil, torch.Conv{}), "conv2d", []string{"type"}},
		{"conv groups", img.Conv2d(torch.Zeros(s, 4, 1, 3, 3), nil, torch.Conv{Groups: 2}), "conv2d", []string{"groups"}},
		{"reshape", a.Reshape(4, 2), "reshape", []string{"shape '[4, 2]' is invalid", "size 6"}},
		{"permute", a.Permute(0), "permute", []string{"number of dimensions"}},
		{"cat", torch.Cat(0, a, torch.Zeros(s, 2, 4)), "cat", []string{"Sizes of tensors must match"}},
		{"bmm 2-D", a.Bmm(a), "bmm", []string{"3D"}},
		{"cross entropy target", torch.CrossEntropy(a, torch.FromSlice(s, []int64{0, 7}), nil, torch.ReduceMean), "cross_entropy", []string{"out of bounds"}},
		{"cross entropy float target", torch.CrossEntropy(a, torch.Zeros(s, 3), nil, torch.ReduceMean), "cross_entropy", nil},
		{"max pool padding", img.MaxPool2d(torch.Sq(2), torch.Sq(2), torch.Sq(2), false), "max_pool2d", []string{"pad should be"}},
		{"squeeze dim", a.Squeeze(5), "squeeze", []string{"Dimension out of range"}},
		{"index_select float", a.IndexSelect(0, torch.Zeros(s, 1)), "index_select", nil},
		{"from_slice count", torch.FromSlice(s, []float32{1, 2, 3}, 2, 2), "from_slice", []string{"[2 2] holds 4 elements, data has 3"}},
		{"from_slice negative", torch.FromSlice(s, []float32{}, -1), "from_slice", []string{"negative"}},
		{"full negative", torch.Full(s, 0, torch.Float32, torch.CPU, -2), "full", []string{"negative"}},
	}
	for _, tc := range tests {
		wantErr(t, tc.name, tc.got.Err(), tc.op, tc.fragments...)
		if tc.got.Err() == nil {
			continue
		}
		// The error is sticky and keeps its origin through later operations.
		later := tc.got.Relu().Add(a).Sum(false)
		if later.Err() == nil || later.Err().Error() != tc.got.Err().Error() {
			t.Errorf("%s: later error %v, want the original %v", tc.name, later.Err(), tc.got.Err())
		}
	}
	// The process lives on and the engine still works.
	expectClose(t, "after errors", a.AddScalar(1).Sum(false), []float64{6}, nil, 0)
}

func TestErrorTensorExports(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	bad := torch.Zeros(s, 2, 3).Matmul(torch.Zeros(s, 2, 3))
	if _, err := torch.Data[float32](bad); err == nil {
		t.Error("Data on an error tensor: no error")
	}
	if _, err := bad.Float64s(); err == nil {
		t.Error("Float64s on an error tensor: no error")
	}
	if _, err := bad.Item(); err == nil {
		t.Error("Item on an error tensor: no error")
	}
	if bad.Shape() != nil || bad.Dim() != 0 || bad.Numel() != 0 || bad.DType() != torch.Invalid || bad.Size(0) != -1 {
		t.Errorf("metadata of an error tensor: shape %v dim %d numel %d dtype %v", bad.Shape(), bad.Dim(), bad.Numel(), bad.DType())
	}
	if bad.RequiresGrad() || bad.IsContiguous() {
		t.Error("error tensor reports requires_grad or contiguous")
	}
	if err := bad.Backward(); err == nil {
		t.Error("Backward on an error tensor: no error")
	}
	if err := bad.Fill(1); err == nil {
		t.Error("Fill on an error tensor: no error")
	}
	parts := bad.Split(0, 1, 1)
	if len(parts) != 2 || parts[0].Err() == nil || parts[1].Err() == nil {
		t.Errorf("Split of an error tensor: %v", parts)
	}
	v, i := bad.MaxDim(0, false)
	if v.Err() == nil || i.Err() == nil {
		t.Error("MaxDim of an error tensor: no error")
	}
	if !strings.Contains(bad.String(), "error") {
		t.Errorf("String of an error tensor = %q", bad.String())
	}
	bad.Free() // harmless
	// Errorf builds error tensors for layers built on this package.
	e := torch.Errorf("mylayer", "want %d channels, got %d", 3, 4)
	wantErr(t, "Errorf", e.Relu().Err(), "mylayer", "want 3 channels, got 4")
}

func TestFreedAndNilOperands(t *testing.T) {
	s := torch.NewScope()
	defer s.Close()
	a := torch.Ones(s, 2)
	freed := torch.Ones(nil, 2)
	freed.Free()
	var null *torch.Tensor
	var zero torch.Tensor
	tests := []struct {
		name string
		got  *torch.Tensor
		frag string
	}{
		{"freed receiver", freed.AddScalar(1), "freed"},
		{"freed operand", a.Add(freed), "freed"},
		{"freed in cat", torch.Cat(0, a, freed), "freed"},
		{"freed in where", torch.Where(a.GtScalar(0), freed, a), "freed"},
		{"freed weight", torch.Zeros(s, 1, 1, 2, 2).Conv2d(freed, nil, torch.Conv{}), "freed"},
		{"nil receiver", null.AddScalar(1), "nil tensor"},
		{"nil operand", a.Mul(null), "nil tensor"},
		{"nil in stack", torch.Stack(0, a, null), "nil tensor"},
		{"nil weight", a.Linear(null, nil), "nil tensor"},
		{"nil target", torch.CrossEntropy(torch.Zeros(s, 1, 2), null, nil, torch.ReduceMean), "nil tensor"},
		{"zero-value tensor", zero.Relu(), "freed"},
		{"cat of nothing", torch.Cat(0), "no tensors"},
	}
	for _, tc := range tests {
		wantErr(t, tc.name, tc.got.Err(), "", tc.frag)
	}
	if err := a.CopyFrom(freed); err == nil {
		t.Error("CopyFrom a freed tensor: no error")
	}
	if err := null.Backward(); err == nil {
		t.Error("Backward on nil: no error")
	}
	if g := null.Grad(); g.Err() == nil {
		t.Error("Grad of nil: no error")
	}
	if _, err := torch.Data[float32](null); err == nil {
		t.Error("Data of nil: no error")
	}
	null.Free()
	if null.Keep() != nil || null.In(s) != nil || null.Scope() != nil {
		t.Error("Keep/In/Scope on nil")
	}
	if err := torch.AdamStep([]*torch.Tensor{a}, []*torch.Tensor{freed}, []*torch.Tensor{a}, []int64{1}, []float64{0}, 0.1, 0.9, 0.999, 1e-8); err == nil {
		t.Error("AdamStep with a freed buffer: no error")
	}
	if err := torch.AdamStep([]*torch.Tensor{a}, nil, nil, nil, nil, 0.1, 0.9, 0.999, 1e-8); err == nil {
		t.Error("AdamStep with mismatched lengths: no error")
	}
}

func TestCUDAUnavailable(t *testing.T) {
	if torch.CUDAAvailable() {
		t.Skipf("CUDA is available here (%d devices): this test covers CPU-only builds", torch.CUDADeviceCount())
	}
	if n := torch.CUDADeviceCount(); n != 0 {
		t.Errorf("CUDADeviceCount = %d without CUDA", n)
	}
	s := torch.NewScope()
	defer s.Close()
	x := torch.Ones(s, 2)
	wantErr(t, "ToDevice(cuda:0)", x.ToDevice(torch.CUDA(0)).Err(), "to")
	wantErr(t, "Full on cuda:0", torch.Full(s, 1, torch.Float32, torch.CUDA(0), 2).Err(), "full")
	// still alive
	expectClose(t, "after CUDA errors", x.AddScalar(1), []float64{2, 2}, nil, 0)
	info, err := torch.RuntimeInfo()
	if err != nil {
		t.Fatal(err)
	}
	if info.CUDA || info.CUDADevices != 0 || info.TorchVersion == "" {
		t.Errorf("RuntimeInfo = %+v", info)
	}
}

// Errorf's %w wraps an error: the message includes it and Err unwraps to it.
func TestErrorfWraps(t *testing.T) {
	cause := errors.New("the cause")
	err := torch.Errorf("block", "input: %w", cause).Err()
	wantErr(t, "Errorf %w", err, "block", "input: the cause")
	if !errors.Is(err, cause) {
		t.Errorf("Errorf(%%w): %v does not unwrap to its cause", err)
	}
	if err := torch.Errorf("block", "plain %d", 3).Err(); errors.Unwrap(err) != nil || err.Error() != "torch: block: plain 3" {
		t.Errorf("Errorf without %%w: %v (cause %v)", err, errors.Unwrap(err))
	}
}
