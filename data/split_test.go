package data

import (
	"fmt"
	"image/color"
	"io"
	"path/filepath"
	"strings"
	"testing"
)

// dfdcFixture writes a DFDC-like folder: n reals, each with two fakes made
// from it, as .jpg names holding PNG data (the decoder sniffs the format).
func dfdcFixture(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	var csv strings.Builder
	csv.WriteString("videoname,original_width,original_height,label,original\n")
	img := flat(8, 8, color.RGBA{100, 90, 80, 255})
	for i := 0; i < n; i++ {
		r := fmt.Sprintf("r%03d", i)
		fmt.Fprintf(&csv, "%s.mp4,8,8,REAL,\n", r)
		writePNG(t, filepath.Join(dir, "real", r+".jpg"), img)
		for k := 0; k < 2; k++ {
			f := fmt.Sprintf("f%03d%c", i, 'a'+k)
			fmt.Fprintf(&csv, "%s.mp4,8,8,FAKE,%s.mp4\n", f, r)
			writePNG(t, filepath.Join(dir, "fake", f+".jpg"), img)
		}
	}
	writeFile(t, filepath.Join(dir, "metadata.csv"), csv.String())
	return dir
}

func TestDFDCSplitKeepsSourcesTogether(t *testing.T) {
	dir := dfdcFixture(t, 40)
	open := func(q string) *Dataset {
		t.Helper()
		d, err := Open("dfdc:"+dir+q, Options{Warn: io.Discard})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	all, tr, va := open(""), open("?subset=train"), open("?subset=val&holdout=0.3")
	if all.Len() != 120 {
		t.Fatalf("all: %d samples, want 120", all.Len())
	}
	tr30 := open("?subset=train&holdout=0.3")
	if tr30.Len()+va.Len() != 120 {
		t.Fatalf("train %d + val %d != 120", tr30.Len(), va.Len())
	}
	if va.Len() == 0 || tr30.Len() == 0 || tr.Len() <= tr30.Len() {
		t.Fatalf("split sizes: train(0.15) %d, train(0.3) %d, val(0.3) %d", tr.Len(), tr30.Len(), va.Len())
	}
	side := map[string]string{}
	for name, d := range map[string]*Dataset{"train": tr30, "val": va} {
		for _, s := range d.Samples() {
			g := s.Group
			if g == "" {
				t.Fatalf("%s: no group", s.Path)
			}
			if other, ok := side[g]; ok && other != name {
				t.Fatalf("group %s on both sides", g)
			}
			side[g] = name
		}
	}
	if len(side) != 40 {
		t.Fatalf("%d groups, want 40", len(side))
	}
	// A fake's group is its original; the real's its own video.
	for _, s := range all.Samples() {
		base := strings.TrimSuffix(filepath.Base(s.Path), ".jpg")
		want := "dfdc/" + base
		if s.Label == 1 {
			want = "dfdc/r" + base[1:4]
		}
		if s.Group != want || s.Method != "dfdc" {
			t.Fatalf("%s: group %q method %q, want %q", s.Path, s.Group, s.Method, want)
		}
	}
}

func TestDFDCErrors(t *testing.T) {
	dir := dfdcFixture(t, 2)
	for _, tc := range []struct{ q, want string }{
		{"?subset=test", "subset"},
		{"?holdout=1.5", "holdout"},
		{"?split=val", "unknown parameter"},
	} {
		if _, err := Open("dfdc:"+dir+tc.q, Options{Warn: io.Discard}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error about %s", tc.q, err, tc.want)
		}
	}
	writeFile(t, filepath.Join(dir, "metadata.csv"), "videoname,label\nx.mp4,REAL\n")
	if _, err := Open("dfdc:"+dir, Options{Warn: io.Discard}); err == nil || !strings.Contains(err.Error(), "original") {
		t.Errorf("missing column: %v", err)
	}
	writeFile(t, filepath.Join(dir, "metadata.csv"), "videoname,label,original\nx.mp4,MAYBE,\n")
	if _, err := Open("dfdc:"+dir, Options{Warn: io.Discard}); err == nil || !strings.Contains(err.Error(), "metadata.csv:2") {
		t.Errorf("bad label: %v", err)
	}
}

func TestSourceGroupsFFPP(t *testing.T) {
	ss := []Sample{
		{Video: "Deepfakes/033_097"}, {Video: "Face2Face/097_033"}, {Video: "youtube/033"}, {Video: "youtube/097"},
		{Video: "youtube/044"}, {Video: "FaceSwap/044_945"}, {Video: "clips/real/a.mp4"}, {Video: "x", Group: "g1"},
	}
	g := sourceGroups(ss)
	for i := 1; i < 4; i++ {
		if g[i] != g[0] {
			t.Errorf("%s in group %q, want %q", ss[i].Video, g[i], g[0])
		}
	}
	if g[4] != g[5] || g[4] == g[0] {
		t.Errorf("044 groups: %q %q (033: %q)", g[4], g[5], g[0])
	}
	if g[6] != "clips/real/a.mp4" || g[7] != "g1" {
		t.Errorf("plain groups %q %q", g[6], g[7])
	}
	// Stable: the decision of a group depends on its name only (values
	// recorded from the hash, so a change of the split is seen).
	for g, want := range map[string]bool{"dfdc/aabqyygbaa": false, "ffpp:033": false, "dfdc/adptnnwyum": true} {
		if got := InHoldout(g, 0.15); got != want {
			t.Errorf("InHoldout(%q) = %v, recorded %v", g, got, want)
		}
	}
	n := 0
	for i := 0; i < 10000; i++ {
		if InHoldout(fmt.Sprint("g", i), 0.2) {
			n++
		}
	}
	if n < 1800 || n > 2200 {
		t.Errorf("holdout 0.2 kept %d of 10000 groups", n)
	}
}

func TestSelectMethods(t *testing.T) {
	ss := []Sample{{Label: 0, Method: "youtube"}, {Label: 1, Method: "Deepfakes"}, {Label: 1, Method: "Face2Face"}, {Label: 1, Method: "FaceSwap"}}
	got := selectMethods(ss, []string{"deepfakes", " FaceSwap"})
	if len(got) != 3 || got[0].Method != "youtube" || got[1].Method != "Deepfakes" || got[2].Method != "FaceSwap" {
		t.Fatalf("selectMethods: %+v", got)
	}
}
