package metrics

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/lvnet-go/lvnet/internal/shared"
)

func TestBilinear(t *testing.T) {
	tests := []struct {
		name           string
		src            []float64
		sh, sw, dh, dw int
		want           []float64
	}{
		// align_corners=False, 2 -> 4: output centres map to input
		// coordinates 0 (clamped from -.25), .25, .75, 1 (edge replicated),
		// so v(y,x) = u(x) + 2u(y) with u = 0, .25, .75, 1.
		{"up 2x2 to 4x4", []float64{0, 1, 2, 3}, 2, 2, 4, 4, []float64{
			0, 0.25, 0.75, 1,
			0.5, 0.75, 1.25, 1.5,
			1.5, 1.75, 2.25, 2.5,
			2, 2.25, 2.75, 3,
		}},
		// 4 -> 2: centres map to .5 and 2.5, the means of pairs.
		{"down 1x4 to 1x2", []float64{0, 1, 2, 3}, 1, 4, 1, 2, []float64{0.5, 2.5}},
		{"identity", []float64{1, 2, 3, 4, 5, 6}, 2, 3, 2, 3, []float64{1, 2, 3, 4, 5, 6}},
		{"constant from 1x1", []float64{0.7}, 1, 1, 2, 3, []float64{0.7, 0.7, 0.7, 0.7, 0.7, 0.7}},
		// 1x2 -> 1x3: coordinates 0 (clamped from -1/6), 0.5, 7/6 -> 1.
		{"up 1x2 to 1x3", []float64{0, 6}, 1, 2, 1, 3, []float64{0, 3, 6}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Bilinear(tc.src, tc.sh, tc.sw, tc.dh, tc.dw)
			if err != nil {
				t.Fatal(err)
			}
			if !sliceNear(got, tc.want) {
				t.Errorf("Bilinear = %v, want %v", got, tc.want)
			}
		})
	}
	if _, err := Bilinear([]float64{1, 2, 3}, 2, 2, 4, 4); err == nil {
		t.Error("Bilinear accepted 3 values for a 2x2 map")
	}
	if _, err := Bilinear([]float64{1}, 1, 1, 0, 4); err == nil {
		t.Error("Bilinear accepted an empty output size")
	}
}

func TestTargetMap(t *testing.T) {
	// 5x5 mask pooled to 2x2 with kernel 2: row 4 and column 4 are ignored.
	mask := make([]float64, 25)
	mask[4*5+4] = 1 // ignored corner
	got, err := TargetMap(mask, 5, 5, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !sliceNear(got, []float64{0, 0, 0, 0}) {
		t.Errorf("corner outside the pooled area: %v, want zeros", got)
	}
	mask[3*5+0] = 0.01 // any positive value marks the patch
	mask[0*5+3] = 1
	got, err = TargetMap(mask, 5, 5, 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := []float64{0, 1, 1, 0}; !sliceNear(got, want) {
		t.Errorf("TargetMap = %v, want %v", got, want)
	}
	if _, err := TargetMap(mask, 5, 5, 6); err == nil {
		t.Error("TargetMap accepted a grid larger than the mask")
	}
	if _, err := TargetMap(mask[:20], 5, 5, 2); err == nil {
		t.Error("TargetMap accepted a short mask")
	}
}

// readNpyF32 reads a little-endian float32 C-order .npy file.
func readNpyF32(t *testing.T, path string) ([]float64, []int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 10 || string(b[1:6]) != "NUMPY" {
		t.Fatalf("%s: not a .npy file", path)
	}
	var hl, off int
	if b[6] == 1 {
		hl, off = int(binary.LittleEndian.Uint16(b[8:10])), 10
	} else {
		hl, off = int(binary.LittleEndian.Uint32(b[8:12])), 12
	}
	header := string(b[off : off+hl])
	if !strings.Contains(header, "'<f4'") || strings.Contains(header, "'fortran_order': True") {
		t.Fatalf("%s: header %q: want C-order <f4", path, header)
	}
	m := regexp.MustCompile(`'shape': \(([^)]*)\)`).FindStringSubmatch(header)
	if m == nil {
		t.Fatalf("%s: no shape in header %q", path, header)
	}
	var shape []int
	for _, f := range strings.Split(m[1], ",") {
		if f = strings.TrimSpace(f); f != "" {
			n, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("%s: shape %q: %v", path, m[1], err)
			}
			shape = append(shape, n)
		}
	}
	data := b[off+hl:]
	out := make([]float64, len(data)/4)
	for i := range out {
		out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:])))
	}
	return out, shape
}

