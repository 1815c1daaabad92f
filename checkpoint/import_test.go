package checkpoint

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/lvnet-go/lvnet/internal/modeltest"
	"github.com/lvnet-go/lvnet/internal/shared"
	"github.com/lvnet-go/lvnet/model"
	"github.com/lvnet-go/lvnet/weights"
)

// torchSave writes a state dict the way torch.save does (zip archive,
// pickle protocol 2, one storage per tensor) under {"epoch", "state_dict"}
// when epoch >= 0, else as a plain state dict.
func torchSave(t *testing.T, path string, sd map[string]weights.Array, epoch int32) {
	t.Helper()
	str := func(s string) string {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], uint32(len(s)))
		return "X" + string(b[:]) + s
	}
	i32 := func(v int64) string {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], uint32(int32(v)))
		return "J" + string(b[:])
	}
	tuple := func(v []int64) string {
		s := "("
		for _, x := range v {
			s += i32(x)
		}
		return s + "t"
	}
	global := func(mod, name string) string { return "c" + mod + "\n" + name + "\n" }
	keys := make([]string, 0, len(sd))
	for k := range sd {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var pk strings.Builder
	pk.WriteString("\x80\x02")
	if epoch >= 0 {
		pk.WriteString("}(" + str("epoch") + i32(int64(epoch)) + str("state_dict"))
	}
	pk.WriteString(global("collections", "OrderedDict") + ")R(")
	files := map[string][]byte{}
	for i, k := range keys {
		a := sd[k]
		stype := map[string]string{weights.F32: "FloatStorage", weights.I64: "LongStorage"}[a.DType]
		if stype == "" {
			t.Fatalf("%s: dtype %s", k, a.DType)
		}
		n := a.Numel()
		stride := make([]int64, len(a.Shape))
		for d, s := len(a.Shape)-1, int64(1); d >= 0; d-- {
			stride[d] = s
			s *= a.Shape[d]
		}
		id := fmt.Sprint(i)
		files[id] = a.Data
		pk.WriteString(str(k) + global("torch._utils", "_rebuild_tensor_v2") + "(" +
			"(" + str("storage") + global("torch", stype) + str(id) + str("cpu") + i32(n) + "tQ" +
			i32(0) + tuple(a.Shape) + tuple(stride) + "\x89" + global("collections", "OrderedDict") + ")R" + "tR")
	}
	pk.WriteString("u")
	if epoch >= 0 {
		pk.WriteString("u")
	}
	pk.WriteString(".")

	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	add := func(name string, b []byte) {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: "archive/" + name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
	}
	add("data.pkl", []byte(pk.String()))
	for i := range keys {
		add("data/"+fmt.Sprint(i), files[fmt.Sprint(i)])
	}
	add("version", []byte("3\n"))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestImportOfficialRoundTrip exports a whole (small) model as the
// authors' training code saves it, with and without the SSPSL head and the
// DDP prefix, and imports it back.
func TestImportOfficialRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		name   string
		sspsl  bool
		prefix string
	}{
		{"supervised DDP", false, "module."},
		{"semi-supervised", true, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := modeltest.SmallConfig()
			cfg.SSPSL = tt.sspsl
			src := newModel(t, cfg)
			st := state(t, src)
			sd := map[string]weights.Array{}
			for k, a := range st {
				if k != srmKernel { // the authors' checkpoints may lack it
					sd[tt.prefix+k] = a
				}
			}
			path := filepath.Join(t.TempDir(), "checkpoint-07.pth.tar")
			torchSave(t, path, sd, 7)

			base := modeltest.SmallConfig()
			base.SSPSL = !tt.sspsl // detection from the keys overrides it
			imp, err := Import(path, ImportOptions{Format: FormatOfficial, Config: base})
			if err != nil {
				t.Fatal(err)
			}
			defer imp.Model.Free()
			if imp.Model.Config.SSPSL != tt.sspsl || imp.Meta.Config != cfg {
				t.Errorf("SSPSL %v (meta %+v), want %v", imp.Model.Config.SSPSL, imp.Meta.Config, tt.sspsl)
			}
			if !imp.Report.OK() || len(imp.Defaulted) != 1 || imp.Defaulted[0] != srmKernel || imp.Loaded != len(sd) {
				t.Errorf("report %s, defaulted %v, loaded %d of %d", imp.Report, imp.Defaulted, imp.Loaded, len(sd))
			}
			equalStates(t, state(t, imp.Model), st)
			p := imp.Meta.Provenance
			if p.Source != SourceImported || p.From != "checkpoint-07.pth.tar" || p.FromFormat != FormatOfficial ||
				p.SourceEpoch == nil || *p.SourceEpoch != 7 {
				t.Errorf("provenance %+v", p)
			}
		})
	}
}

