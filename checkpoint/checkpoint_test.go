package checkpoint

import (
	"bytes"
	"errors"
	"image"
	"image/png"
	"maps"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lvnet-go/lvnet/internal/modeltest"
	"github.com/lvnet-go/lvnet/model"
	"github.com/lvnet-go/lvnet/nn"
	"github.com/lvnet-go/lvnet/torch"
	"github.com/lvnet-go/lvnet/weights"
)

// newModel builds a model of cfg whose every tensor holds the golden
// deterministic values and whose counters hold distinct non-zero values, so
// that nothing is left at a value a fresh model would also have.
func newModel(t testing.TB, cfg model.Config) *model.LVNet {
	t.Helper()
	m := modeltest.Deterministic(t, cfg)
	counters := map[string]weights.Array{}
	i := int64(1)
	for _, k := range m.KeyShapes() {
		if k.DType == weights.I64 {
			counters[k.Key] = weights.FromInt64(k.Shape, []int64{i})
			i++
		}
	}
	if _, err := m.SetState(counters); err != nil {
		t.Fatal(err)
	}
	return m
}

// forward runs m in eval mode on a fixed input and returns the class and
// patch logits.
func forward(t testing.TB, m *model.LVNet) (cls, seg []float32) {
	t.Helper()
	s := torch.NewScope()
	defer s.Close()
	g, err := torch.NewGenerator(11)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	n := int64(m.Config.ImageSize)
	x := torch.Rand(s, g, 2, 3, n, n).MulScalar(2).SubScalar(1).ToDType(m.DType())
	err = torch.InferenceMode(func() error {
		out := m.Forward(nn.EvalCtx(), x)
		var err error
		if cls, err = out.Cls.Float32s(); err != nil {
			return err
		}
		seg, err = out.Seg.Float32s()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return cls, seg
}

func state(t testing.TB, m *model.LVNet) map[string]weights.Array {
	t.Helper()
	st, err := m.State()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func equalStates(t *testing.T, got, want map[string]weights.Array) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d tensors, want %d", len(got), len(want))
	}
	for k, a := range want {
		b, ok := got[k]
		if !ok {
			t.Errorf("%s missing", k)
			continue
		}
		if a.DType != b.DType || !slices.Equal(a.Shape, b.Shape) || !bytes.Equal(a.Data, b.Data) {
			t.Errorf("%s differs: %s %v vs %s %v", k, b.DType, b.Shape, a.DType, a.Shape)
		}
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	cfg := modeltest.SmallConfig()
	m := newModel(t, cfg)
	path := filepath.Join(t.TempDir(), "m.safetensors")
	before := time.Now().UTC().Truncate(time.Second)
	meta := Meta{
		Config:     model.Config{ImageSize: 1}, // ignored: Save takes the model's
		Provenance: Provenance{Source: SourceDeterministic, Note: "round trip"},
		Metrics:    map[string]any{"val_auc": 0.75, "split": "val"},
		Epoch:      3,
		Step:       1234,
	}
	if err := Save(path, m, meta); err != nil {
		t.Fatal(err)
	}
	wantCls, wantSeg := forward(t, m)

	got, gotMeta, err := Load(path, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer got.Free()
	if got.Config != cfg || gotMeta.Config != cfg {
		t.Errorf("config %+v / meta %+v, want %+v", got.Config, gotMeta.Config, cfg)
	}
	if gotMeta.Epoch != 3 || gotMeta.Step != 1234 {
		t.Errorf("epoch %d step %d, want 3 1234", gotMeta.Epoch, gotMeta.Step)
	}
	if !reflect.DeepEqual(gotMeta.Metrics, meta.Metrics) {
		t.Errorf("metrics %v, want %v", gotMeta.Metrics, meta.Metrics)
	}
	p := gotMeta.Provenance
	if p.Source != SourceDeterministic || p.Note != "round trip" || p.LVNet == "" {
		t.Errorf("provenance %+v", p)
	}
	if info, err := torch.RuntimeInfo(); err != nil || p.Torch != info.TorchVersion {
		t.Errorf("provenance torch %q, runtime %q (%v)", p.Torch, info.TorchVersion, err)
	}
	if c, err := time.Parse(time.RFC3339, p.Created); err != nil || c.Before(before) || c.After(time.Now().Add(time.Second)) {
		t.Errorf("created %q (%v), want a time after %v", p.Created, err, before)
	}
	equalStates(t, state(t, got), state(t, m))
	cls, seg := forward(t, got)
	if !slices.Equal(cls, wantCls) || !slices.Equal(seg, wantSeg) {
		t.Errorf("outputs differ after the round trip: cls %v, want %v", cls, wantCls)
	}

	// ReadMeta reads the same metadata without the tensors.
	rm, err := ReadMeta(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rm, gotMeta) {
		t.Errorf("ReadMeta %+v, Load %+v", rm, gotMeta)
	}

	// Saving what was loaded gives the same bytes (metadata included).
	path2 := filepath.Join(t.TempDir(), "m2.safetensors")
	if err := Save(path2, got, gotMeta); err != nil {
		t.Fatal(err)
	}
	b1, _ := os.ReadFile(path)
	b2, _ := os.ReadFile(path2)
	if !bytes.Equal(b1, b2) {
		t.Errorf("re-saving a loaded checkpoint changed its bytes")
	}
}

func TestLoadDType(t *testing.T) {
	m := newModel(t, modeltest.SmallConfig())
	path := filepath.Join(t.TempDir(), "m.safetensors")
	if err := Save(path, m, Meta{}); err != nil {
		t.Fatal(err)
	}
	want, _ := forward(t, m)
	m64, _, err := Load(path, LoadOptions{DType: torch.Float64})
	if err != nil {
		t.Fatal(err)
	}
	defer m64.Free()
	if m64.DType() != torch.Float64 {
		t.Fatalf("dtype %v, want float64", m64.DType())
	}
	got, _ := forward(t, m64)
	for i := range want {
		if d := got[i] - want[i]; d > 1e-3 || d < -1e-3 {
			t.Errorf("float64 logit %d = %v, float32 %v", i, got[i], want[i])
		}
	}
	if _, _, err := Load(path, LoadOptions{DType: torch.Int64}); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("int64 model: error %v, want one naming the file", err)
	}
}

// writeFile writes b to dir/name.
func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	cfg := modeltest.SmallConfig()
	m := newModel(t, cfg)
	good := filepath.Join(dir, "good.safetensors")
	if err := Save(good, m, Meta{}); err != nil {
		t.Fatal(err)
	}
	goodBytes, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	tensors, md, err := weights.ReadSafetensors(good)
	if err != nil {
		t.Fatal(err)
	}
	// withMeta writes the good tensors with changed metadata.
	withMeta := func(name string, change func(md map[string]string)) string {
		md2 := maps.Clone(md)
		change(md2)
		p := filepath.Join(dir, name)
		if err := weights.WriteSafetensors(p, tensors, md2); err != nil {
			t.Fatal(err)
		}
		return p
	}
	withTensors := func(name string, change func(ts map[string]weights.Array)) string {
		ts := maps.Clone(tensors)
		change(ts)
		p := filepath.Join(dir, name)
		if err := weights.WriteSafetensors(p, ts, md); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var pngBuf bytes.Buffer
	png.Encode(&pngBuf, image.NewGray(image.Rect(0, 0, 8, 8)))

	tests := []struct {
		name string
		path string
		want string
	}{
		{"absent", filepath.Join(dir, "absent.safetensors"), "no such file"},
		{"truncated", writeFile(t, dir, "trunc.safetensors", goodBytes[:len(goodBytes)/2]), ""},
		{"truncated header", writeFile(t, dir, "trunc2.safetensors", goodBytes[:100]), ""},
		{"empty", writeFile(t, dir, "empty.safetensors", nil), ""},
		{"png renamed", writeFile(t, dir, "photo.safetensors", pngBuf.Bytes()), ""},
		{"plain safetensors", withMeta("plain.safetensors", func(md map[string]string) { clear(md) }), "not an LVNet checkpoint"},
		{"foreign format", withMeta("pt.safetensors", func(md map[string]string) { md["format"] = "pt" }), `format "pt"`},
		{"newer format", withMeta("v2.safetensors", func(md map[string]string) { md["format"] = "lvnet/2" }), "not supported"},
		{"no config", withMeta("nocfg.safetensors", func(md map[string]string) { delete(md, "config") }), `no "config"`},
		{"bad config json", withMeta("badcfg.safetensors", func(md map[string]string) { md["config"] = "{" }), "config metadata"},
		{"unknown config field", withMeta("field.safetensors", func(md map[string]string) {
			md["config"] = strings.Replace(md["config"], "{", `{"heads":3,`, 1)
		}), "unknown field"},
		{"invalid config", withMeta("inv.safetensors", func(md map[string]string) {
			md["config"] = strings.Replace(md["config"], `"image_size":64`, `"image_size":8`, 1)
		}), "below the minimum"},
		{"wrong config for tensors", withMeta("wide.safetensors", func(md map[string]string) {
			md["config"] = strings.Replace(md["config"], `"width":0.25`, `"width":0.5`, 1)
		}), "mismatched"},
		{"config without sspsl", withMeta("nosspsl.safetensors", func(md map[string]string) {
			md["config"] = strings.Replace(md["config"], `"sspsl":true`, `"sspsl":false`, 1)
		}), "unexpected: pro_header."},
		{"bad epoch", withMeta("epoch.safetensors", func(md map[string]string) { md["epoch"] = "-1" }), "epoch metadata"},
		{"bad provenance", withMeta("prov.safetensors", func(md map[string]string) { md["provenance"] = "[]" }), "provenance metadata"},
		{"missing tensor", withTensors("miss.safetensors", func(ts map[string]weights.Array) { delete(ts, "cls_header.5.weight") }),
			"missing: cls_header.5.weight"},
		{"unexpected tensor", withTensors("extra.safetensors", func(ts map[string]weights.Array) {
			ts["extra.weight"] = weights.FromFloat32([]int64{1}, []float32{1})
		}), "unexpected: extra.weight"},
		{"mis-shaped tensor", withTensors("shape.safetensors", func(ts map[string]weights.Array) {
			ts["cls_header.5.bias"] = weights.FromFloat32([]int64{3}, []float32{1, 2, 3})
		}), "mismatched: cls_header.5.bias"},
		{"wrong dtype", withTensors("dtype.safetensors", func(ts map[string]weights.Array) {
			ts["cls_header.5.bias"] = weights.FromInt64([]int64{2}, []int64{1, 2})
		}), "mismatched: cls_header.5.bias"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _, err := Load(tt.path, LoadOptions{})
			if err == nil {
				m.Free()
				t.Fatal("loaded")
			}
			if !strings.Contains(err.Error(), tt.path) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q\nwant one naming %s and containing %q", err, tt.path, tt.want)
			}
		})
	}
}

