package weights

import (
	"bytes"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/lvnet-go/lvnet/internal/shared"
)

func TestLoadKeyListGolden(t *testing.T) {
	keys, err := LoadKeyList(shared.Path(t, "golden", "state_dict_keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 695 {
		t.Fatalf("%d keys, want 695", len(keys))
	}
	first := KeyShape{Key: "xception_rgb.model.conv1.weight", Shape: []int64{32, 3, 3, 3}, DType: F32}
	if !reflect.DeepEqual(keys[0], first) {
		t.Errorf("first entry %+v, want %+v", keys[0], first)
	}
	ints := 0
	for _, k := range keys {
		if k.DType == I64 {
			ints++
			if !strings.HasSuffix(k.Key, "num_batches_tracked") || len(k.Shape) != 0 {
				t.Errorf("unexpected int64 entry %+v", k)
			}
		}
	}
	if ints != 100 {
		t.Errorf("%d int64 entries, want 100", ints)
	}
}

func TestLoadKeyListBad(t *testing.T) {
	tests := []struct{ name, json, want string }{
		{"not json", `[{"key": }]`, "invalid character"},
		{"unknown dtype", `[{"key": "a", "shape": [1], "dtype": "complex64"}]`, `a: unknown dtype "complex64"`},
		{"duplicate", `[{"key": "a", "shape": [1]}, {"key": "a", "shape": [2]}]`, `duplicate key "a"`},
		{"no shape", `[{"key": "a"}]`, "entry 0 lacks key or shape"},
		{"negative", `[{"key": "a", "shape": [-2]}]`, "invalid shape"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeTemp(t, "keys.json", []byte(tt.json))
			_, err := LoadKeyList(path)
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one naming the file and containing %q", err, tt.want)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	expected := []KeyShape{
		{"a.weight", []int64{2, 3}, F32},
		{"a.bias", []int64{2}, F32},
		{"bn.num_batches_tracked", []int64{}, I64},
		{"c", []int64{4}, ""},
	}
	f := func(shape ...int64) Array { return Array{DType: F32, Shape: shape} }
	got := map[string]Array{
		"a.weight":               f(3, 2),
		"bn.num_batches_tracked": f(),
		"c":                      {DType: U8, Shape: []int64{4}},
		"z":                      f(1),
		"extra":                  f(1),
	}
	r := Check(expected, got)
	if !slices.Equal(r.Missing, []string{"a.bias"}) || !slices.Equal(r.Unexpected, []string{"extra", "z"}) {
		t.Errorf("missing %v unexpected %v", r.Missing, r.Unexpected)
	}
	want := []Mismatch{
		{"a.weight", []int64{2, 3}, []int64{3, 2}, F32, F32},
		{"bn.num_batches_tracked", []int64{}, nil, I64, F32},
	}
	if !reflect.DeepEqual(r.Mismatched, want) {
		t.Errorf("mismatched %+v, want %+v", r.Mismatched, want)
	}
	if r.OK() || r.Err() == nil {
		t.Error("report with problems says OK")
	}
	s := r.String()
	for _, part := range []string{"4 keys expected, 5 present: 1 missing, 2 unexpected, 2 mismatched",
		"missing: a.bias", "unexpected: extra, z", "a.weight (want [2 3] F32, got [3 2] F32)"} {
		if !strings.Contains(s, part) {
			t.Errorf("String() = %q, lacks %q", s, part)
		}
	}
	ok := Check(expected[1:2], map[string]Array{"a.bias": f(2)})
	if !ok.OK() || ok.Err() != nil || ok.String() != "all 1 expected keys present with matching shapes" {
		t.Errorf("matching dict: %s", ok)
	}
	// Long lists are cut short.
	var many []KeyShape
	for i := 0; i < 25; i++ {
		many = append(many, KeyShape{Key: string(rune('a'+i)) + ".w", Shape: []int64{1}})
	}
	if s := Check(many, nil).String(); !strings.Contains(s, "... and 15 more") {
		t.Errorf("long report not shortened: %q", s)
	}
}

func TestFromOfficial(t *testing.T) {
	a, b, c := FromFloat32([]int64{1}, []float32{1}), FromFloat32([]int64{1}, []float32{2}), FromFloat32([]int64{1}, []float32{3})
	got := FromOfficial(map[string]Array{
		"module.x.weight":      a,
		"plain":                b,
		"module.plain":         c, // collides with "plain", which wins
		"module.module.nested": a, // only one prefix is stripped
	})
	want := map[string]Array{"x.weight": a, "plain": b, "module.nested": a}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestFromXceptionImageNet(t *testing.T) {
	pw := FromFloat32([]int64{3, 2}, []float32{1, 2, 3, 4, 5, 6})
	sd := map[string]Array{
		"conv1.weight":                  FromFloat32([]int64{1, 1, 1, 1}, []float32{7}),
		"block1.rep.0.pointwise.weight": pw,
		"bn1.running_mean":              FromFloat32([]int64{1}, []float32{0}),
		"bn2.running_mean":              FromFloat32([]int64{1}, []float32{0}),
		"bn2.num_batches_tracked":       FromInt64([]int64{}, []int64{5}),
		"fc.weight":                     FromFloat32([]int64{1, 1}, []float32{9}),
		"fc.bias":                       FromFloat32([]int64{1}, []float32{9}),
	}
	got, err := FromXceptionImageNet(sd)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var want []string
	for _, p := range []string{RGBPrefix, SRMPrefix} {
		for _, k := range []string{"block1.rep.0.pointwise.weight", "bn1.num_batches_tracked", "bn1.running_mean",
			"bn2.num_batches_tracked", "bn2.running_mean", "conv1.weight"} {
			want = append(want, p+k)
		}
	}
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Fatalf("keys %v\nwant %v", keys, want)
	}
	for _, p := range []string{RGBPrefix, SRMPrefix} {
		a := got[p+"block1.rep.0.pointwise.weight"]
		if !slices.Equal(a.Shape, []int64{3, 2, 1, 1}) || !bytes.Equal(a.Data, pw.Data) {
			t.Errorf("%s pointwise: %v", p, a.Shape)
		}
		if n, _ := got[p+"bn1.num_batches_tracked"].Int64s(); !slices.Equal(n, []int64{0}) {
			t.Errorf("%s bn1.num_batches_tracked = %v, want added 0", p, n)
		}
		if n, _ := got[p+"bn2.num_batches_tracked"].Int64s(); !slices.Equal(n, []int64{5}) {
			t.Errorf("%s bn2.num_batches_tracked = %v, want kept 5", p, n)
		}
	}
	if !slices.Equal(pw.Shape, []int64{3, 2}) {
		t.Error("input array's shape was modified")
	}

	bad := []struct {
		name string
		sd   map[string]Array
		want string
	}{
		{"pointwise 3-D", map[string]Array{"block1.rep.0.pointwise.weight": FromFloat32([]int64{1, 1, 1}, []float32{1})}, "pointwise weight of shape [1 1 1]"},
		{"already LVNet", map[string]Array{RGBPrefix + "conv1.weight": FromFloat32([]int64{1}, []float32{1})}, "not a plain Xception state dict"},
		{"DDP prefix", map[string]Array{"module.conv1.weight": FromFloat32([]int64{1}, []float32{1})}, "not a plain Xception state dict"},
		{"bad data", map[string]Array{"conv1.weight": {DType: F32, Shape: []int64{2}}}, "conv1.weight"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := FromXceptionImageNet(tt.sd); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}
