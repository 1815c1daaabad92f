package main

import (
	"bytes"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lvnet-go/lvnet/checkpoint"
	"github.com/lvnet-go/lvnet/detect"
	"github.com/lvnet-go/lvnet/internal/shared"
	"github.com/lvnet-go/lvnet/shipped"
)

// TestDetectWithoutFlags is the fresh-clone check: with no --model, no
// $LVNET_MODEL and no ../shared, lvnet detect runs the shipped model (written
// to the cache folder on first use) and labels with its stored threshold.
func TestDetectWithoutFlags(t *testing.T) {
	t.Setenv(detect.ModelEnv, "")
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	t.Setenv(shared.Env, filepath.Join(t.TempDir(), "no-shared"))
	img := filepath.Join(t.TempDir(), "face.png")
	var b bytes.Buffer
	if err := png.Encode(&b, noiseRGBA(160, 160, 5)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(img, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := runCmd(t, detectCmd, "--aligned", "--json", "--quiet", img)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	var resp jsonResponse
	if err := json.Unmarshal([]byte(stdout), &resp); err != nil || len(resp.Results) != 1 {
		t.Fatalf("output %q: %v", stdout, err)
	}
	r := resp.Results[0]
	if r.PFake == nil || *r.PFake < 0 || *r.PFake > 1 || (r.Label != "real" && r.Label != "fake") || len(r.PatchPFake) == 0 {
		t.Fatalf("result %+v", r)
	}
	written, err := filepath.Glob(filepath.Join(cache, "lvnet", "models", "lvnet-default-"+shipped.SHA256()[:12]+".safetensors"))
	if err != nil || len(written) != 1 {
		t.Fatalf("shipped model not written to the cache folder: %v %v", written, err)
	}
	// The label uses the model's stored threshold.
	meta, err := checkpoint.ReadMeta(written[0])
	if err != nil || meta.Calibration == nil {
		t.Fatalf("shipped metadata: %+v, %v", meta.Calibration, err)
	}
	if want := map[bool]string{true: "fake", false: "real"}[*r.PFake >= meta.Calibration.Threshold]; r.Label != want {
		t.Errorf("p_fake %v labelled %s with threshold %v", *r.PFake, r.Label, meta.Calibration.Threshold)
	}
	// --threshold overrides it.
	stdout, stderr, err = runCmd(t, detectCmd, "--aligned", "--quiet", "--threshold", "1", img)
	if err != nil || !strings.Contains(stdout, img) || !strings.Contains(stdout, "real") {
		t.Fatalf("table with --threshold 1: %v\n%s\n%s", err, stdout, stderr)
	}
}
