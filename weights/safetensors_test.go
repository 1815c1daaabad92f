package weights

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// sampleTensors covers every dtype, a scalar and an empty tensor.
func sampleTensors() map[string]Array {
	return map[string]Array{
		"conv.weight": FromFloat32([]int64{2, 1, 1, 2}, []float32{1, -2, 3.5, 1e-30}),
		"bn.num":      FromInt64([]int64{}, []int64{42}),
		"f64":         {DType: F64, Shape: []int64{1}, Data: []byte{0, 0, 0, 0, 0, 0, 0xf0, 0x3f}},
		"half":        {DType: F16, Shape: []int64{2}, Data: []byte{0, 0x3c, 0, 0xc0}},
		"bhalf":       {DType: BF16, Shape: []int64{1}, Data: []byte{0x80, 0x3f}},
		"i32":         {DType: I32, Shape: []int64{1}, Data: []byte{1, 2, 3, 4}},
		"bytes":       {DType: U8, Shape: []int64{3}, Data: []byte{1, 2, 255}},
		"mask":        {DType: BOOL, Shape: []int64{2, 1}, Data: []byte{1, 0}},
		"empty":       FromFloat32([]int64{0, 4}, nil),
	}
}

func TestSafetensorsRoundTrip(t *testing.T) {
	tests := []struct {
		name     string
		meta     map[string]string
		wantMeta map[string]string
	}{
		{"no metadata", nil, map[string]string{}},
		{"metadata", map[string]string{"format": "pt", "note": "quote \" and <tag>"},
			map[string]string{"format": "pt", "note": "quote \" and <tag>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "m.safetensors")
			in := sampleTensors()
			if err := WriteSafetensors(path, in, tt.meta); err != nil {
				t.Fatal(err)
			}
			out, meta, err := ReadSafetensors(path)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(meta, tt.wantMeta) {
				t.Errorf("metadata %v, want %v", meta, tt.wantMeta)
			}
			if len(out) != len(in) {
				t.Fatalf("read %d tensors, wrote %d", len(out), len(in))
			}
			for k, a := range in {
				b := out[k]
				if b.DType != a.DType || !reflect.DeepEqual(append([]int64{}, b.Shape...), append([]int64{}, a.Shape...)) ||
					!bytes.Equal(b.Data, a.Data) {
					t.Errorf("%s: read %+v, wrote %+v", k, b, a)
				}
			}
			infos, meta2, err := ReadSafetensorsMeta(path)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(meta2, tt.wantMeta) || len(infos) != len(in) {
				t.Fatalf("meta reader: %d infos, metadata %v", len(infos), meta2)
			}
			if ti := infos["conv.weight"]; ti.DType != F32 || ti.End-ti.Begin != 16 {
				t.Errorf("conv.weight info %+v", ti)
			}
			// Only the file itself is left in the directory.
			ents, _ := os.ReadDir(dir)
			if len(ents) != 1 {
				t.Errorf("directory holds %d entries, want only the written file", len(ents))
			}
		})
	}
}

func TestSafetensorsLayout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.safetensors")
	tensors := map[string]Array{
		"b": FromFloat32([]int64{1}, []float32{2}),
		"a": FromFloat32([]int64{2}, []float32{1, 1}),
	}
	if err := WriteSafetensors(path, tensors, map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	header := `{"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`
	for len(header)%8 != 0 {
		header += " "
	}
	var want bytes.Buffer
	binary.Write(&want, binary.LittleEndian, uint64(len(header)))
	want.WriteString(header)
	want.Write([]byte{0, 0, 0x80, 0x3f, 0, 0, 0x80, 0x3f, 0, 0, 0, 0x40})
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("file bytes\n%q\nwant\n%q", got, want.Bytes())
	}
	// Writing again gives identical bytes (map order does not matter).
	path2 := filepath.Join(filepath.Dir(path), "y.safetensors")
	if err := WriteSafetensors(path2, tensors, map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(path2); !bytes.Equal(again, got) {
		t.Fatal("second write differs")
	}
}

// rawSafetensors builds a file from a header string and data bytes.
func rawSafetensors(t *testing.T, header string, data []byte) string {
	t.Helper()
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, uint64(len(header)))
	b.WriteString(header)
	b.Write(data)
	return writeTemp(t, "bad.safetensors", b.Bytes())
}

