package main

import (
	"bytes"
	"encoding/json"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lvnet-go/lvnet/checkpoint"
	"github.com/lvnet-go/lvnet/metrics"
)

// TestCalibrateWritesCalibration calibrates a small model on a folder of
// noise faces: the copy carries a valid calibration and provenance, its
// summary uses the stored threshold, and lvnet eval applies the calibration
// (its log loss is the calibrated one).
func TestCalibrateWritesCalibration(t *testing.T) {
	ckpt := saveSmallModel(t)
	dir := t.TempDir()
	for _, class := range []string{"real", "fake"} {
		if err := os.MkdirAll(filepath.Join(dir, class), 0o755); err != nil {
			t.Fatal(err)
		}
		for i := range 6 {
			var b bytes.Buffer
			png.Encode(&b, noiseRGBA(64, 64, uint64(i)+map[string]uint64{"real": 0, "fake": 50}[class]))
			if err := os.WriteFile(filepath.Join(dir, class, string(rune('a'+i))+".png"), b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	out := filepath.Join(t.TempDir(), "cal.safetensors")
	stdout, stderr, err := runCmd(t, calibrateMain, "--model", ckpt, "--val", dir, "--out", out, "--keep-real", "0.5",
		"--data-note", "noise", "--command", "test", "--commit", "abc")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	meta, err := checkpoint.ReadMeta(out)
	if err != nil {
		t.Fatal(err)
	}
	c := meta.Calibration
	if c == nil || c.Validate() != nil || !strings.Contains(c.ThresholdRule, "0.5") || meta.Provenance.Commit != "abc" || meta.Provenance.Data != "noise" {
		t.Fatalf("calibration %+v, provenance %+v", c, meta.Provenance)
	}
	var res struct {
		Summary metrics.Summary `json:"summary"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || res.Summary.Threshold != c.Threshold || res.Summary.AccReal == nil || *res.Summary.AccReal < 0.5 {
		t.Fatalf("summary %s: %v", stdout, err)
	}
	// lvnet eval applies the calibration; --raw does not.
	evalOut, _, err := runCmd(t, evalMain, "--model", out, "--data", dir, "--json")
	if err != nil {
		t.Fatal(err)
	}
	rawOut, _, err := runCmd(t, evalMain, "--model", out, "--data", dir, "--json", "--raw")
	if err != nil {
		t.Fatal(err)
	}
	var cal, raw metrics.Summary
	json.Unmarshal([]byte(evalOut), &cal)
	json.Unmarshal([]byte(rawOut), &raw)
	if cal.LogLoss == nil || raw.LogLoss == nil || math.Abs(*cal.LogLoss-c.LogLoss) > 1e-6 || math.Abs(*raw.LogLoss-c.LogLossRaw) > 1e-6 {
		t.Errorf("eval log loss %v (raw %v), calibration says %v (raw %v)", cal.LogLoss, raw.LogLoss, c.LogLoss, c.LogLossRaw)
	}
	if cal.Threshold != c.Threshold || raw.Threshold != 0.5 {
		t.Errorf("eval thresholds %v (raw %v), want %v (0.5)", cal.Threshold, raw.Threshold, c.Threshold)
	}
	// Bad flags are usage errors.
	if _, _, err := runCmd(t, calibrateMain, "--model", ckpt, "--val", dir); err == nil || !strings.Contains(err.Error(), "--out") {
		t.Errorf("no --out: %v", err)
	}
	if _, _, err := runCmd(t, calibrateMain, "--model", ckpt, "--val", dir, "--out", out, "--keep-real", "0"); err == nil || !strings.Contains(err.Error(), "--keep-real") {
		t.Errorf("keep-real 0: %v", err)
	}
}
