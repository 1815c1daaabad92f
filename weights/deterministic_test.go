package weights

import (
	"bytes"
	"slices"
	"testing"

	"github.com/lvnet-go/lvnet/internal/shared"
)

func TestDeterministicHandComputed(t *testing.T) {
	// Expected values worked out independently from the README formula
	// (FNV-1a-32 of the key mod 10007 is given for each key).
	tests := []struct {
		key   string
		shape []int64
		want  []float32
	}{
		// fnv%10007 = 4720, phase 4.72: 1 + 0.2*sin(4.72 + 0.37i).
		{"bn.running_var", []int64{3}, []float32{0.800005794, 0.814090371, 0.85333693}},
		{"lfe0.gamma", []int64{1}, []float32{0.5}},
		// phase 0.742, 2-D or more: 1.5/sqrt(4/2) * sin(0.742 + 0.37i).
		{"conv.weight", []int64{2, 2, 1, 1}, []float32{0.71675545, 0.950973272, 1.05648136, 1.0189997}},
		// phase 7.304, 1-D weight: 1 + 0.1*sin(...).
		{"bn.weight", []int64{2}, []float32{1.08525336, 1.09838474}},
		// phase 5.314: 0.1*sin(...).
		{"fc.bias", []int64{2}, []float32{-0.0824424922, -0.0563969873}},
		{"bn.running_mean", []int64{2}, []float32{-0.0398779288, -0.00401744945}},
		{"x.bias", []int64{0}, []float32{}},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			if got := Deterministic(tt.key, tt.shape); !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
	if got := Deterministic("w", []int64{-1}); got != nil {
		t.Errorf("negative shape gave %v, want nil", got)
	}
}

// bnStat reports whether key is a BatchNorm running statistic, which the
// golden checkpoints hold after one training-mode forward pass.
func bnStat(key string) (module string, ok bool) {
	for _, s := range []string{".running_mean", ".running_var", ".num_batches_tracked"} {
		if m, ok := cutSuffix(key, s); ok {
			return m, true
		}
	}
	return "", false
}

func cutSuffix(s, suffix string) (string, bool) {
	if len(s) >= len(suffix) && s[len(s)-len(suffix):] == suffix {
		return s[:len(s)-len(suffix)], true
	}
	return s, false
}

// checkDeterministic compares the entries of sd with the rule: every
// parameter exactly, running statistics only where num_batches_tracked is
// still 0 (the golden files were saved after one training step, which
// updated the statistics of the modules it ran through). It returns the
// number of entries compared.
func checkDeterministic(t *testing.T, sd map[string]Array, ruleKey func(string) string) int {
	t.Helper()
	checked := 0
	for k, a := range sd {
		if m, ok := bnStat(k); ok {
			nbt, err := sd[m+".num_batches_tracked"].Int64s()
			if err != nil {
				t.Fatalf("%s: num_batches_tracked: %v", m, err)
			}
			if nbt[0] != 0 {
				continue
			}
			if _, isNBT := cutSuffix(k, ".num_batches_tracked"); isNBT {
				checked++
				continue
			}
		}
		got, err := a.Float32s()
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		want := Deterministic(ruleKey(k), a.Shape)
		if !slices.Equal(got, want) {
			t.Errorf("%s %v: values differ from the rule, first %v want %v", k, a.Shape, got[:min(4, len(got))], want[:min(4, len(want))])
		}
		checked++
	}
	return checked
}

func TestDeterministicStateDict(t *testing.T) {
	keys, err := LoadKeyList(shared.Path(t, "golden", "state_dict_keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	ckpt, _, err := ReadStateDict(shared.Path(t, "golden", "lvnet_partial_checkpoint.pth.tar"))
	if err != nil {
		t.Fatal(err)
	}
	ref := FromOfficial(ckpt)
	// The key-list entries the checkpoint holds, plus the SRM kernel.
	var subset []KeyShape
	for _, ks := range keys {
		if _, ok := ref[ks.Key]; ok || ks.Key == "srm_conv0.kernel" {
			subset = append(subset, ks)
		}
	}
	if len(subset) != len(ref)+1 {
		t.Fatalf("checkpoint has %d entries, %d of them in the key list", len(ref), len(subset)-1)
	}
	sd, err := DeterministicStateDict(subset)
	if err != nil {
		t.Fatal(err)
	}
	r := Check(subset, sd)
	if !slices.Equal(r.Missing, []string{"srm_conv0.kernel"}) || len(r.Unexpected) != 0 || len(r.Mismatched) != 0 {
		t.Fatalf("deterministic state dict vs key list: %s", r)
	}
	// Same bytes as PyTorch saved, except the running statistics the
	// training step updated.
	compared := 0
	for k, a := range sd {
		if m, ok := bnStat(k); ok {
			if n, _ := ref[m+".num_batches_tracked"].Int64s(); n[0] != 0 {
				continue
			}
		}
		if b := ref[k]; b.DType != a.DType || !slices.Equal(b.Shape, a.Shape) || !bytes.Equal(b.Data, a.Data) {
			t.Errorf("%s differs from the checkpoint", k)
		}
		compared++
	}
	if compared < len(sd)/2 {
		t.Errorf("compared only %d of %d entries", compared, len(sd))
	}
	if _, err := DeterministicStateDict([]KeyShape{{Key: "w", Shape: []int64{1}, DType: I64}}); err == nil {
		t.Error("accepted an I64 entry that the rule cannot fill")
	}
}