// someState exports the model's tensors named in file or starting with one
// of the prefixes (exporting a whole paper-sized model is slow).
func someState(t *testing.T, m *model.LVNet, file map[string]weights.Array, prefixes ...string) map[string]weights.Array {
	t.Helper()
	out := map[string]weights.Array{}
	for _, e := range m.Store.Entries() {
		_, ok := file[e.Name]
		for _, p := range prefixes {
			ok = ok || strings.HasPrefix(e.Name, p)
		}
		if !ok {
			continue
		}
		a, err := model.TensorArray(e.T)
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name] = a
	}
	return out
}

// checkRule compares the imported tensors of the keys in file (LVNet names)
// with the golden deterministic rule applied to ruleKey(key): parameters
// always, BatchNorm running statistics only where the file's
// num_batches_tracked is 0 (the golden checkpoint's were updated by a
// training step). It returns the number of tensors compared.
func checkRule(t *testing.T, got, file map[string]weights.Array, ruleKey func(string) string) int {
	t.Helper()
	n := 0
	for k := range file {
		if strings.HasSuffix(k, "num_batches_tracked") {
			continue
		}
		if bn, ok := strings.CutSuffix(k, ".running_mean"); ok || strings.HasSuffix(k, ".running_var") {
			if !ok {
				bn = strings.TrimSuffix(k, ".running_var")
			}
			c, err := file[bn+".num_batches_tracked"].Int64s()
			if err != nil || c[0] != 0 {
				continue
			}
		}
		a, ok := got[k]
		if !ok {
			t.Errorf("%s not in the model", k)
			continue
		}
		v, err := a.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		if want := weights.Deterministic(ruleKey(k), a.Shape); !slices.Equal(v, want) {
			t.Errorf("%s: imported values differ from the rule", k)
		}
		n++
	}
	return n
}

