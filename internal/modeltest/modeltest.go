// Package modeltest is test support for the packages that build LVNet
// models, kept apart from the product as GoMLX's graphtest: the paper's
// network made small, models holding the golden deterministic weights, the
// authors' key list and golden arrays from ../shared (tests that use those
// skip without it), and comparisons of float results. Only tests import it.
package modeltest

import (
	"math"
	"testing"

	"github.com/lvnet-go/lvnet/internal/shared"
	"github.com/lvnet-go/lvnet/model"
	"github.com/lvnet-go/lvnet/torch"
	"github.com/lvnet-go/lvnet/weights"
)

// SmallConfig is the paper's network at 64 pixels and a quarter of the
// channels: every module, fast enough for tests.
func SmallConfig() model.Config {
	c := model.Paper()
	c.ImageSize, c.Width = 64, 0.25
	return c
}

// PaperSupervised is the authors' supervised network: the paper's
// configuration without the SSPSL head.
func PaperSupervised() model.Config {
	c := model.Paper()
	c.SSPSL = false
	return c
}

// Deterministic builds a model of cfg whose every tensor (running statistics
// and counters included) holds the golden deterministic values
// (weights.DeterministicStateDict over the model's own keys; no ../shared
// needed). It is freed when the test ends; freeing it earlier is fine.
func Deterministic(tb testing.TB, cfg model.Config) *model.LVNet {
	tb.Helper()
	m := build(tb, cfg)
	sd, err := weights.DeterministicStateDict(m.KeyShapes())
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := m.SetState(sd); err != nil {
		tb.Fatal(err)
	}
	return m
}

// AuthorsKeys returns the authors' state-dict keys, shapes and dtypes
// (../shared/golden/state_dict_keys.json; the test skips without it).
func AuthorsKeys(tb testing.TB) []weights.KeyShape {
	tb.Helper()
	keys, err := weights.LoadKeyList(shared.Path(tb, "golden", "state_dict_keys.json"))
	if err != nil {
		tb.Fatal(err)
	}
	return keys
}

// Golden builds a model of cfg (the authors' layout, e.g. PaperSupervised)
// holding the golden deterministic weights of the authors' key list, as the
// golden outputs in ../shared were computed (the test skips without it). The
// SRM filters keep the model's fixed values. It is freed when the test ends;
// freeing it earlier is fine.
func Golden(tb testing.TB, cfg model.Config) *model.LVNet {
	tb.Helper()
	sd, err := weights.DeterministicStateDict(AuthorsKeys(tb))
	if err != nil {
		tb.Fatal(err)
	}
	m := build(tb, cfg)
	rep, err := m.SetState(sd)
	if err != nil {
		tb.Fatal(err)
	}
	// srm_conv0.kernel keeps the model's fixed filters; nothing else is missing.
	if len(rep.Missing) != 1 || rep.Missing[0] != "srm_conv0.kernel" {
		tb.Fatalf("unexpected missing keys: %v", rep.Missing)
	}
	return m
}

func build(tb testing.TB, cfg model.Config) *model.LVNet {
	m, err := model.New(cfg, 1)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(m.Free)
	return m
}

// Npy reads the golden array ../shared/golden/name into a CPU tensor of
// scope s (float types become float32, integer types int64); the test skips
// without ../shared.
func Npy(tb testing.TB, s *torch.Scope, name string) *torch.Tensor {
	tb.Helper()
	a, err := weights.ReadNpy(shared.Path(tb, "golden", name))
	if err != nil {
		tb.Fatal(err)
	}
	x, err := model.ArrayTensor(s, a)
	if err != nil {
		tb.Fatal(err)
	}
	return x
}

// Values returns x's elements as float32, failing the test on an error.
func Values(tb testing.TB, x *torch.Tensor) []float32 {
	tb.Helper()
	v, err := x.Float32s()
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// RelErr returns max|got-want| / max|want|: the error relative to the scale
// of the reference (+Inf for different lengths, the absolute error for an
// all-zero reference).
func RelErr(got, want []float32) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	var d, scale float64
	for i := range want {
		d = math.Max(d, math.Abs(float64(got[i])-float64(want[i])))
		scale = math.Max(scale, math.Abs(float64(want[i])))
	}
	if scale == 0 {
		return d
	}
	return d / scale
}