func TestPlainSafetensorsIsNotCheckpoint(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.safetensors")
	if err := weights.WriteSafetensors(p, map[string]weights.Array{"w": weights.FromFloat32([]int64{1}, []float32{1})}, nil); err != nil {
		t.Fatal(err)
	}
	_, _, err := Load(p, LoadOptions{})
	if !errors.Is(err, ErrNotCheckpoint) {
		t.Errorf("error %v, want ErrNotCheckpoint", err)
	}
	// Nor is another of the project's files (train's resume state).
	state := filepath.Join(t.TempDir(), "resume.safetensors")
	if err := weights.WriteSafetensors(state, map[string]weights.Array{"w": weights.FromFloat32([]int64{1}, []float32{1})},
		map[string]string{"format": "lvnet-train-state/1"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Load(state, LoadOptions{}); err == nil || !strings.Contains(err.Error(), state) || !errors.Is(err, ErrNotCheckpoint) {
		t.Errorf("Load(state file): %v", err)
	}
}

// listDir returns the names in dir, sorted.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// helperEnv names the checkpoint the helper process of TestSaveAtomic
// overwrites.
const helperEnv = "LVNET_CHECKPOINT_TEST_HELPER"

// TestSaveAtomicHelper is not a test: TestSaveAtomic runs it in a child
// process limited to 64 KiB per file written, so that Save fails halfway
// through the data.
func TestSaveAtomicHelper(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		t.Skip("helper process of TestSaveAtomic")
	}
	m, err := model.New(modeltest.SmallConfig(), 5)
	if err != nil {
		t.Fatal(err)
	}
	signal.Ignore(syscall.SIGXFSZ) // the write fails with EFBIG instead
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	lim.Cur = 64 << 10
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	err = Save(path, m, Meta{})
	if err == nil {
		t.Fatal("save succeeded despite the file size limit")
	}
	os.Stdout.WriteString("SAVE ERROR: " + err.Error() + "\n")
}

func TestSaveAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "last.safetensors")
	m := newModel(t, modeltest.SmallConfig())
	if err := Save(path, m, Meta{Epoch: 1}); err != nil {
		t.Fatal(err)
	}
	prev, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	intact := func(t *testing.T) {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(b, prev) {
			t.Errorf("previous checkpoint changed (%v)", err)
		}
		if got := listDir(t, dir); !slices.Equal(got, []string{"last.safetensors"}) {
			t.Errorf("directory holds %v, want only last.safetensors (no temporary files)", got)
		}
	}

	t.Run("write fails halfway", func(t *testing.T) {
		if runtime.GOOS != "linux" {
			t.Skip("needs RLIMIT_FSIZE semantics of Linux")
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestSaveAtomicHelper$", "-test.v")
		cmd.Env = append(os.Environ(), helperEnv+"="+path)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "SAVE ERROR: ") {
			t.Fatalf("helper: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), path) || !strings.Contains(string(out), "file too large") {
			t.Errorf("helper's error does not name the file and the reason:\n%s", out)
		}
		intact(t)
	})
	t.Run("rename fails", func(t *testing.T) {
		// A directory in the way: the data is written, the rename fails.
		sub := filepath.Join(dir, "sub.safetensors")
		if err := os.Mkdir(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sub, "keep"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := Save(sub, m, Meta{}); err == nil || !strings.Contains(err.Error(), sub) {
			t.Errorf("save over a directory: error %v", err)
		}
		os.RemoveAll(sub)
		intact(t)
	})
	t.Run("freed model", func(t *testing.T) {
		m2, err := model.New(modeltest.SmallConfig(), 1)
		if err != nil {
			t.Fatal(err)
		}
		m2.Free()
		if err := Save(path, m2, Meta{}); err == nil {
			t.Errorf("saving a freed model succeeded")
		}
		intact(t)
	})
}
