package train

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lvnet-go/lvnet/model"
	"github.com/lvnet-go/lvnet/torch"
	"github.com/lvnet-go/lvnet/weights"
)

// writeSet makes a small plain-folder dataset: reals are smooth gradients,
// fakes carry a bright square (also given as a mask), so a model can learn.
func writeSet(t *testing.T, dir string, n int) {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	for _, sub := range []string{"real", "fake", "masks"} {
		if err := os.MkdirAll(filepath.Join(dir, "m", sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		for _, label := range []string{"real", "fake"} {
			img := image.NewRGBA(image.Rect(0, 0, 72, 72))
			mask := image.NewGray(img.Bounds())
			base := uint8(r.IntN(120))
			x0, y0 := 10+r.IntN(30), 10+r.IntN(30)
			for y := 0; y < 72; y++ {
				for x := 0; x < 72; x++ {
					c := color.RGBA{base + uint8(x), base + uint8(y), base, 255}
					if label == "fake" && x >= x0 && x < x0+20 && y >= y0 && y < y0+20 {
						c = color.RGBA{250, 240, uint8(r.IntN(255)), 255}
						mask.SetGray(x, y, color.Gray{255})
					}
					img.SetRGBA(x, y, c)
				}
			}
			name := filepath.Join(dir, "m", label, "image_"+string(rune('a'+i))+"_0.png")
			writePNG(t, name, img)
			if label == "fake" {
				writePNG(t, filepath.Join(dir, "m", "masks", filepath.Base(name)), mask)
			}
		}
	}
}

func writePNG(t *testing.T, path string, img image.Image) {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func tinyConfig() Config {
	c, _ := Preset("smoke")
	c.Model.ImageSize = 64
	c.Model.Width = 0.0625
	c.Model.Dropout = 0.1
	c.BatchSize = 4
	c.Epochs = 3
	c.Limit = 0
	c.Workers = 2
	c.LR = 2e-3
	return c
}

func saveStateOnly(path string, m *model.LVNet, meta map[string]any) error {
	arrs, err := m.State()
	if err != nil {
		return err
	}
	b, _ := json.Marshal(meta)
	return weights.WriteSafetensors(path, arrs, map[string]string{"meta": string(b)})
}

func runOpts(dir, out string, cfg Config) Options {
	return Options{Config: cfg, Train: dir, Out: out, Device: torch.CPU, Log: &bytes.Buffer{}, Save: saveStateOnly}
}

func readSteps(t *testing.T, path string) []map[string]any { return readKind(t, path, "step") }

// readKind returns the metrics.jsonl lines of one kind (step, epoch).
func readKind(t *testing.T, path, kind string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		if v["kind"] == kind {
			out = append(out, v)
		}
	}
	return out
}

// A short run on learnable data: the loss falls and the files of a run
// directory appear.
func TestTrainLossFalls(t *testing.T) {
	dir := t.TempDir()
	writeSet(t, dir, 8)
	out := filepath.Join(t.TempDir(), "run")
	cfg := tinyConfig()
	cfg.Epochs = 6
	cfg.Mixup = false
	cfg.Augment = false
	res, err := Run(context.Background(), runOpts(dir, out, cfg))
	if err != nil {
		t.Fatal(err)
	}
	if res.Interrupted || res.Epoch != cfg.Epochs {
		t.Fatalf("run ended at epoch %d (interrupted %v)", res.Epoch, res.Interrupted)
	}
	steps := readSteps(t, filepath.Join(out, "metrics.jsonl"))
	if len(steps) != cfg.Epochs*4 {
		t.Fatalf("%d step lines, want %d", len(steps), cfg.Epochs*4)
	}
	mean := func(ss []map[string]any) float64 {
		var s float64
		for _, v := range ss {
			s += v["loss"].(float64)
		}
		return s / float64(len(ss))
	}
	first, last := mean(steps[:4]), mean(steps[len(steps)-4:])
	t.Logf("mean loss first epoch %.4f, last epoch %.4f", first, last)
	if !(last < first*0.9) {
		t.Errorf("loss did not fall: first epoch %.4f, last epoch %.4f", first, last)
	}
	for _, f := range []string{"last.safetensors", "best.safetensors", "last.optim.safetensors", "best.optim.safetensors", "config.yaml"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("run directory lacks %s", f)
		}
	}
	if _, err := Run(context.Background(), runOpts(dir, out, cfg)); err == nil || !strings.Contains(err.Error(), "--resume") {
		t.Errorf("a second run into the same directory should ask for --resume, got %v", err)
	}
}

// Killing a run after any step and resuming it reproduces the uninterrupted
// run's weights bit for bit (same data order, augmentation, mixup and dropout
// draws).
func TestResumeIsBitExact(t *testing.T) {
	dir := t.TempDir()
	writeSet(t, dir, 6)
	cfg := tinyConfig()
	cfg.Epochs = 2 // 3 batches of 4 per epoch: 6 steps, mixup and augmentation on

	full := filepath.Join(t.TempDir(), "full")
	if _, err := Run(context.Background(), runOpts(dir, full, cfg)); err != nil {
		t.Fatal(err)
	}
	want, _, err := weights.ReadSafetensors(filepath.Join(full, "last.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	for _, stopAfter := range []int{2, 4} { // mid-epoch, and at an epoch's last batch
		out := filepath.Join(t.TempDir(), "parts")
		o := runOpts(dir, out, cfg)
		o.MaxSteps = stopAfter
		res, err := Run(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Interrupted || res.Step != stopAfter {
			t.Fatalf("first part: interrupted %v at step %d, want step %d", res.Interrupted, res.Step, stopAfter)
		}
		o.MaxSteps = 0
		o.Resume = true
		if res, err = Run(context.Background(), o); err != nil {
			t.Fatal(err)
		}
		if res.Interrupted || res.Step != 6 {
			t.Fatalf("resumed run: interrupted %v at step %d", res.Interrupted, res.Step)
		}
		if diff := differingTensors(t, want, filepath.Join(out, "last.safetensors")); diff > 0 {
			t.Errorf("stopped after %d steps: %d of %d tensors differ from the uninterrupted run", stopAfter, diff, len(want))
		}
		if n := len(readSteps(t, filepath.Join(out, "metrics.jsonl"))); n != 6 {
			t.Errorf("stopped after %d steps: metrics.jsonl has %d step lines, want 6", stopAfter, n)
		}
		// The epoch summaries cover whole epochs, also the resumed one.
		wantEp, gotEp := readEpochs(t, filepath.Join(full, "metrics.jsonl")), readEpochs(t, filepath.Join(out, "metrics.jsonl"))
		if len(gotEp) != 2 {
			t.Fatalf("stopped after %d steps: %d epoch lines, want 2", stopAfter, len(gotEp))
		}
		for i := range wantEp {
			for _, k := range []string{"train_loss", "train_acc", "train_loss_cls", "train_loss_seg"} {
				if gotEp[i][k] != wantEp[i][k] {
					t.Errorf("stopped after %d steps: epoch %d %s = %v, uninterrupted %v", stopAfter, i+1, k, gotEp[i][k], wantEp[i][k])
				}
			}
		}
	}
}

func readEpochs(t *testing.T, path string) []map[string]any { return readKind(t, path, "epoch") }

// Ctrl-C (or MaxSteps) between two saves of the resume state (save_every
// 3, stopped after 2 steps) still saves the complete state: the resumed run
// reproduces the uninterrupted one bit for bit.
func TestInterruptSavesResumeState(t *testing.T) {
	dir := t.TempDir()
	writeSet(t, dir, 6)
	cfg := tinyConfig()
	cfg.Epochs = 2 // 3 batches of 4 per epoch: 6 steps
	cfg.SaveEvery = 3

	full := filepath.Join(t.TempDir(), "full")
	if _, err := Run(context.Background(), runOpts(dir, full, cfg)); err != nil {
		t.Fatal(err)
	}
	want, _, err := weights.ReadSafetensors(filepath.Join(full, "last.safetensors"))
	if err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(t.TempDir(), "parts")
	o := runOpts(dir, out, cfg)
	o.MaxSteps = 2
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Interrupted || res.Step != 2 {
		t.Fatalf("first part: interrupted %v at step %d, want step 2", res.Interrupted, res.Step)
	}
	if _, err := os.Stat(filepath.Join(out, "last.optim.safetensors")); err != nil {
		t.Fatalf("no resume state after the interruption: %v", err)
	}
	o.MaxSteps = 0
	o.Resume = true
	if res, err = Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if res.Interrupted || res.Step != 6 {
		t.Fatalf("resumed run: interrupted %v at step %d", res.Interrupted, res.Step)
	}
	if diff := differingTensors(t, want, filepath.Join(out, "last.safetensors")); diff > 0 {
		t.Errorf("%d of %d tensors differ from the uninterrupted run", diff, len(want))
	}
	if n := len(readSteps(t, filepath.Join(out, "metrics.jsonl"))); n != 6 {
		t.Errorf("metrics.jsonl has %d step lines, want 6", n)
	}
}

// differingTensors counts the tensors of want whose bytes differ in the
// checkpoint at path.
func differingTensors(t *testing.T, want map[string]weights.Array, path string) int {
	t.Helper()
	got, _, err := weights.ReadSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	diff := 0
	for k, w := range want {
		if !bytes.Equal(w.Data, got[k].Data) {
			diff++
		}
	}
	return diff
}
