package main

import (
	"bytes"
	"errors"
	"image"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lvnet-go/lvnet/data"
)

// ellipseFaces writes n textured 80x80 faces and an index.jsonl giving each
// 68 landmarks on an ellipse (enough for every mask shape).
func ellipseFaces(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	w, err := data.OpenIndexWriter(filepath.Join(dir, data.IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	lm := make([][2]float32, 68)
	for i := range lm {
		a := 2 * math.Pi * float64(i) / 68
		lm[i] = [2]float32{float32(40 + 22*math.Cos(a)), float32(42 + 28*math.Sin(a))}
	}
	for k := 0; k < n; k++ {
		img := image.NewRGBA(image.Rect(0, 0, 80, 80))
		for i := 0; i < len(img.Pix); i += 4 {
			p := i / 4
			img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = uint8(p*7+k*40), uint8(p/80*3), uint8(p%80*3), 255
		}
		rel := filepath.Join("real", string(rune('a'+k))+".png")
		f, err := os.Create(filepath.Join(dir, rel))
		if os.IsNotExist(err) {
			os.MkdirAll(filepath.Join(dir, "real"), 0o755)
			f, err = os.Create(filepath.Join(dir, rel))
		}
		if err != nil {
			t.Fatal(err)
		}
		png.Encode(f, img)
		f.Close()
		if err := w.Append(data.IndexEntry{Image: filepath.ToSlash(rel), Landmarks: lm, Label: 0}); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	return dir
}

func TestSynthWritesPairs(t *testing.T) {
	faces := ellipseFaces(t, 2)
	out := t.TempDir()
	_, stderr, err := runCmd(t, synthMain, "--faces", faces, "--out", out, "--n", "3", "--seed", "5", "--quiet")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "3 blends") {
		t.Errorf("summary: %s", stderr)
	}
	for _, d := range []string{"fake", "masks", "real"} {
		es, _ := os.ReadDir(filepath.Join(out, d))
		var names []string
		for _, e := range es {
			names = append(names, e.Name())
		}
		if want := []string{"0000.png", "0001.png", "0002.png"}; !reflect.DeepEqual(names, want) {
			t.Errorf("%s/: %v, want %v", d, names, want)
		}
	}
	// Blend 2 reuses face 0: its real is face a.
	a, _ := os.ReadFile(filepath.Join(out, "real", "0000.png"))
	c, _ := os.ReadFile(filepath.Join(out, "real", "0002.png"))
	if !bytes.Equal(a, c) {
		t.Error("blend 2 does not reuse face 0")
	}
	// Resuming keeps what is there; a deleted blend comes back identical.
	before, _ := os.ReadFile(filepath.Join(out, "fake", "0001.png"))
	os.Remove(filepath.Join(out, "fake", "0001.png"))
	_, stderr, err = runCmd(t, synthMain, "--faces", faces, "--out", out, "--n", "3", "--seed", "5", "--quiet")
	if err != nil || !strings.Contains(stderr, "2 already there") {
		t.Fatalf("rerun: %v\n%s", err, stderr)
	}
	after, _ := os.ReadFile(filepath.Join(out, "fake", "0001.png"))
	if !bytes.Equal(before, after) {
		t.Error("the same seed made a different blend")
	}
	// The output is a plain-folder dataset with masks.
	ds, err := data.Open(out, data.Options{ImageSize: 64, Warn: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if r, f := ds.Counts(); r != 3 || f != 3 {
		t.Errorf("dataset: %d real, %d fake", r, f)
	}
	for i := 0; i < ds.Len(); i++ {
		if s := ds.Sample(i); s.Label == 1 && s.MaskPath == "" {
			t.Errorf("fake %s has no mask", s.Path)
		}
	}
}

func TestSynthUsage(t *testing.T) {
	faces := ellipseFaces(t, 1)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--out", "x"}, "--faces and --out are required"},
		{[]string{"--faces", faces, "--out", "x", "--n", "-1"}, "--n -1"},
		{[]string{"--faces", faces, "--out", "x", "--hulls", "oval"}, "unknown hull"},
		{[]string{"--faces", faces, "--out", "x", "--ratios", "0"}, `"0" is not a number in (0, 1]`},
		{[]string{"--faces", faces, "--out", "x", "extra"}, "unexpected arguments"},
	} {
		_, _, err := runCmd(t, synthMain, tc.args...)
		var ue *usageError
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.As(err, &ue) {
			t.Errorf("%v: error %v, want a usage error containing %q", tc.args, err, tc.want)
		}
	}
	if _, _, err := runCmd(t, synthMain, "--faces", filepath.Join(faces, "nope"), "--out", t.TempDir()); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing faces folder: %v", err)
	}
}

func TestSBIGeneratorsForTrain(t *testing.T) {
	faces := ellipseFaces(t, 2)
	weird := filepath.Join(t.TempDir(), "FaceForensics++")
	if err := os.MkdirAll(weird, 0o755); err != nil {
		t.Fatal(err)
	}
	if got := specParts("sbi:" + weird + "/x+" + faces); !reflect.DeepEqual(got, []string{"sbi:" + weird + "/x", faces}) {
		t.Errorf("specParts kept %q", got)
	}
	spec := "sbi:" + faces + "?reals=1+" + faces
	gens, closeAll, err := sbiGenerators(spec, "")
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll()
	if len(gens) != 1 || gens["sbi:"+faces+"?reals=1"] == nil {
		t.Fatalf("generators %v", gens)
	}
	ds, err := data.Open(spec, data.Options{ImageSize: 64, Generators: gens, Warn: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	// sbi with reals: 2 reals and 2 blends; the index adds its 2 reals.
	if r, f := ds.Counts(); r != 4 || f != 2 {
		t.Errorf("counts real %d fake %d, want 4 and 2", r, f)
	}
	if _, _, err := sbiGenerators("sbi:" + faces + "?bogus=1"); err == nil || !strings.Contains(err.Error(), "unknown parameter") {
		t.Errorf("bad sbi spec: %v", err)
	}
}
