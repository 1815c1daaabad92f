package sbi

import (
	"fmt"
	"image"
	"path/filepath"
	"testing"
)

func TestGeneratorSubsets(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 60; i++ {
		savePNG(t, filepath.Join(dir, fmt.Sprintf("%03d.png", i)), image.NewRGBA(image.Rect(0, 0, 4, 4)))
	}
	open := func(spec string) *Generator {
		t.Helper()
		d, o, err := ParseSpec("sbi:" + dir + spec)
		if err != nil {
			t.Fatal(err)
		}
		o.Cache = "-"
		g, err := NewGenerator(d, o)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	tr, va := open("?subset=train&holdout=0.3"), open("?subset=val&holdout=0.3")
	if tr.Faces()+va.Faces() != 60 || va.Faces() == 0 || tr.Faces() == 0 {
		t.Fatalf("train %d + val %d faces, want 60 in all", tr.Faces(), va.Faces())
	}
	seen := map[string]bool{}
	for _, g := range []*Generator{tr, va} {
		for k := 0; k < g.Faces(); k++ {
			if seen[g.FacePath(k)] {
				t.Fatalf("%s on both sides", g.FacePath(k))
			}
			seen[g.FacePath(k)] = true
		}
	}
	if g := open("?limit=7&reals=1"); g.Faces() != 7 || g.Len() != 14 {
		t.Fatalf("limit 7: %d faces, %d samples", g.Faces(), g.Len())
	}
	for _, bad := range []string{"?subset=test", "?holdout=0", "?limit=0"} {
		if _, _, err := ParseSpec("sbi:" + dir + bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