// TestTargetMapGolden checks the pooling against the authors' code: the
// 19x19 targets it produced for a 299x299 mask with a forged rectangle.
func TestTargetMapGolden(t *testing.T) {
	masks, ms := readNpyF32(t, shared.Path(t, "golden", "train_mask.npy"))
	want, ws := readNpyF32(t, shared.Path(t, "golden", "train_mask19.npy"))
	if fmt.Sprint(ms) != "[2 1 299 299]" || fmt.Sprint(ws) != "[2 1 19 19]" {
		t.Fatalf("shapes %v %v", ms, ws)
	}
	ones := 0
	for i := range 2 {
		got, err := TargetMap(masks[i*299*299:(i+1)*299*299], 299, 299, 19)
		if err != nil {
			t.Fatal(err)
		}
		w := want[i*361 : (i+1)*361]
		for j := range got {
			if got[j] != w[j] {
				t.Fatalf("item %d patch (%d,%d) = %v, golden %v", i, j/19, j%19, got[j], w[j])
			}
			ones += int(got[j])
		}
	}
	if ones == 0 {
		t.Fatal("golden targets are all zero: test proves nothing")
	}
}

func TestOverlap(t *testing.T) {
	var o Overlap
	if _, ok := o.IoU(); ok {
		t.Error("empty Overlap reported an IoU")
	}
	// Predicted {0, 2}, true {0, 1}: intersection 1, union 3.
	if err := o.Add([]float64{0.6, 0.4, 0.9, 0.1}, []float64{1, 1, 0, 0}, 0.5); err != nil {
		t.Fatal(err)
	}
	if v, ok := o.IoU(); !ok || !near(v, 1.0/3) {
		t.Errorf("IoU = %v %v, want 1/3", v, ok)
	}
	// Pooled with a perfect map of 2 positives: (1+2)/(3+2).
	if err := o.Add([]float64{0.7, 0.8, 0.2}, []float64{1, 1, 0}, 0.5); err != nil {
		t.Fatal(err)
	}
	if v, _ := o.IoU(); !near(v, 3.0/5) {
		t.Errorf("pooled IoU = %v, want 3/5", v)
	}
	if err := o.Add([]float64{0.7}, []float64{1, 0}, 0.5); err == nil {
		t.Error("Add accepted maps of different sizes")
	}
	if err := o.Add([]float64{math.NaN()}, []float64{1}, 0.5); err == nil {
		t.Error("Add accepted NaN")
	}
}

func TestPatchAUC(t *testing.T) {
	// Pooled patches: fakes 0.9, 0.4; reals 0.4, 0.1, 0.2 -> (3 + 1.5 + ... )
	// 0.9 beats 3, 0.4 beats 2 and ties 1: (3 + 2.5) / 6.
	auc, err := PatchAUC([][]float64{{0.9, 0.4}, {0.4, 0.1, 0.2}}, [][]float64{{1, 0}, {1, 0, 0}})
	if err != nil {
		t.Fatal(err)
	}
	if !near(auc, 5.5/6) {
		t.Errorf("PatchAUC = %v, want 5.5/6", auc)
	}
	if _, err := PatchAUC([][]float64{{0.9}}, [][]float64{{1, 0}}); err == nil {
		t.Error("PatchAUC accepted a map and target of different sizes")
	}
}

// locRecord is a fake with a 2x2 map whose top-left patch is 1: upsampled
// to 4x4 it is above 0.5 exactly on the top-left 2x2 pixels (values 1,
// .75, .75, .5625). The mask marks those pixels and pixel (0,2).
func locRecord() Record {
	mask := make([]float64, 16)
	for _, i := range []int{0, 1, 4, 5, 2} {
		mask[i] = 1
	}
	return Record{Input: "f.png", Label: 1, PFake: 0.9, Patch: []float64{1, 0, 0, 0}, Grid: 2, Mask: mask, MaskH: 4, MaskW: 4}
}

