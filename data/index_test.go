package data

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestIndexRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", IndexFile)
	w, err := OpenIndexWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []IndexEntry{
		{Image: "a/1.png", Mask: "a/1_mask.png", Label: 1, Video: "v1", Frame: 3, Method: "Deepfakes",
			Landmarks: [][2]float32{{1.5, 2}, {3, 4.25}}},
		{Image: "b/2.png", Label: 0, Video: "v2", Frame: 0},
	}
	for _, e := range want {
		if err := w.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	if w.Len() != 2 {
		t.Errorf("Len = %d, want 2", w.Len())
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Append(want[0]); err == nil {
		t.Error("Append after Close succeeded")
	}
	got, err := ReadIndex(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ReadIndex = %+v, want %+v", got, want)
	}
	raw, _ := os.ReadFile(path)
	if !strings.Contains(string(raw), `"image":"a/1.png"`) || strings.Count(string(raw), "\n") != 2 {
		t.Errorf("unexpected file content %q", raw)
	}
}

func TestIndexWriterContinuesAndDropsTornLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), IndexFile)
	good := `{"image":"x.png","label":1,"frame":2}` + "\n" + "\n" + `{"image":"y.png","label":0,"frame":0}` + "\n"
	torn := `{"image":"z.png","lab`
	if err := os.WriteFile(path, []byte(good+torn), 0o644); err != nil {
		t.Fatal(err)
	}
	// A reader tolerates the torn tail.
	es, err := ReadIndex(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 || es[1].Image != "y.png" {
		t.Fatalf("ReadIndex with torn tail = %+v", es)
	}
	w, err := OpenIndexWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	if w.Len() != 2 {
		t.Errorf("Len after reopen = %d, want 2", w.Len())
	}
	if err := w.Append(IndexEntry{Image: "w.png", Label: 1, Frame: 7}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	raw, _ := os.ReadFile(path)
	want := good + `{"image":"w.png","label":1,"frame":7}` + "\n"
	if string(raw) != want {
		t.Errorf("file after reopen+append:\n%q\nwant\n%q", raw, want)
	}
}

func TestIndexUnterminatedLastLineKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), IndexFile)
	content := `{"image":"x.png","label":1}` + "\n" + `{"image":"y.png","label":0}`
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	es, err := ReadIndex(path)
	if err != nil || len(es) != 2 {
		t.Fatalf("ReadIndex = %v, %v; want 2 entries", es, err)
	}
	w, err := OpenIndexWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	if w.Len() != 2 {
		t.Errorf("Len = %d, want 2", w.Len())
	}
	if err := w.Append(IndexEntry{Image: "z.png", Label: 1}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	raw, _ := os.ReadFile(path)
	want := content + "\n" + `{"image":"z.png","label":1,"frame":0}` + "\n"
	if string(raw) != want {
		t.Errorf("file = %q, want %q", raw, want)
	}
}

func TestReadIndexErrors(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"bad json", `{"image":"a.png","label":0}` + "\n" + `{"image": oops}` + "\n", ":2:"},
		{"bad label", `{"image":"a.png","label":3}` + "\n", ":1: label 3"},
		{"no image", "\n\n" + `{"label":1}` + "\n", `:3: missing "image"`},
		{"negative frame", `{"image":"a.png","label":1,"frame":-1}` + "\n", ":1: negative frame"},
		{"wrong type", `{"image":"a.png","label":"fake"}` + "\n", ":1:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), IndexFile)
			os.WriteFile(path, []byte(tc.content), 0o644)
			_, err := ReadIndex(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("error = %v, want one naming %s and containing %q", err, path, tc.want)
			}
		})
	}
	if _, err := ReadIndex(filepath.Join(t.TempDir(), "missing.jsonl")); err == nil {
		t.Error("ReadIndex of a missing file succeeded")
	}
}

func TestIndexWriterRejectsBadEntry(t *testing.T) {
	w, err := OpenIndexWriter(filepath.Join(t.TempDir(), IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Append(IndexEntry{Label: 1}); err == nil {
		t.Error("Append without image succeeded")
	}
	if err := w.Append(IndexEntry{Image: "a", Label: 2}); err == nil {
		t.Error("Append with label 2 succeeded")
	}
	if w.Len() != 0 {
		t.Errorf("Len = %d after rejected appends", w.Len())
	}
}
