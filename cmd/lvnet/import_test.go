package main

import (
	"archive/zip"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lvnet-go/lvnet/checkpoint"
	"github.com/lvnet-go/lvnet/internal/shared"
	"github.com/lvnet-go/lvnet/weights"
)

var importCmd cmdFunc = importMain

// TestImportOfficialGolden imports the golden partial checkpoint of the
// authors' training code: refused without --allow-partial, then written with
// its values, provenance and the missing tensors listed.
func TestImportOfficialGolden(t *testing.T) {
	if testing.Short() {
		t.Skip("paper-sized model (package checkpoint tests the import itself): skipped in -short mode")
	}
	in := shared.Path(t, "golden", "lvnet_partial_checkpoint.pth.tar")
	dir := t.TempDir()
	out := filepath.Join(dir, "lvnet.safetensors")

	_, stderr, err := runCmd(t, importCmd, "--format", "official", in, "--out", out)
	var ue *usageError
	if err == nil || errors.As(err, &ue) || !strings.Contains(err.Error(), "--allow-partial") || !strings.Contains(err.Error(), "missing: ") {
		t.Fatalf("partial checkpoint without --allow-partial: %v", err)
	}
	if !strings.Contains(stderr, "tensors missing from the file: HBFusion (6)") {
		t.Errorf("stderr does not list the missing tensors:\n%s", stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("output written despite the error (%v)", err)
	}

	stdout, stderr, err := runCmd(t, importCmd, "--format", "official", "--allow-partial", "-v", in, "-o", out)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "wrote "+out) || !strings.Contains(stdout, "epoch 13") {
		t.Errorf("summary: %s", stdout)
	}
	if !strings.Contains(stderr, "(default initialisation kept):\n  xception_rgb.model.conv1.weight\n") {
		t.Errorf("-v does not list every missing tensor:\n%.500s", stderr)
	}
	meta, err := checkpoint.ReadMeta(out)
	if err != nil {
		t.Fatal(err)
	}
	p := meta.Provenance
	if p.Source != checkpoint.SourceImported || p.From != filepath.Base(in) || p.FromFormat != "official" ||
		len(p.FromSHA256) != 64 || p.SourceEpoch == nil || *p.SourceEpoch != 13 || p.LVNet != Version {
		t.Errorf("provenance %+v", p)
	}
	if meta.Config.SSPSL || meta.Config.ImageSize != 299 {
		t.Errorf("config %+v, want the supervised paper model", meta.Config)
	}
	// The written tensors hold the checkpoint's values (deterministic rule;
	// the checkpoint's BatchNorm statistics were updated by one training
	// step, so only parameters are compared).
	got, _, err := weights.ReadSafetensors(out)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for k, a := range got {
		mod := strings.SplitN(k, ".", 2)[0]
		if (mod == "cmc0" || mod == "lfe0" || mod == "seg_header") && strings.HasSuffix(k, "weight") && !strings.Contains(k, "running") {
			v, _ := a.Float32s()
			if !slices.Equal(v, weights.Deterministic(k, a.Shape)) {
				t.Errorf("%s: values differ from the golden checkpoint's", k)
			}
			checked++
		}
	}
	if checked < 3 {
		t.Errorf("only %d cmc0/lfe0/seg_header weights compared", checked)
	}
}

func TestImportXceptionGolden(t *testing.T) {
	if testing.Short() {
		t.Skip("paper-sized model (package checkpoint tests the import itself): skipped in -short mode")
	}
	in := shared.Path(t, "golden", "xception_imagenet_partial.pth")
	out := filepath.Join(t.TempDir(), "init.safetensors")
	if _, _, err := runCmd(t, importCmd, "--format", "xception-imagenet", in, "-o", out); err == nil || !strings.Contains(err.Error(), "missing: xception_rgb.model.block2") {
		t.Fatalf("partial ImageNet file without --allow-partial: %v", err)
	}
	stdout, _, err := runCmd(t, importCmd, "--format", "xception-imagenet", "--allow-partial", in, "-o", out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, "supervised LVNet") {
		t.Errorf("summary: %s", stdout)
	}
	got, _, err := weights.ReadSafetensors(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"conv1.weight", "bn1.weight", "block1.rep.0.pointwise.weight", "block1.skip.weight"} {
		want := weights.Deterministic(weights.RGBPrefix+k, got[weights.RGBPrefix+k].Shape)
		for _, p := range []string{weights.RGBPrefix, weights.SRMPrefix} {
			v, err := got[p+k].Float32s()
			if err != nil || !slices.Equal(v, want) {
				t.Errorf("%s%s: not the file's values (%v)", p, k, err)
			}
		}
	}
	if _, ok := got["pro_header.2.weight"]; ok {
		t.Error("the supervised model has a pro_header")
	}
}

func TestImportRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.safetensors")
	renamed := filepath.Join(dir, "checkpoint.pth.tar")
	if err := os.WriteFile(renamed, []byte("epoch,loss\n1,0.5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A torch.save archive whose pickle calls os.system.
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("archive/data.pkl")
	w.Write([]byte("\x80\x02cos\nsystem\n(X\x05\x00\x00\x00touch" + "tR."))
	w, _ = zw.Create("archive/version")
	w.Write([]byte("3\n"))
	zw.Close()
	evil := filepath.Join(dir, "evil.pth")
	if err := os.WriteFile(evil, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	// A damaged copy of a real checkpoint.
	good, err := os.ReadFile(shared.Path(t, "golden", "lvnet_partial_checkpoint.pth.tar"))
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dir, "cut.pth.tar")
	if err := os.WriteFile(cut, good[:len(good)*2/3], 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, in, want string
	}{
		{"renamed text file", renamed, ""},
		{"os.system pickle", evil, "refusing to load global os.system"},
		{"truncated", cut, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runCmd(t, importCmd, "--format", "official", "--allow-partial", tt.in, "-o", out)
			var ue *usageError
			if err == nil || errors.As(err, &ue) || !strings.Contains(err.Error(), tt.in) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one naming %s (and %q)", err, tt.in, tt.want)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("output written")
			}
		})
	}
}

func TestImportUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no input", []string{"--format", "official", "-o", "x.safetensors"}, "one input"},
		{"two inputs", []string{"--format", "official", "a.pth", "b.pth", "-o", "x.safetensors"}, "one input"},
		{"no format", []string{"a.pth", "-o", "x.safetensors"}, "--format is required"},
		{"bad format", []string{"--format", "keras", "a.pth", "-o", "x.safetensors"}, `unknown --format "keras"`},
		{"no output", []string{"--format", "official", "a.pth"}, "-o"},
		{"sspsl with official", []string{"--format", "official", "--sspsl", "a.pth", "-o", "x.safetensors"}, "--sspsl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runCmd(t, importCmd, tt.args...)
			var ue *usageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want a usage error mentioning %q", err, tt.want)
			}
		})
	}
}