func TestCompute(t *testing.T) {
	recs := []Record{
		{Input: "a1.png", Video: "a", Label: 0, PFake: 0.2},
		{Input: "a2.png", Video: "a", Label: 0, PFake: 0.7},
		{Input: "b1.png", Video: "b", Label: 1, PFake: 0.9},
		{Input: "b2.png", Video: "b", Label: 1, PFake: 0.3},
		{Input: "c.png", Label: 0, PFake: 0.1},
	}
	s, err := Compute(recs)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got       *float64
		want      float64
		wantUnset bool
	}{
		{"auc", s.AUC, 5.0 / 6, false},
		{"video_auc", s.VideoAUC, 1, false},
		{"acc", s.Acc, 3.0 / 5, false}, // 0.7 real and 0.3 fake wrong
		{"acc_real", s.AccReal, 2.0 / 3, false},
		{"acc_fake", s.AccFake, 1.0 / 2, false},
		// Descending 0.9 F, 0.7 R, 0.3 F, 0.2 R, 0.1 R: AP = .5*1 + .5*2/3.
		{"ap", s.AP, 0.5 + 1.0/3, false},
		{"patch_auc", s.PatchAUC, 0, true},
		{"pixel_iou", s.PixelIoU, 0, true},
	}
	for _, c := range checks {
		switch {
		case c.wantUnset && c.got != nil:
			t.Errorf("%s = %v, want unset", c.name, *c.got)
		case !c.wantUnset && c.got == nil:
			t.Errorf("%s unset, want %v", c.name, c.want)
		case !c.wantUnset && !near(*c.got, c.want):
			t.Errorf("%s = %v, want %v", c.name, *c.got, c.want)
		}
	}
	if s.N != 5 || s.NReal != 3 || s.NFake != 2 || s.NVideos != 3 {
		t.Errorf("counts n=%d real=%d fake=%d videos=%d, want 5 3 2 3", s.N, s.NReal, s.NFake, s.NVideos)
	}
	if s.EER == nil || s.EERThreshold == nil {
		t.Fatal("EER unset")
	}
	eer, thr, _ := EER([]float64{0.2, 0.7, 0.9, 0.3, 0.1}, []int{0, 0, 1, 1, 0})
	if *s.EER != eer || *s.EERThreshold != thr {
		t.Errorf("EER %v@%v, want %v@%v", *s.EER, *s.EERThreshold, eer, thr)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"n":5`, `"auc":0.8333`, `"video_auc":1`, `"eer":`, `"ap":`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("JSON %s lacks %s", b, k)
		}
	}
	if strings.Contains(string(b), "patch_auc") {
		t.Errorf("JSON %s has patch_auc without masks", b)
	}
	rows := s.Rows()
	if len(rows) == 0 || rows[0].Key != "n" {
		t.Errorf("Rows = %v", rows)
	}
}

func TestComputeLocalisation(t *testing.T) {
	real := Record{Input: "r.png", Label: 0, PFake: 0.2, Patch: []float64{0.1, 0.2, 0.3, 0.4}, Grid: 2, Mask: make([]float64, 16), MaskH: 4, MaskW: 4}
	s, err := Compute([]Record{locRecord(), real})
	if err != nil {
		t.Fatal(err)
	}
	if s.NLoc != 2 {
		t.Errorf("NLoc = %d, want 2", s.NLoc)
	}
	// Targets: fake [1 1 0 0] (pixel (0,2) lies in patch (0,1)), real zeros.
	// Patch IoU: predicted {fake 0}, true {fake 0, fake 1} -> 1/2.
	// Pixel IoU: predicted 4 pixels, true 5, all 4 shared -> 4/5.
	// Patch AUC: fakes 1, 0 against reals 0, 0, .1, .2, .3, .4:
	// 1 wins 6, 0 ties 2 -> (6 + 1) / 12.
	for _, c := range []struct {
		name string
		got  *float64
		want float64
	}{{"patch_iou", s.PatchIoU, 0.5}, {"pixel_iou", s.PixelIoU, 0.8}, {"patch_auc", s.PatchAUC, 7.0 / 12}} {
		if c.got == nil || !near(*c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if s.AUC == nil || *s.AUC != 1 {
		t.Errorf("auc = %v, want 1", s.AUC)
	}
}

func TestComputeErrors(t *testing.T) {
	ok := Record{Input: "ok.png", Label: 0, PFake: 0.5}
	badPatch := locRecord()
	badPatch.Patch = badPatch.Patch[:3]
	badMask := locRecord()
	badMask.MaskW = 5
	nanPatch := locRecord()
	nanPatch.Patch = []float64{math.NaN(), 0, 0, 0}
	tests := []struct {
		name string
		recs []Record
		want string
	}{
		{"empty", nil, "no records"},
		{"nan", []Record{ok, {Input: "x.png", Label: 1, PFake: math.NaN()}}, "x.png: p_fake NaN"},
		{"range", []Record{ok, {Input: "y.png", Label: 1, PFake: 1.5}}, "y.png: p_fake 1.5"},
		{"label", []Record{ok, {Input: "z.png", Label: -1, PFake: 0.5}}, "z.png: label -1"},
		{"patch size", []Record{ok, badPatch}, "f.png: patch map has 3 values"},
		{"mask size", []Record{ok, badMask}, "f.png: mask has 16 values, want 4x5"},
		{"patch nan", []Record{ok, nanPatch}, "f.png: patch 0 probability is NaN"},
		{"video labels", []Record{{Input: "1", Video: "v", PFake: 0.1}, {Input: "2", Video: "v", Label: 1, PFake: 0.9}}, `video "v" has frames labelled 0 (1) and 1 (2)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compute(tc.recs)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	// One class only: computable numbers are kept, AUC and EER are unset.
	s, err := Compute([]Record{{Input: "a", Label: 1, PFake: 0.9}, {Input: "b", Label: 1, PFake: 0.2}})
	if err != nil {
		t.Fatal(err)
	}
	if s.AUC != nil || s.EER != nil || s.AccReal != nil || s.Acc == nil || *s.Acc != 0.5 {
		t.Errorf("fakes only: auc %v eer %v acc_real %v acc %v", s.AUC, s.EER, s.AccReal, s.Acc)
	}
}
