package face

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeModel writes a TensorFlow.js model (manifest + one shard) into dir.
func writeModel(t *testing.T, dir, name, manifest string, shard []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name+"-weights_manifest.json"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	if shard != nil {
		if err := os.WriteFile(filepath.Join(dir, name+".bin"), shard, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoadTFJS(t *testing.T) {
	dir := t.TempDir()
	var shard []byte
	shard = append(shard, 0, 10, 255) // uint8: q*0.5 - 1
	shard = binary.LittleEndian.AppendUint32(shard, math.Float32bits(1.25))
	shard = binary.LittleEndian.AppendUint32(shard, math.Float32bits(-3))
	shard = binary.LittleEndian.AppendUint32(shard, 7)      // int32 constant, skipped
	shard = binary.LittleEndian.AppendUint16(shard, 0x3C00) // float16 1.0
	shard = binary.LittleEndian.AppendUint16(shard, 0xC100) // float16 -2.5
	shard = binary.LittleEndian.AppendUint16(shard, 2)      // uint16: 2*0.25 + 10
	writeModel(t, dir, "m", `[{"paths": ["m.bin"], "weights": [
		{"name": "q8", "shape": [3], "dtype": "float32", "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1}},
		{"name": "f32", "shape": [1, 2], "dtype": "float32"},
		{"name": "size", "shape": [], "dtype": "int32"},
		{"name": "f16", "shape": [2], "dtype": "float32", "quantization": {"dtype": "float16"}},
		{"name": "q16", "shape": [1], "dtype": "float32", "quantization": {"dtype": "uint16", "scale": 0.25, "min": 10}}
	]}]`, shard)
	m, err := loadTFJS(dir, "m")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		shape []int
		data  []float32
	}{
		{"q8", []int{3}, []float32{-1, 4, 126.5}},
		{"f32", []int{1, 2}, []float32{1.25, -3}},
		{"f16", []int{2}, []float32{1, -2.5}},
		{"q16", []int{1}, []float32{10.5}},
	} {
		w, ok := m[tc.name]
		if !ok {
			t.Errorf("%s missing", tc.name)
			continue
		}
		if len(w.Shape) != len(tc.shape) || len(w.Data) != len(tc.data) {
			t.Errorf("%s: shape %v data %v", tc.name, w.Shape, w.Data)
			continue
		}
		for i := range tc.data {
			if w.Data[i] != tc.data[i] {
				t.Errorf("%s[%d] = %v, want %v", tc.name, i, w.Data[i], tc.data[i])
			}
		}
	}
	if _, ok := m["size"]; ok {
		t.Error("int32 constant loaded")
	}
}

func TestLoadTFJSErrors(t *testing.T) {
	one := `[{"paths": ["m.bin"], "weights": [{"name": "w", "shape": [4], "dtype": "float32"}]}]`
	for _, tc := range []struct {
		name, manifest string
		shard          []byte
		say            string
	}{
		{"missing", "", nil, "not found in"},
		{"json", "{not json", nil, "bad weights manifest"},
		{"short", one, make([]byte, 8), "truncated model file"},
		{"long", one, make([]byte, 20), "manifest describes 16"},
		{"noshard", one, nil, "read shard"},
		{"path", `[{"paths": ["../x.bin"], "weights": []}]`, nil, "plain file name"},
		{"quant", `[{"paths": ["m.bin"], "weights": [{"name": "w", "shape": [1], "dtype": "float32", "quantization": {"dtype": "int4"}}]}]`, make([]byte, 4), "unsupported quantization"},
		{"dtype", `[{"paths": ["m.bin"], "weights": [{"name": "w", "shape": [1], "dtype": "string"}]}]`, make([]byte, 4), "unsupported dtype"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.manifest != "" {
				writeModel(t, dir, "m", tc.manifest, tc.shard)
			}
			_, err := loadTFJS(dir, "m")
			if err == nil || !strings.Contains(err.Error(), tc.say) {
				t.Errorf("error %v, want one saying %q", err, tc.say)
			}
		})
	}
}

func TestHalfToFloat(t *testing.T) {
	for _, tc := range []struct {
		h    uint16
		want float32
	}{
		{0x0000, 0}, {0x3C00, 1}, {0xC000, -2}, {0x7BFF, 65504}, {0x3555, 0.33325195},
		{0x0001, 5.9604645e-08}, {0x8001, -5.9604645e-08}, {0x7C00, float32(math.Inf(1))},
	} {
		if got := halfToFloat(tc.h); got != tc.want {
			t.Errorf("halfToFloat(%#04x) = %v, want %v", tc.h, got, tc.want)
		}
	}
}

func TestNewDetectorErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := NewDetector(dir, Options{}); err == nil || !strings.Contains(err.Error(), "fetch-face-models.sh") {
		t.Errorf("missing models: %v", err)
	}
	for _, o := range []Options{{InputSize: 500}, {InputSize: 64}, {Pad: -1}, {MinScore: 1}, {Retry: []Pass{{InputSize: 100}}}} {
		if _, err := NewDetector(dir, o); err == nil || !strings.HasPrefix(err.Error(), "face: ") {
			t.Errorf("%+v: error %v, want an option error", o, err)
		}
	}
}
