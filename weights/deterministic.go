package weights

import (
	"fmt"
	"hash/fnv"
	"math"
	"strings"
)

// Deterministic returns the golden data's deterministic value of the
// state-dict entry key with the given shape (see the golden README): with
// phase = (FNV-1a-32(key) mod 10007) / 1000 and s_i = sin(0.37*i + phase)
// computed in float64 over the flat row-major index i, the value is
// 1 + 0.2*s_i for keys ending in "running_var", 0.5 for keys ending in
// "gamma", 1.5/sqrt(numel/shape[0])*s_i for tensors of two or more
// dimensions, 1 + 0.1*s_i for other keys ending in ".weight" and 0.1*s_i
// otherwise, cast to float32. It returns nil for an invalid shape.
//
// The rule covers every entry except num_batches_tracked (zero) and
// srm_conv0.kernel (the fixed SRM filters); see [DeterministicStateDict].
func Deterministic(key string, shape []int64) []float32 {
	n, ok := numel(shape)
	if !ok {
		return nil
	}
	h := fnv.New32a()
	h.Write([]byte(key))
	phase := float64(h.Sum32()%10007) / 1000
	out := make([]float32, n)
	if n == 0 {
		return out
	}
	// value = a + b*s_i; the case depends on the key and shape only.
	var a, b float64
	switch {
	case strings.HasSuffix(key, "running_var"):
		a, b = 1.0, 0.2
	case strings.HasSuffix(key, "gamma"):
		a, b = 0.5, 0
	case len(shape) >= 2:
		a, b = 0, 1.5/math.Sqrt(float64(n)/float64(shape[0]))
	case strings.HasSuffix(key, ".weight"):
		a, b = 1.0, 0.1
	default:
		a, b = 0, 0.1
	}
	for i := range out {
		if b == 0 {
			out[i] = float32(a)
			continue
		}
		// The explicit float64 conversions forbid fused multiply-adds, so
		// every operation rounds as in the reference (Python floats).
		x := float64(0.37*float64(i)) + phase
		out[i] = float32(a + float64(b*math.Sin(x)))
	}
	return out
}

// DeterministicStateDict fills a state dict with the golden deterministic
// weights for the given keys: entries ending in num_batches_tracked are
// zeros of their dtype, srm_conv0.kernel is left out (the model builds its
// fixed SRM filters itself), and every other entry, which must be F32,
// follows [Deterministic].
func DeterministicStateDict(keys []KeyShape) (map[string]Array, error) {
	out := make(map[string]Array, len(keys))
	for _, ks := range keys {
		switch {
		case ks.Key == "srm_conv0.kernel":
			continue
		case strings.HasSuffix(ks.Key, "num_batches_tracked"):
			n, ok := numel(ks.Shape)
			size := DTypeSize(ks.DType)
			if !ok || size == 0 {
				return nil, fmt.Errorf("deterministic weights: %s: bad shape %v or dtype %q", ks.Key, ks.Shape, ks.DType)
			}
			out[ks.Key] = Array{DType: ks.DType, Shape: append([]int64{}, ks.Shape...), Data: make([]byte, n*int64(size))}
		case ks.DType != F32:
			return nil, fmt.Errorf("deterministic weights: %s: dtype %s, the rule makes F32", ks.Key, ks.DType)
		default:
			v := Deterministic(ks.Key, ks.Shape)
			if v == nil {
				return nil, fmt.Errorf("deterministic weights: %s: bad shape %v", ks.Key, ks.Shape)
			}
			out[ks.Key] = FromFloat32(ks.Shape, v)
		}
	}
	return out, nil
}
