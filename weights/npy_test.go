package weights

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lvnet-go/lvnet/internal/shared"
)

func TestNpyRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for name, a := range sampleTensors() {
		if a.DType == BF16 {
			continue
		}
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name+".npy")
			if err := WriteNpy(path, a); err != nil {
				t.Fatal(err)
			}
			raw, _ := os.ReadFile(path)
			if raw[6] != 1 || (10+int(binary.LittleEndian.Uint16(raw[8:])))%64 != 0 {
				t.Errorf("header: version %d, data starts at %d, want version 1 and a multiple of 64",
					raw[6], 10+int(binary.LittleEndian.Uint16(raw[8:])))
			}
			b, err := ReadNpy(path)
			if err != nil {
				t.Fatal(err)
			}
			if b.DType != a.DType || !bytes.Equal(b.Data, a.Data) || len(b.Shape) != len(a.Shape) ||
				(len(a.Shape) > 0 && !reflect.DeepEqual(b.Shape, a.Shape)) {
				t.Fatalf("read %+v, wrote %+v", b, a)
			}
		})
	}
	if err := WriteNpy(filepath.Join(dir, "x.npy"), Array{DType: BF16, Shape: []int64{1}, Data: []byte{0, 0}}); err == nil ||
		!strings.Contains(err.Error(), "no .npy equivalent") {
		t.Errorf("BF16: %v", err)
	}
}

// npyBytes builds a .npy file of the given version around a header dict.
func npyBytes(major byte, header string, data []byte) []byte {
	var b bytes.Buffer
	b.WriteString(npyMagic)
	b.Write([]byte{major, 0})
	if major == 1 {
		binary.Write(&b, binary.LittleEndian, uint16(len(header)))
	} else {
		binary.Write(&b, binary.LittleEndian, uint32(len(header)))
	}
	b.WriteString(header)
	b.Write(data)
	return b.Bytes()
}

func TestReadNpyHeaders(t *testing.T) {
	two := FromFloat32([]int64{2}, []float32{1.5, -1}).Data
	tests := []struct {
		name      string
		file      []byte
		wantShape []int64
		wantErr   string
	}{
		{"v1", npyBytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", two), []int64{2}, ""},
		{"v2", npyBytes(2, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }   \n", two), []int64{1, 2}, ""},
		{"v3", npyBytes(3, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1), }\n", two), []int64{2, 1}, ""},
		{"double quotes, no trailing comma", npyBytes(1, `{"shape": (2,), "descr": "<f4", "fortran_order": False}`, two), []int64{2}, ""},
		{"python 2 longs", npyBytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1L, 2L), }\n", two), []int64{1, 2}, ""},
		{"scalar", npyBytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }\n", two[:4]), []int64{}, ""},
		{"fortran", npyBytes(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }\n", two), nil, "fortran_order"},
		{"big endian", npyBytes(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }\n", two), nil, `unsupported dtype ">f4"`},
		{"structured", npyBytes(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }\n", two), nil, "structured"},
		{"missing key", npyBytes(1, "{'descr': '<f4', 'shape': (2,), }\n", two), nil, `missing key "fortran_order"`},
		{"extra key", npyBytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}\n", two), nil, `unexpected key "x"`},
		{"bad shape", npyBytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -1), }\n", two), nil, "shape"},
		{"short data", npyBytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }\n", two), nil, "truncated: shape [3] of <f4 needs 12 data bytes, file has 8"},
		{"trailing data", npyBytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\n", two), nil, "4 trailing bytes"},
		{"header past end", npyBytes(2, "{'descr'", nil)[:12], nil, "truncated"},
		{"not npy", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x00"), nil, "not a .npy file"},
		{"version 4", npyBytes(4, "{}", nil), nil, "unsupported .npy format version 4.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeTemp(t, "a.npy", tt.file)
			a, err := ReadNpy(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one naming the file and containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(a.Shape, tt.wantShape) {
				t.Fatalf("shape %v, want %v", a.Shape, tt.wantShape)
			}
			if v, _ := a.Float32s(); v[0] != 1.5 {
				t.Fatalf("first value %v, want 1.5", v[0])
			}
		})
	}
}

// stats returns the mean, min and max of v, accumulated in float64.
func stats(v []float32) (mean, lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, x := range v {
		mean += float64(x)
		lo = math.Min(lo, float64(x))
		hi = math.Max(hi, float64(x))
	}
	return mean / float64(len(v)), lo, hi
}

func TestReadNpyGolden(t *testing.T) {
	dir := shared.Path(t, "golden")
	var golden struct {
		EvalStages map[string]struct {
			Shape          []int64
			Mean, Min, Max float64
		} `json:"eval_stages"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &golden); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		file, stage string
		dtype       string
		shape       []int64
	}{
		{"eval_cls_logits.npy", "cls_logits", F32, []int64{2, 2}},
		{"eval_seg_logits.npy", "seg_logits", F32, []int64{2, 2, 19, 19}},
		{"eval_seg_features.npy", "seg_features", F32, []int64{2, 814, 19, 19}},
		{"input.npy", "", F32, []int64{2, 3, 299, 299}},
		{"sspsl_targets.npy", "", I64, []int64{1444}},
		{"train_mask19.npy", "", F32, []int64{2, 1, 19, 19}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			a, err := ReadNpy(filepath.Join(dir, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if a.DType != tt.dtype || !reflect.DeepEqual(a.Shape, tt.shape) {
				t.Fatalf("%s %v, want %s %v", a.DType, a.Shape, tt.dtype, tt.shape)
			}
			v, err := a.Float32s()
			if err != nil {
				t.Fatal(err)
			}
			mean, lo, hi := stats(v)
			if st, ok := golden.EvalStages[tt.stage]; ok {
				if !reflect.DeepEqual(st.Shape, tt.shape) {
					t.Errorf("golden.json shape %v", st.Shape)
				}
				if math.Abs(mean-st.Mean) > 1e-5*math.Max(1, math.Abs(st.Mean)) || lo != st.Min || hi != st.Max {
					t.Errorf("mean/min/max %g/%g/%g, golden.json says %g/%g/%g", mean, lo, hi, st.Mean, st.Min, st.Max)
				}
			}
			switch tt.file {
			case "input.npy": // normalised to [-1, 1]
				if lo < -1 || hi > 1 || hi-lo < 1 {
					t.Errorf("input range [%g, %g]", lo, hi)
				}
			case "sspsl_targets.npy", "train_mask19.npy": // labels and masks are 0 or 1
				for i, x := range v {
					if x != 0 && x != 1 {
						t.Fatalf("element %d = %g, want 0 or 1", i, x)
					}
				}
			}
		})
	}
}

func TestWriteNpyMatchesNumpy(t *testing.T) {
	// numpy.save wrote the golden file; writing what we read must give the
	// same bytes.
	src := shared.Path(t, "golden", "eval_seg_logits.npy")
	a, err := ReadNpy(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "copy.npy")
	if err := WriteNpy(dst, a); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(src)
	got, _ := os.ReadFile(dst)
	if !bytes.Equal(got, want) {
		n := min(len(got), len(want), 128)
		t.Fatalf("bytes differ from numpy's:\n%q\n%q", got[:n], want[:n])
	}
}
