package weights

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
)

// KeyShape is one expected state-dict entry: its key, shape and dtype (an
// Array dtype such as F32; empty means any).
type KeyShape struct {
	Key   string
	Shape []int64
	DType string
}

// torchDTypes maps PyTorch dtype names to Array dtypes.
var torchDTypes = map[string]string{
	"float32": F32, "float": F32, "float64": F64, "double": F64,
	"float16": F16, "half": F16, "bfloat16": BF16,
	"int64": I64, "long": I64, "int32": I32, "int": I32,
	"uint8": U8, "bool": BOOL,
}

// LoadKeyList reads a key list such as the golden state_dict_keys.json: a
// JSON array of {"key", "shape", "dtype"} objects with PyTorch dtype names
// ("float32", "int64", ...), kept in file order.
func LoadKeyList(path string) ([]KeyShape, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load key list %s: %w", path, err)
	}
	var raw []struct {
		Key   *string  `json:"key"`
		Shape *[]int64 `json:"shape"`
		DType string   `json:"dtype"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("load key list %s: %w", path, err)
	}
	out := make([]KeyShape, 0, len(raw))
	seen := make(map[string]bool, len(raw))
	for i, r := range raw {
		if r.Key == nil || r.Shape == nil {
			return nil, fmt.Errorf("load key list %s: entry %d lacks key or shape", path, i)
		}
		if seen[*r.Key] {
			return nil, fmt.Errorf("load key list %s: duplicate key %q", path, *r.Key)
		}
		seen[*r.Key] = true
		if _, ok := numel(*r.Shape); !ok {
			return nil, fmt.Errorf("load key list %s: %s: invalid shape %v", path, *r.Key, *r.Shape)
		}
		dt := ""
		if r.DType != "" {
			var ok bool
			if dt, ok = torchDTypes[strings.TrimPrefix(r.DType, "torch.")]; !ok {
				return nil, fmt.Errorf("load key list %s: %s: unknown dtype %q", path, *r.Key, r.DType)
			}
		}
		out = append(out, KeyShape{Key: *r.Key, Shape: *r.Shape, DType: dt})
	}
	return out, nil
}

// Mismatch is an entry present with the wrong shape or dtype.
type Mismatch struct {
	Key                 string
	Want, Got           []int64
	WantDType, GotDType string
}

// Report is the outcome of [Check]: expected keys that are absent (in
// expected order), present keys that are not expected (sorted), and
// entries whose shape or dtype differ (in expected order).
type Report struct {
	Expected, Present int
	Missing           []string
	Unexpected        []string
	Mismatched        []Mismatch
}

// Check compares a state dict with the expected keys, shapes and dtypes.
func Check(expected []KeyShape, got map[string]Array) Report {
	r := Report{Expected: len(expected), Present: len(got)}
	want := make(map[string]bool, len(expected))
	for _, ks := range expected {
		want[ks.Key] = true
		a, ok := got[ks.Key]
		if !ok {
			r.Missing = append(r.Missing, ks.Key)
			continue
		}
		if !slices.Equal(a.Shape, ks.Shape) || (ks.DType != "" && ks.DType != a.DType) {
			r.Mismatched = append(r.Mismatched, Mismatch{
				Key: ks.Key, Want: ks.Shape, Got: a.Shape, WantDType: ks.DType, GotDType: a.DType,
			})
		}
	}
	for k := range got {
		if !want[k] {
			r.Unexpected = append(r.Unexpected, k)
		}
	}
	sort.Strings(r.Unexpected)
	return r
}

// OK reports whether the state dict matched exactly.
func (r Report) OK() bool {
	return len(r.Missing) == 0 && len(r.Unexpected) == 0 && len(r.Mismatched) == 0
}

// Err returns nil when the state dict matched, else an error carrying
// [Report.String].
func (r Report) Err() error {
	if r.OK() {
		return nil
	}
	return fmt.Errorf("state dict does not match the model: %s", r.String())
}

// reportListMax bounds how many entries of each list String prints.
const reportListMax = 10

// String summarises the report: counts, then up to ten entries of each
// list.
func (r Report) String() string {
	if r.OK() {
		return fmt.Sprintf("all %d expected keys present with matching shapes", r.Expected)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d keys expected, %d present: %d missing, %d unexpected, %d mismatched",
		r.Expected, r.Present, len(r.Missing), len(r.Unexpected), len(r.Mismatched))
	list := func(name string, items []string) {
		if len(items) == 0 {
			return
		}
		fmt.Fprintf(&b, "\n%s: ", name)
		n := min(len(items), reportListMax)
		b.WriteString(strings.Join(items[:n], ", "))
		if len(items) > n {
			fmt.Fprintf(&b, ", ... and %d more", len(items)-n)
		}
	}
	list("missing", r.Missing)
	list("unexpected", r.Unexpected)
	var mm []string
	for _, m := range r.Mismatched {
		mm = append(mm, fmt.Sprintf("%s (want %v %s, got %v %s)", m.Key, m.Want, m.WantDType, m.Got, m.GotDType))
	}
	list("mismatched", mm)
	return b.String()
}

// FromOfficial maps a state dict saved by the authors' training code to
// LVNet's keys: it strips the "module." prefix that DistributedDataParallel
// adds. Should both "module.k" and "k" be present, "k" is kept.
func FromOfficial(sd map[string]Array) map[string]Array {
	out := make(map[string]Array, len(sd))
	for k, a := range sd {
		if s, ok := strings.CutPrefix(k, "module."); ok {
			if _, dup := sd[s]; dup {
				continue
			}
			k = s
		}
		out[k] = a
	}
	return out
}

// Backbone prefixes in LVNet's key space.
const (
	RGBPrefix = "xception_rgb.model."
	SRMPrefix = "xception_srm.model."
)

// FromXceptionImageNet maps the ImageNet Xception state dict the authors
// start from (keys conv1.weight, bn1.*, block1.rep.0.pointwise.weight, ...)
// onto both LVNet backbones, under [RGBPrefix] and [SRMPrefix]. As in the
// authors' loader, pointwise weights stored 2-D (out x in) become
// out x in x 1 x 1; the ImageNet classifier (fc.* or last_linear.*) is
// dropped, and every BatchNorm without num_batches_tracked gets a zero one,
// as PyTorch does when loading such an old state dict. The two copies of a
// tensor share their Data.
func FromXceptionImageNet(sd map[string]Array) (map[string]Array, error) {
	out := make(map[string]Array, 2*len(sd)+40)
	put := func(k string, a Array) {
		out[RGBPrefix+k] = a
		out[SRMPrefix+k] = a
	}
	for k, a := range sd {
		if strings.HasPrefix(k, "fc.") || strings.HasPrefix(k, "last_linear.") {
			continue
		}
		if strings.HasPrefix(k, "module.") || strings.HasPrefix(k, RGBPrefix) || strings.HasPrefix(k, SRMPrefix) {
			return nil, fmt.Errorf("ImageNet Xception: unexpected key %q (not a plain Xception state dict)", k)
		}
		if err := a.Validate(); err != nil {
			return nil, fmt.Errorf("ImageNet Xception: %s: %w", k, err)
		}
		if strings.Contains(k, "pointwise") {
			switch len(a.Shape) {
			case 2:
				a.Shape = []int64{a.Shape[0], a.Shape[1], 1, 1}
			case 4:
			default:
				return nil, fmt.Errorf("ImageNet Xception: %s: pointwise weight of shape %v, want 2-D or 4-D", k, a.Shape)
			}
		}
		put(k, a)
		if bn, ok := strings.CutSuffix(k, ".running_mean"); ok {
			if _, has := sd[bn+".num_batches_tracked"]; !has {
				put(bn+".num_batches_tracked", FromInt64([]int64{}, []int64{0}))
			}
		}
	}
	return out, nil
}
