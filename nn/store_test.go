package nn_test

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/lvnet-go/lvnet/nn"
	"github.com/lvnet-go/lvnet/torch"
)

func TestPathNames(t *testing.T) {
	st := nn.NewStore(1)
	defer st.Free()
	root := st.Root()
	tests := []struct {
		path nn.Path
		name string
		want string
	}{
		{root, "w", "w"},
		{root.Sub("a"), "w", "a.w"},
		{root.Sub("a").Sub("b"), "bias", "a.b.bias"},
		{root.Subf("block%d", 3).Sub("rep").Subf("%d", 0), "weight", "block3.rep.0.weight"},
	}
	for _, tc := range tests {
		if got := tc.path.Name(tc.name); got != tc.want {
			t.Errorf("Name(%q) = %q, want %q", tc.name, got, tc.want)
		}
		if tc.path.Store() != st {
			t.Errorf("%s: path of another store", tc.want)
		}
	}
}

func TestHasPrefix(t *testing.T) {
	tests := []struct {
		name, prefix string
		want         bool
	}{
		{"a.b.weight", "a", true},
		{"a.b.weight", "a.b", true},
		{"a.b", "a.b", true},
		{"ab.weight", "a", false},
		{"a.bc.weight", "a.b", false},
		{"a", "a.b", false},
	}
	for _, tc := range tests {
		if got := nn.HasPrefix(tc.name, tc.prefix); got != tc.want {
			t.Errorf("HasPrefix(%q, %q) = %v, want %v", tc.name, tc.prefix, got, tc.want)
		}
	}
}

// A store keeps its tensors in registration order, by name, with their kind
// and whether weight decay applies (trained tensors of 2+ dimensions).
func TestStoreEntries(t *testing.T) {
	st := nn.NewStore(1)
	defer st.Free()
	p := st.Root().Sub("m")
	nn.NewConv2d(p.Sub("conv"), 2, 4, 3, torch.Conv{}, true)
	nn.NewBatchNorm2d(p.Sub("bn"), 4)
	nn.NewLinear(p.Sub("fc"), 4, 2)
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name  string
		shape []int64
		kind  nn.Kind
		decay bool
		dtype torch.DType
	}{
		{"m.conv.weight", []int64{4, 2, 3, 3}, nn.Param, true, torch.Float32},
		{"m.conv.bias", []int64{4}, nn.Param, false, torch.Float32},
		{"m.bn.weight", []int64{4}, nn.Param, false, torch.Float32},
		{"m.bn.bias", []int64{4}, nn.Param, false, torch.Float32},
		{"m.bn.running_mean", []int64{4}, nn.Buffer, false, torch.Float32},
		{"m.bn.running_var", []int64{4}, nn.Buffer, false, torch.Float32},
		{"m.bn.num_batches_tracked", []int64{}, nn.Buffer, false, torch.Int64},
		{"m.fc.weight", []int64{2, 4}, nn.Param, true, torch.Float32},
		{"m.fc.bias", []int64{2}, nn.Param, false, torch.Float32},
	}
	es := st.Entries()
	if len(es) != len(want) {
		t.Fatalf("%d entries, want %d", len(es), len(want))
	}
	var params []string
	for i, w := range want {
		e := es[i]
		if e.Name != w.name || !slices.Equal(e.T.Shape(), w.shape) || e.Kind != w.kind || e.Decay != w.decay || e.T.DType() != w.dtype {
			t.Errorf("entry %d: %s %v kind %v decay %v %v, want %s %v kind %v decay %v %v",
				i, e.Name, e.T.Shape(), e.Kind, e.Decay, e.T.DType(), w.name, w.shape, w.kind, w.decay, w.dtype)
		}
		if st.Get(w.name) != e {
			t.Errorf("Get(%q) is not entry %d", w.name, i)
		}
		if w.kind == nn.Param {
			params = append(params, w.name)
		}
	}
	var got []string
	for _, e := range st.Params() {
		got = append(got, e.Name)
	}
	if !slices.Equal(got, params) {
		t.Errorf("Params %v, want %v", got, params)
	}
	if st.Get("m.nothing") != nil {
		t.Error("Get of an unknown name returned an entry")
	}
}