// writeTemp writes b to a file named name in a fresh temporary directory.
func writeTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSafetensorsCorrupt(t *testing.T) {
	valid := func(t *testing.T) []byte {
		p := filepath.Join(t.TempDir(), "v.safetensors")
		if err := WriteSafetensors(p, map[string]Array{"w": FromFloat32([]int64{4}, []float32{1, 2, 3, 4})}, nil); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(p)
		return b
	}
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00")
	f32 := func(n int) []byte { return make([]byte, 4*n) }
	tests := []struct {
		name string
		file func(t *testing.T) string
		want string
	}{
		{"empty file", func(t *testing.T) string { return writeTemp(t, "e.safetensors", nil) }, "not a safetensors file"},
		{"tiny file", func(t *testing.T) string { return writeTemp(t, "e.safetensors", []byte{1, 2, 3}) }, "not a safetensors file"},
		{"png", func(t *testing.T) string { return writeTemp(t, "pic.png", png) }, "not a safetensors file"},
		{"huge header length", func(t *testing.T) string {
			return writeTemp(t, "h.safetensors", append([]byte{0, 0, 0, 0, 0, 0, 0, 1}, "{}"...))
		}, "not a safetensors file"},
		{"truncated header", func(t *testing.T) string {
			b := valid(t)
			return writeTemp(t, "t.safetensors", b[:20])
		}, "truncated: header says"},
		{"truncated data", func(t *testing.T) string {
			b := valid(t)
			return writeTemp(t, "t.safetensors", b[:len(b)-3])
		}, "truncated: tensor \"w\" ends at data byte 16, data section has 13"},
		{"bad json", func(t *testing.T) string { return rawSafetensors(t, `{"w": {"dtype": "F32",}`, nil) }, "bad header JSON"},
		{"entry not an object", func(t *testing.T) string { return rawSafetensors(t, `{"w": 3}`, nil) }, `bad header entry "w"`},
		{"missing field", func(t *testing.T) string {
			return rawSafetensors(t, `{"w":{"dtype":"F32","shape":[1]}}`, f32(1))
		}, "needs dtype, shape and data_offsets"},
		{"bad metadata", func(t *testing.T) string {
			return rawSafetensors(t, `{"__metadata__":{"a":1}}`, nil)
		}, "__metadata__ must map strings to strings"},
		{"unknown dtype", func(t *testing.T) string {
			return rawSafetensors(t, `{"w":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}`, []byte{0})
		}, `unknown dtype "F8_E4M3"`},
		{"negative dim", func(t *testing.T) string {
			return rawSafetensors(t, `{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}`, nil)
		}, "invalid shape"},
		{"size mismatch", func(t *testing.T) string {
			return rawSafetensors(t, `{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, f32(2))
		}, "needs 12 bytes, data_offsets [0 8] give 8"},
		{"reversed offsets", func(t *testing.T) string {
			return rawSafetensors(t, `{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}`, f32(2))
		}, "invalid data_offsets"},
		{"offsets beyond data", func(t *testing.T) string {
			return rawSafetensors(t, `{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, f32(1))
		}, "truncated: tensor \"w\""},
		{"overlap", func(t *testing.T) string {
			return rawSafetensors(t, `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, f32(3))
		}, `tensors "a" and "b" overlap`},
		{"gap", func(t *testing.T) string {
			return rawSafetensors(t, `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}}`, f32(5))
		}, "gap in data: bytes 8..12"},
		{"not covering", func(t *testing.T) string {
			return rawSafetensors(t, `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, f32(3))
		}, "4 trailing bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.file(t)
			check := func(what string, err error) {
				t.Helper()
				if err == nil {
					t.Fatalf("%s accepted a bad file", what)
				}
				msg := err.Error()
				if !strings.HasPrefix(msg, "read "+path+": ") || !strings.Contains(msg, tt.want) {
					t.Fatalf("%s error %q, want it to name %s and contain %q", what, msg, path, tt.want)
				}
			}
			_, _, err := ReadSafetensors(path)
			check("ReadSafetensors", err)
			_, _, err = ReadSafetensorsMeta(path)
			check("ReadSafetensorsMeta", err)
		})
	}
	if _, _, err := ReadSafetensors(filepath.Join(t.TempDir(), "absent.safetensors")); !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("missing file: %v", err)
	}
}

// unwrapAll returns the innermost wrapped error.
func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok || u.Unwrap() == nil {
			return err
		}
		err = u.Unwrap()
	}
}

func TestWriteSafetensorsRejects(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		path    string
		tensors map[string]Array
		want    string
	}{
		{"data length", filepath.Join(dir, "a.safetensors"),
			map[string]Array{"w": {DType: F32, Shape: []int64{2}, Data: make([]byte, 4)}}, `tensor "w": shape [2] of F32 needs 8 bytes`},
		{"unknown dtype", filepath.Join(dir, "b.safetensors"),
			map[string]Array{"w": {DType: "C64", Shape: []int64{1}, Data: make([]byte, 8)}}, "unknown dtype"},
		{"reserved name", filepath.Join(dir, "c.safetensors"),
			map[string]Array{"__metadata__": FromFloat32([]int64{1}, []float32{1})}, "reserved"},
		{"missing directory", filepath.Join(dir, "no", "such", "d.safetensors"),
			map[string]Array{"w": FromFloat32([]int64{1}, []float32{1})}, "no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := WriteSafetensors(tt.path, tt.tensors, nil)
			if err == nil || !strings.Contains(err.Error(), tt.path) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one naming %s and containing %q", err, tt.path, tt.want)
			}
		})
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("failed writes left %d files behind", len(ents))
	}
}

func TestWriteSafetensorsReplaces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.safetensors")
	for _, v := range []float32{1, 2} {
		if err := WriteSafetensors(path, map[string]Array{"w": FromFloat32([]int64{1}, []float32{v})}, nil); err != nil {
			t.Fatal(err)
		}
	}
	got, _, err := ReadSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := got["w"].Float32s(); v[0] != 2 {
		t.Fatalf("after overwrite w = %v, want 2", v)
	}
}
