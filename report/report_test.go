package report

import (
	"errors"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/lvnet-go/lvnet/metrics"
	"github.com/lvnet-go/lvnet/viz"
)

// decodePNG opens and decodes a PNG file.
func decodePNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img
}

// testRecords writes a small face image per record into dir and returns
// records over them: 6 reals and 6 fakes in 4 videos, one file name that
// needs HTML escaping.
func testRecords(t *testing.T, dir string) []metrics.Record {
	t.Helper()
	var recs []metrics.Record
	scores := []float64{0.1, 0.2, 0.35, 0.6, 0.05, 0.3, 0.9, 0.8, 0.4, 0.95, 0.7, 0.65}
	for i, s := range scores {
		label := i / 6
		name := fmt.Sprintf("face_%02d.png", i)
		if i == 3 {
			name = `odd <b>&"name".png`
		}
		path := filepath.Join(dir, name)
		img := image.NewRGBA(image.Rect(0, 0, 64, 64))
		for p := range img.Pix {
			img.Pix[p] = uint8(40 + 10*i + p%7)
		}
		if err := viz.WritePNG(path, img); err != nil {
			t.Fatal(err)
		}
		patch := make([]float64, 4)
		patch[i%4] = s
		recs = append(recs, metrics.Record{Input: path, Video: fmt.Sprintf("v%d", i/3), Label: label, PFake: s, Patch: patch, Grid: 2})
	}
	return recs
}

func loadPNG(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return png.Decode(f)
}

const goodLog = `{"kind":"step","epoch":0,"step":1,"loss":1.2,"loss_cls":0.7,"loss_seg":0.5,"acc":0.5,"lr":0.0005,"images_per_s":30}
{"kind":"step","epoch":0,"step":2,"loss":1.0,"loss_cls":0.6,"loss_seg":0.4,"acc":0.6,"lr":0.0005,"images_per_s":31}
{"kind":"step","epoch":0,"step":3,"loss":0.9 BROKEN
{"kind":"epoch","epoch":0,"train_loss":1.1,"train_acc":55.0,"val_auc":0.71,"val_acc":60.5}

{"kind":"step","epoch":1,"step":4,"loss":0.7}
{"epoch":1}
{"kind":"config","lr":0.1}
{"kind":"epoch","epoch":1,"train_loss":0.8,"train_acc":70.0,"val_auc":0.83}
`

func TestReadTrainLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metrics.jsonl")
	if err := os.WriteFile(path, []byte(goodLog), 0o644); err != nil {
		t.Fatal(err)
	}
	log, probs, err := ReadTrainLog(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(log.Steps) != 3 || len(log.Epochs) != 2 {
		t.Fatalf("%d steps, %d epochs; want 3 and 2", len(log.Steps), len(log.Epochs))
	}
	if s := log.Steps[1]; s.Step != 2 || s.Loss != 1.0 || s.LossSeg != 0.4 || s.ImagesPerS != 31 {
		t.Errorf("step 2 = %+v", s)
	}
	if s := log.Steps[2]; s.Loss != 0.7 || !math.IsNaN(s.LossCls) {
		t.Errorf("step 4 = %+v, want loss 0.7 and NaN loss_cls", s)
	}
	if e := log.Epochs[1]; e.ValAUC != 0.83 || !math.IsNaN(e.ValAcc) {
		t.Errorf("epoch 1 = %+v, want val_auc 0.83 and NaN val_acc", e)
	}
	want := []string{path + ":3: ", path + `:7: no "kind"`}
	if len(probs) != len(want) {
		t.Fatalf("problems %q, want %d", probs, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(probs[i], w) {
			t.Errorf("problem %q, want prefix %q", probs[i], w)
		}
	}
	if _, _, err := ReadTrainLog(filepath.Join(t.TempDir(), "none.jsonl")); err == nil || !strings.Contains(err.Error(), "none.jsonl") {
		t.Errorf("missing log: %v", err)
	}
}

// srcs returns the file references (src= and href=) of an HTML page.
func srcs(html string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(html, -1) {
		out = append(out, m[1])
	}
	return out
}

func TestWrite(t *testing.T) {
	in := t.TempDir()
	recs := testRecords(t, in)
	sum, err := metrics.Compute(recs)
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(in, "metrics.jsonl")
	if err := os.WriteFile(logPath, []byte(goodLog), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "report")
	var logged []string
	err = Write(out, sum, recs, Options{
		LoadImage: loadPNG,
		Worst:     3,
		TrainLog:  logPath,
		Subtitle:  "model <m.pt>",
		Logf:      func(f string, a ...any) { logged = append(logged, fmt.Sprintf(f, a...)) },
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	html := string(b)

	// Every plot exists (the broken log line did not stop the training
	// curves) and decodes.
	for _, f := range []string{ROCFile, PRFile, HistFile, LossFile, EpochsFile, SheetFile} {
		decodePNG(t, filepath.Join(out, f))
		if !strings.Contains(html, `src="`+f+`"`) && f != SheetFile {
			t.Errorf("page does not show %s", f)
		}
	}
	// Every referenced file exists and is a PNG.
	refs := srcs(html)
	if len(refs) < 5+6 {
		t.Errorf("page references only %v", refs)
	}
	for _, ref := range refs {
		decodePNG(t, filepath.Join(out, filepath.FromSlash(ref)))
	}
	// 3 worst of each class.
	errs, _ := filepath.Glob(filepath.Join(out, ErrorsDir, "*.png"))
	if len(errs) != 6 {
		t.Errorf("%d worst-error pictures, want 6: %v", len(errs), errs)
	}
	// The numbers, with the AUC.
	if !strings.Contains(html, fmt.Sprintf("%.4f", *sum.AUC)) {
		t.Errorf("page lacks the AUC %.4f", *sum.AUC)
	}
	// The broken training log line, reported with its number.
	if !strings.Contains(html, logPath+":3:") {
		t.Errorf("page does not report line 3 of the training log")
	}
	if len(logged) == 0 || !strings.Contains(logged[0], "metrics.jsonl:3:") {
		t.Errorf("Logf got %q, want the broken line first", logged)
	}
	// File names and the subtitle are escaped.
	if strings.Contains(html, "<b>") || strings.Contains(html, "<m.pt>") {
		t.Error("page holds unescaped text")
	}
	if !strings.Contains(html, "odd &lt;b&gt;&amp;&#34;name&#34;.png") {
		t.Error("page lacks the escaped odd file name")
	}
	// Worst reals first: 0.6 (the odd name) is the most fake-looking real.
	if i, j := strings.Index(html, "odd &lt;b&gt;"), strings.Index(html, "face_02.png"); i < 0 || j < 0 || i > j {
		t.Errorf("worst real not listed first (%d, %d)", i, j)
	}
	// No temporary files left behind.
	entries, _ := os.ReadDir(out)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("leftover %s", e.Name())
		}
	}
}

func TestWriteDegraded(t *testing.T) {
	// Only fakes, no image loader, an unreadable image: the report is
	// still written and lists what is missing.
	recs := []metrics.Record{
		{Input: "a.png", Label: 1, PFake: 0.9},
		{Input: "b.png", Label: 1, PFake: 0.2},
	}
	sum, err := metrics.Compute(recs)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	failing := func(p string) (image.Image, error) { return nil, errors.New("cannot decode") }
	if err := Write(out, sum, recs, Options{LoadImage: failing, TrainLog: filepath.Join(out, "absent.jsonl")}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	html := string(b)
	for _, want := range []string{"ROC curve: ", "worst errors: a.png: cannot decode", "absent.jsonl", "no picture"} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(html, `src="`+ROCFile) {
		t.Error("page shows a ROC curve for fakes only")
	}
	for _, ref := range srcs(html) {
		decodePNG(t, filepath.Join(out, ref))
	}
	// A directory that cannot be created is an error.
	file := filepath.Join(out, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Write(filepath.Join(file, "sub"), sum, recs, Options{}); err == nil {
		t.Error("Write into a path below a file succeeded")
	}
}

func TestPlots(t *testing.T) {
	dir := t.TempDir()
	s := []float64{0.1, 0.4, 0.35, 0.8}
	l := []int{0, 0, 1, 1}
	tests := []struct {
		name string
		draw func(path string) error
		w, h int
	}{
		{"roc", func(p string) error { return PlotROC(p, []Curve{{"frames", s, l}}) }, 660, 605},
		{"pr", func(p string) error { return PlotPR(p, []Curve{{"frames", s, l}}) }, 660, 605},
		{"hist", func(p string) error { return PlotHistogram(p, s, l) }, 770, 550},
		{"loss", func(p string) error { return PlotLoss(p, []Step{{Step: 3, Loss: 1}, {Step: 1, Loss: 0.5}}) }, 770, 550},
		{"epochs", func(p string) error {
			return PlotEpochs(p, []Epoch{{Epoch: 0, ValAUC: 0.7, ValAcc: 61, TrainAcc: math.NaN()}, {Epoch: 1, ValAUC: 0.8, ValAcc: 70, TrainAcc: math.NaN()}})
		}, 770, 550},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".png")
			if err := tc.draw(path); err != nil {
				t.Fatal(err)
			}
			img := decodePNG(t, path)
			if b := img.Bounds(); b.Dx() != tc.w || b.Dy() != tc.h {
				t.Errorf("size %v, want %dx%d", b, tc.w, tc.h)
			}
			// Not blank: some pixels are neither white nor grey.
			colourful := 0
			for y := 0; y < tc.h; y += 2 {
				for x := 0; x < tc.w; x += 2 {
					r, g, b, _ := img.At(x, y).RGBA()
					if max(r, g, b)-min(r, g, b) > 0x3000 {
						colourful++
					}
				}
			}
			if colourful < 50 {
				t.Errorf("only %d coloured pixels: nothing plotted?", colourful)
			}
		})
	}
	bad := []struct {
		name string
		err  error
	}{
		{"roc one class", PlotROC(filepath.Join(dir, "x.png"), []Curve{{"f", s, []int{1, 1, 1, 1}}})},
		{"pr no fakes", PlotPR(filepath.Join(dir, "x.png"), []Curve{{"f", s, []int{0, 0, 0, 0}}})},
		{"hist nan", PlotHistogram(filepath.Join(dir, "x.png"), []float64{math.NaN()}, []int{0})},
		{"loss empty", PlotLoss(filepath.Join(dir, "x.png"), []Step{{Loss: math.NaN(), LossCls: math.NaN(), LossSeg: math.NaN()}})},
		{"epochs empty", PlotEpochs(filepath.Join(dir, "x.png"), nil)},
	}
	for _, b := range bad {
		if b.err == nil || !strings.Contains(b.err.Error(), "x.png") {
			t.Errorf("%s: error %v, want one naming x.png", b.name, b.err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "x.png")); err == nil {
		t.Error("a failed plot left a file")
	}
}

func TestIntegerTicks(t *testing.T) {
	got := integerTicks{}.Ticks(0, 4)
	if len(got) != 5 || got[0].Label != "0" || got[4].Label != "4" {
		t.Errorf("ticks %v, want 0..4", got)
	}
	if got := (integerTicks{}).Ticks(0, 30); len(got) != 11 || got[1].Value != 3 {
		t.Errorf("ticks over 30 epochs: %v, want every 3rd", got)
	}
}