func TestStoreDuplicateName(t *testing.T) {
	st := nn.NewStore(1)
	defer st.Free()
	nn.NewLinear(st.Root().Sub("fc"), 2, 2)
	nn.NewLinear(st.Root().Sub("fc"), 2, 2)
	if err := st.Err(); err == nil || !strings.Contains(err.Error(), "duplicate tensor name fc.weight") {
		t.Errorf("error %v, want a duplicate fc.weight", err)
	}
}

// Initialisers fill as PyTorch does: constants, an int64 counter, and
// uniform draws within the bound (KaimingUniform: 1/sqrt(fan_in)) that the
// seed reproduces.
func TestInit(t *testing.T) {
	draw := func(seed uint64, init nn.Init) []float32 {
		st := nn.NewStore(seed)
		defer st.Free()
		_, v := values(t, st.Root().Param("w", init, 1000))
		return v
	}
	tests := []struct {
		name   string
		init   nn.Init
		lo, hi float64
	}{
		{"const", nn.Const(0.5), 0.5, 0.5},
		{"uniform", nn.Uniform(2), -2, 2},
		{"kaiming fan-in 16", nn.KaimingUniform(16), -0.25, 0.25},
	}
	for _, tc := range tests {
		v := draw(7, tc.init)
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, x := range v {
			lo, hi = math.Min(lo, float64(x)), math.Max(hi, float64(x))
		}
		if lo < tc.lo || hi > tc.hi || (tc.lo < tc.hi && (hi-lo) < 0.9*(tc.hi-tc.lo)) {
			t.Errorf("%s: values in [%g, %g], want filling [%g, %g]", tc.name, lo, hi, tc.lo, tc.hi)
		}
		if !slices.Equal(v, draw(7, tc.init)) {
			t.Errorf("%s: the same seed drew different values", tc.name)
		}
	}
	if slices.Equal(draw(7, nn.Uniform(1)), draw(8, nn.Uniform(1))) {
		t.Error("different seeds drew the same values")
	}
	st := nn.NewStore(1)
	defer st.Free()
	c := st.Root().Buffer("n", nn.Counter())
	if n, err := c.Int64s(); err != nil || c.DType() != torch.Int64 || len(c.Shape()) != 0 || !slices.Equal(n, []int64{0}) {
		t.Errorf("counter %v %v %v (%v), want a 0-d int64 0", c.DType(), c.Shape(), n, err)
	}
}

// To converts floating tensors in place (layers keep their pointers),
// leaves integer buffers' type alone and keeps parameters trainable.
func TestStoreTo(t *testing.T) {
	st := nn.NewStore(1)
	defer st.Free()
	bn := nn.NewBatchNorm2d(st.Root().Sub("bn"), 3)
	if err := st.To(torch.Float64, torch.CPU); err != nil {
		t.Fatal(err)
	}
	for _, e := range st.Entries() {
		want := torch.Float64
		if e.Name == "bn.num_batches_tracked" {
			want = torch.Int64
		}
		if e.T.DType() != want {
			t.Errorf("%s: %v, want %v", e.Name, e.T.DType(), want)
		}
		if e.T.RequiresGrad() != (e.Kind == nn.Param) {
			t.Errorf("%s: requires grad %v", e.Name, e.T.RequiresGrad())
		}
	}
	if bn.W != st.Get("bn.weight").T || bn.W.DType() != torch.Float64 {
		t.Error("the layer does not see the converted tensor")
	}
	if v, err := bn.RunningVar.Float64s(); err != nil || !slices.Equal(v, []float64{1, 1, 1}) {
		t.Errorf("running_var after To: %v (%v)", v, err)
	}
}