func TestImportGoldenOfficial(t *testing.T) {
	path := shared.Path(t, "golden", "lvnet_partial_checkpoint.pth.tar")
	// Without --allow-partial the missing tensors are an error listing them.
	imp, err := Import(path, ImportOptions{Format: FormatOfficial})
	if err == nil {
		imp.Model.Free()
		t.Fatal("partial checkpoint imported without AllowPartial")
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "--allow-partial") ||
		!strings.Contains(err.Error(), "missing: xception_rgb.model.conv1.weight") {
		t.Errorf("error %v", err)
	}
	if imp == nil || imp.Model != nil || len(imp.Report.Missing) == 0 {
		t.Fatalf("error result %+v", imp)
	}

	imp, err = Import(path, ImportOptions{Format: FormatOfficial, AllowPartial: true, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	defer imp.Model.Free()
	if imp.Model.Config != func() model.Config { c := model.Paper(); c.SSPSL = false; return c }() {
		t.Errorf("config %+v, want the supervised paper model", imp.Model.Config)
	}
	raw, _, err := weights.ReadStateDict(path)
	if err != nil {
		t.Fatal(err)
	}
	file := weights.FromOfficial(raw)
	got := someState(t, imp.Model, file, "xception_srm.model.bn1.", "cls_header.0.bias", "HBFusion.Trans1.weight", srmKernel)
	if n := checkRule(t, got, file, func(k string) string { return k }); n < len(file)/2 {
		t.Errorf("compared only %d of %d tensors", n, len(file))
	}
	// Counters come from the file.
	for k, a := range file {
		if strings.HasSuffix(k, "num_batches_tracked") && !bytes.Equal(got[k].Data, a.Data) {
			t.Errorf("%s not imported", k)
		}
	}
	// Every model key the file lacks is reported, except the SRM filters.
	keys := modeltest.AuthorsKeys(t)
	want := 0
	for _, ks := range keys {
		if _, ok := file[ks.Key]; !ok && ks.Key != srmKernel {
			want++
		}
	}
	r := imp.Report
	if len(r.Missing) != want || slices.Contains(r.Missing, srmKernel) || len(r.Unexpected) != 0 || len(r.Mismatched) != 0 {
		t.Errorf("report: %d missing (want %d), %s", len(r.Missing), want, r)
	}
	if len(imp.Defaulted) != want+1 || imp.Loaded != len(file) {
		t.Errorf("%d defaulted, %d loaded; want %d, %d", len(imp.Defaulted), imp.Loaded, want+1, len(file))
	}
	// Missing tensors keep PyTorch's default initialisation: BatchNorm 1
	// and 0, linear weights within +-1/sqrt(fan_in), the fixed SRM filters.
	defaults := []struct {
		key    string
		lo, hi float32
	}{
		{"xception_srm.model.bn1.weight", 1, 1},
		{"xception_srm.model.bn1.running_var", 1, 1},
		{"xception_srm.model.bn1.running_mean", 0, 0},
		{"cls_header.0.bias", 0, 0},
		{"HBFusion.Trans1.weight", -1 / 43.63, 1 / 43.63}, // fan_in 1904
		{srmKernel, -1, 8.0 / 12},                         // K_1..K_3 scaled: -1 to 8/12
	}
	for _, d := range defaults {
		v, err := got[d.key].Float32s()
		if err != nil {
			t.Fatal(err)
		}
		lo, hi := slices.Min(v), slices.Max(v)
		if lo < d.lo || hi > d.hi {
			t.Errorf("%s in [%v, %v], want the default initialisation within [%v, %v]", d.key, lo, hi, d.lo, d.hi)
		}
	}
	b, _ := os.ReadFile(path)
	sum := sha256.Sum256(b)
	p := imp.Meta.Provenance
	if p.From != filepath.Base(path) || p.FromFormat != FormatOfficial || p.FromSHA256 != hex.EncodeToString(sum[:]) ||
		p.SourceEpoch == nil || *p.SourceEpoch != 13 || p.Seed != 9 {
		t.Errorf("provenance %+v", p)
	}
	// The file holds nothing of the SRM backbone.
	nSRM := 0
	for _, ks := range keys {
		if strings.HasPrefix(ks.Key, weights.SRMPrefix) {
			nSRM++
		}
	}
	if g := GroupKeys(r.Missing); !strings.Contains(g, "HBFusion (6)") || !strings.Contains(g, fmt.Sprintf("xception_srm.model (%d)", nSRM)) ||
		!strings.Contains(g, "xception_rgb.model (") {
		t.Errorf("GroupKeys: %s", g)
	}
}

func TestImportGoldenXception(t *testing.T) {
	path := shared.Path(t, "golden", "xception_imagenet_partial.pth")
	imp, err := Import(path, ImportOptions{Format: FormatXceptionImageNet})
	if err == nil {
		imp.Model.Free()
		t.Fatal("partial ImageNet file imported without AllowPartial")
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "missing: xception_rgb.model.block2.") {
		t.Errorf("error %v", err)
	}
	imp, err = Import(path, ImportOptions{Format: FormatXceptionImageNet, AllowPartial: true})
	if err != nil {
		t.Fatal(err)
	}
	defer imp.Model.Free()
	raw, _, err := weights.ReadStateDict(path)
	if err != nil {
		t.Fatal(err)
	}
	file, err := weights.FromXceptionImageNet(raw)
	if err != nil {
		t.Fatal(err)
	}
	got := someState(t, imp.Model, file)
	// The file holds the rule's values of the RGB backbone's keys; both
	// backbones get them.
	rgbKey := func(k string) string { return strings.Replace(k, weights.SRMPrefix, weights.RGBPrefix, 1) }
	if n := checkRule(t, got, file, rgbKey); n < len(file)/2 {
		t.Errorf("compared only %d of %d tensors", n, len(file))
	}
	for k := range file {
		if strings.HasPrefix(k, "fc.") || !strings.HasPrefix(k, "xception_") {
			t.Errorf("%s imported", k)
		}
	}
	for _, k := range imp.Report.Missing {
		if !strings.HasPrefix(k, "xception_") || strings.Contains(k, "last_linear") {
			t.Errorf("%s reported missing: the format never provides it", k)
		}
	}
	if !slices.Contains(imp.Defaulted, "HBFusion.Trans1.weight") || !slices.Contains(imp.Defaulted, "xception_rgb.model.last_linear.1.weight") {
		t.Errorf("head tensors not listed as default-initialised")
	}
	if imp.Model.Config != model.Paper() {
		t.Errorf("config %+v, want Paper()", imp.Model.Config)
	}

	// A format mix-up is named.
	off := shared.Path(t, "golden", "lvnet_partial_checkpoint.pth.tar")
	if _, err := Import(off, ImportOptions{Format: FormatXceptionImageNet}); err == nil || !strings.Contains(err.Error(), "--format official") {
		t.Errorf("official file as ImageNet: %v", err)
	}
}

func TestImportErrors(t *testing.T) {
	dir := t.TempDir()
	text := writeFile(t, dir, "notes.pth", []byte("this is not a checkpoint\n"))
	cut := func() string {
		b, err := os.ReadFile(shared.Path(t, "golden", "xception_imagenet_partial.pth"))
		if err != nil {
			t.Fatal(err)
		}
		return writeFile(t, dir, "cut.pth", b[:len(b)/2])
	}()
	shape := filepath.Join(dir, "shape.pth")
	torchSave(t, shape, map[string]weights.Array{"cls_header.5.bias": weights.FromFloat32([]int64{3}, []float32{1, 2, 3})}, 1)
	tests := []struct {
		name string
		opts ImportOptions
		path string
		want string
	}{
		{"absent", ImportOptions{Format: FormatOfficial}, filepath.Join(dir, "absent.pth"), "no such file"},
		{"text file", ImportOptions{Format: FormatOfficial}, text, ""},
		{"truncated", ImportOptions{Format: FormatXceptionImageNet}, cut, ""},
		{"no format", ImportOptions{}, text, "no format"},
		{"unknown format", ImportOptions{Format: "keras"}, text, `unknown format "keras"`},
		{"ImageNet file as official", ImportOptions{Format: FormatOfficial, Config: modeltest.SmallConfig()},
			shared.Path(t, "golden", "xception_imagenet_partial.pth"), "unexpected: block1.rep.0.conv1.weight"},
		{"mis-shaped even when partial", ImportOptions{Format: FormatOfficial, AllowPartial: true, Config: modeltest.SmallConfig()}, shape,
			"mismatched: cls_header.5.bias"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			imp, err := Import(tt.path, tt.opts)
			if err == nil {
				imp.Model.Free()
				t.Fatal("imported")
			}
			if !strings.Contains(err.Error(), tt.path) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q\nwant one naming %s and containing %q", err, tt.path, tt.want)
			}
		})
	}
}

func TestGroupKeys(t *testing.T) {
	tests := []struct {
		keys []string
		want string
	}{
		{nil, ""},
		{[]string{"cls_header.5.bias"}, "cls_header (1)"},
		{[]string{"score1.bn.weight", "HBFusion.Trans1.weight", "score1.conv.weight", "xception_srm.model.bn1.bias",
			"xception_srm.model.block2.rep.0.conv1.weight", "xception_rgb.model.conv1.weight"},
			"HBFusion (1), score1 (2), xception_rgb.model (1), xception_srm.model (2)"},
		{[]string{"weird"}, "weird (1)"},
	}
	for _, tt := range tests {
		if got := GroupKeys(tt.keys); got != tt.want {
			t.Errorf("GroupKeys(%v) = %q, want %q", tt.keys, got, tt.want)
		}
	}
}
