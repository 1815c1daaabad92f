package face

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
)

// tfWeight is one dequantised tensor of a TensorFlow.js weights manifest.
type tfWeight struct {
	Shape []int
	Data  []float32
}

// manifestGroup is one entry of a TensorFlow.js "*-weights_manifest.json":
// shard files holding the weights listed, in order.
type manifestGroup struct {
	Paths   []string `json:"paths"`
	Weights []struct {
		Name         string `json:"name"`
		Shape        []int  `json:"shape"`
		DType        string `json:"dtype"`
		Quantization *struct {
			DType string  `json:"dtype"`
			Scale float64 `json:"scale"`
			Min   float64 `json:"min"`
		} `json:"quantization"`
	} `json:"weights"`
}

// loadTFJS reads the TensorFlow.js model `name` from dir
// (name-weights_manifest.json and its .bin shards) and returns its float32
// weights by name, dequantised (value = q*scale + min for uint8/uint16, IEEE
// half for float16). Integer constants of the graph are skipped.
func loadTFJS(dir, name string) (map[string]tfWeight, error) {
	mpath := filepath.Join(dir, name+"-weights_manifest.json")
	mb, err := os.ReadFile(mpath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("face model %s not found in %s (run scripts/fetch-face-models.sh %s): %w", name, dir, dir, err)
		}
		return nil, fmt.Errorf("read face model manifest: %w", err)
	}
	var groups []manifestGroup
	if err := json.Unmarshal(mb, &groups); err != nil {
		return nil, fmt.Errorf("%s: bad weights manifest: %w", mpath, err)
	}
	out := map[string]tfWeight{}
	for gi, g := range groups {
		var buf []byte
		for _, p := range g.Paths {
			if filepath.Base(p) != p {
				return nil, fmt.Errorf("%s: shard path %q must be a plain file name", mpath, p)
			}
			b, err := os.ReadFile(filepath.Join(dir, p))
			if err != nil {
				return nil, fmt.Errorf("%s: read shard: %w", mpath, err)
			}
			buf = append(buf, b...)
		}
		off := 0
		for _, w := range g.Weights {
			n := 1
			for _, d := range w.Shape {
				if d < 0 {
					return nil, fmt.Errorf("%s: weight %s has negative dimension %v", mpath, w.Name, w.Shape)
				}
				n *= d
			}
			size := 4
			qdt := ""
			if w.Quantization != nil {
				qdt = w.Quantization.DType
				switch qdt {
				case "uint8":
					size = 1
				case "uint16", "float16":
					size = 2
				default:
					return nil, fmt.Errorf("%s: weight %s: unsupported quantization %q", mpath, w.Name, qdt)
				}
			} else if w.DType != "float32" && w.DType != "int32" {
				return nil, fmt.Errorf("%s: weight %s: unsupported dtype %q", mpath, w.Name, w.DType)
			}
			nb := n * size
			if off+nb > len(buf) {
				return nil, fmt.Errorf("%s: group %d: shards hold %d bytes, weight %s needs bytes %d..%d (truncated model file?)", mpath, gi, len(buf), w.Name, off, off+nb)
			}
			raw := buf[off : off+nb]
			off += nb
			if w.DType != "float32" {
				continue // graph constants (sizes, axes) are not needed
			}
			data := make([]float32, n)
			switch qdt {
			case "uint8":
				q := w.Quantization
				for i, v := range raw {
					data[i] = float32(float64(v)*q.Scale + q.Min)
				}
			case "uint16":
				q := w.Quantization
				for i := range data {
					data[i] = float32(float64(binary.LittleEndian.Uint16(raw[2*i:]))*q.Scale + q.Min)
				}
			case "float16":
				for i := range data {
					data[i] = halfToFloat(binary.LittleEndian.Uint16(raw[2*i:]))
				}
			default:
				for i := range data {
					data[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
				}
			}
			out[w.Name] = tfWeight{Shape: append([]int(nil), w.Shape...), Data: data}
		}
		if off != len(buf) {
			return nil, fmt.Errorf("%s: group %d: shards hold %d bytes, manifest describes %d", mpath, gi, len(buf), off)
		}
	}
	return out, nil
}

// halfToFloat converts an IEEE 754 binary16 value to float32.
func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal
		f := float32(mant) / 1024 / 16384
		if sign != 0 {
			return -f
		}
		return f
	case exp == 0x1f:
		return math.Float32frombits(sign | 0xff<<23 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}
