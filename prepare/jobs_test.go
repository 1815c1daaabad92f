package prepare

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lvnet-go/lvnet/data"
	"github.com/lvnet-go/lvnet/internal/shard"
)

// touch creates the files (and their folders) below dir.
func touch(t *testing.T, dir string, files ...string) {
	t.Helper()
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFFPPJobs(t *testing.T) {
	root := t.TempDir()
	touch(t, root,
		"original_sequences/youtube/c23/videos/000.mp4",
		"original_sequences/youtube/c23/videos/001.mp4",
		"original_sequences/youtube/c40/videos/000.mp4",
		"manipulated_sequences/Deepfakes/c23/videos/000_001.mp4",
		"manipulated_sequences/Deepfakes/c23/videos/notes.txt",
		"manipulated_sequences/Deepfakes/masks/videos/000_001.mp4",
		"manipulated_sequences/FaceShifter/c23/videos/001_000.mp4",
	)
	if !IsFFPP(root) || IsFFPP(filepath.Join(root, "original_sequences")) {
		t.Fatal("IsFFPP does not tell the root")
	}
	jobs, err := ffppJobs(root, "c23", nil, true)
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ key, mask, panel, method string }
	var got []row
	for _, j := range jobs {
		m := ""
		if j.mask != "" {
			m, _ = filepath.Rel(root, j.mask)
		}
		got = append(got, row{j.key + map[int]string{0: " real", 1: " fake"}[j.label], filepath.ToSlash(m), j.panel, j.method})
	}
	want := []row{
		{"Deepfakes/000_001 fake", "manipulated_sequences/Deepfakes/masks/videos/000_001.mp4", "Deepfakes/000_001.mp4", "Deepfakes"},
		{"FaceShifter/001_000 fake", "", "FaceShifter/001_000.mp4", "FaceShifter"},
		{"youtube/000 real", "", "youtube/000.mp4", "youtube"},
		{"youtube/001 real", "", "youtube/001.mp4", "youtube"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("jobs:\n got %v\nwant %v", got, want)
	}
	jobs, err = ffppJobs(root, "c23", []string{"deepfakes", "youtube"}, false)
	if err != nil || len(jobs) != 3 || jobs[0].panel != "" {
		t.Errorf("methods deepfakes,youtube: %d jobs, %v", len(jobs), err)
	}
	for _, tc := range []struct {
		comp    string
		methods []string
		want    string
	}{
		{"raw", nil, `no videos in compression "raw" (found youtube/c23, youtube/c40`},
		{"c23", []string{"NeuralTextures"}, `no subset "NeuralTextures"`},
	} {
		if _, err := ffppJobs(root, tc.comp, tc.methods, false); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %v: error %v, want %q", tc.comp, tc.methods, err, tc.want)
		}
	}
}

func TestPlainJobs(t *testing.T) {
	dir := t.TempDir()
	touch(t, dir,
		"set/real/a.mp4", "set/real/b.jpg", "set/fake/a.mp4", "set/fake/x/c.png",
		"set/fake/notes.txt", "set/masks/fake/a.mp4", "set/.hidden/z.png",
		"masks/fake/a.png", "masks/fake/x/c.png", "other/a.mp4", "set/out/real/v.mp4/0000.png",
	)
	jobs, err := plainJobs([]string{filepath.Join(dir, "set")}, "", filepath.Join(dir, "masks"), filepath.Join(dir, "set", "out"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, j := range jobs {
		m := "-"
		if j.mask != "" {
			m, _ = filepath.Rel(dir, j.mask)
		}
		got = append(got, j.key+" "+map[int]string{0: "real", 1: "fake"}[j.label]+" "+filepath.ToSlash(m))
	}
	want := []string{
		"set/fake/a.mp4 fake masks/fake/a.png",
		"set/fake/x/c.png fake masks/fake/x/c.png",
		"set/real/a.mp4 real -",
		"set/real/b.jpg real -",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("jobs:\n got %q\nwant %q", got, want)
	}
	// Same names from two inputs get distinct keys; --label overrides.
	jobs, err = plainJobs([]string{filepath.Join(dir, "other/a.mp4"), filepath.Join(dir, "set/real/a.mp4")}, "fake", "", "")
	if err != nil || len(jobs) != 2 || jobs[0].key != "a.mp4" || jobs[1].key != "a.mp4_2" || jobs[1].label != 1 {
		t.Errorf("two a.mp4: %+v, %v", jobs, err)
	}
	for _, tc := range []struct {
		inputs      []string
		label, mask string
		want        string
	}{
		{[]string{filepath.Join(dir, "other")}, "", "", "cannot tell whether"},
		{[]string{filepath.Join(dir, "nope")}, "", "", "no such file"},
		{[]string{filepath.Join(dir, "set/fake/notes.txt")}, "", "", "no videos or images"},
		{[]string{filepath.Join(dir, "set")}, "", filepath.Join(dir, "masks/fake/a.png"), "is a file"},
	} {
		if _, err := plainJobs(tc.inputs, tc.label, tc.mask, ""); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.inputs, err, tc.want)
		}
	}
}

func TestCleanKeyAndLabel(t *testing.T) {
	for in, want := range map[string]string{
		"a/b c/d.mp4":  "a/b_c/d.mp4",
		"../../x.mp4":  "x.mp4",
		"./é/ü.png":    "__/__.png",
		"":             "_",
		"set//real/./": "set/real",
	} {
		if got := cleanKey(in); got != want {
			t.Errorf("cleanKey(%q) = %q, want %q", in, got, want)
		}
	}
	for p, want := range map[string]int{"/d/real/x/fake.mp4": 0, "/d/fake/real.mp4": 1, "/x/manipulated_sequences/DF/a.mp4": 1} {
		if got, ok := labelOf(p); !ok || got != want {
			t.Errorf("labelOf(%q) = %d, %v; want %d", p, got, ok, want)
		}
	}
	if _, ok := labelOf("/d/clips/a.mp4"); ok {
		t.Error("labelOf found a label in a path without one")
	}
}

func TestRepairIndex(t *testing.T) {
	out := t.TempDir()
	p := filepath.Join(out, data.IndexFile)
	lines := []string{
		`{"image":"fake/DF/a/0000.png","label":1,"video":"DF/a","frame":0}`,
		`{"image":"fake/DF/a/0001.png","label":1,"video":"DF/a","frame":1}`,
		`{"image":"real/yt/b/0000.png","label":0,"video":"yt/b","frame":0}`, // b not done
		`{"image":"fake/DF/a/0001.png","label":1,"video":"DF/a","frame":1}`, // duplicate
		`{"image":"fake/c.mp4/face2/0003.png","label":1,"video":"c.mp4/face2","frame":3}`,
	}
	os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"+`{"image":"fake/DF/a/00`), 0o644)
	os.WriteFile(filepath.Join(out, DoneFile), []byte("DF/a\nc.mp4\nyt/b"), 0o644) // yt/b torn
	done, err := readDone(filepath.Join(out, DoneFile))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(done, map[string]bool{"DF/a": true, "c.mp4": true}) {
		t.Fatalf("done %v: the torn last key must not count", done)
	}
	kept, dropped, err := repairIndex(p, done)
	if err != nil {
		t.Fatal(err)
	}
	if kept != 3 || dropped != 2 {
		t.Errorf("kept %d dropped %d, want 3 and 2", kept, dropped)
	}
	if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("repaired index: %v, mode %v; want 0644", err, st.Mode())
	}
	es, err := data.ReadIndex(p)
	if err != nil {
		t.Fatal(err)
	}
	var imgs []string
	for _, e := range es {
		imgs = append(imgs, e.Image)
	}
	if want := []string{"fake/DF/a/0000.png", "fake/DF/a/0001.png", "fake/c.mp4/face2/0003.png"}; !reflect.DeepEqual(imgs, want) {
		t.Errorf("index after repair %v, want %v", imgs, want)
	}
	// A second repair changes nothing; the done list drops its torn line.
	if _, dropped, _ := repairIndex(p, done); dropped != 0 {
		t.Errorf("second repair dropped %d", dropped)
	}
	d, err := openDone(filepath.Join(out, DoneFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.mark("yt/b"); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if b, _ := os.ReadFile(filepath.Join(out, DoneFile)); string(b) != "DF/a\nc.mp4\nyt/b\n" {
		t.Errorf("done list %q", b)
	}
}

func TestLockOut(t *testing.T) {
	out := t.TempDir()
	whole := stateOf(out, shard.Shard{})
	lock := func(s shard.Shard) (func(), error) { return stateOf(out, s).lockOut(out, s) }
	unlock, err := lock(shard.Shard{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock(shard.Shard{}); err == nil || !strings.Contains(err.Error(), "another lvnet prepare") {
		t.Errorf("second lock: %v", err)
	}
	if _, err := lock(shard.Shard{K: 0, N: 2}); err == nil || !strings.Contains(err.Error(), "without --shard") {
		t.Errorf("shard beside an unsharded run: %v", err)
	}
	unlock()
	// Shards run beside each other, not beside themselves or an unsharded run.
	s0, err := lock(shard.Shard{K: 0, N: 2})
	if err != nil {
		t.Fatal(err)
	}
	s1, err := lock(shard.Shard{K: 1, N: 2})
	if err != nil {
		t.Fatalf("two shards: %v", err)
	}
	if _, err := lock(shard.Shard{K: 1, N: 2}); err == nil || !strings.Contains(err.Error(), "another lvnet prepare --shard 1/2") {
		t.Errorf("shard 1/2 twice: %v", err)
	}
	if _, err := lock(shard.Shard{}); err == nil || !strings.Contains(err.Error(), whole.lock) {
		t.Errorf("unsharded run beside shards: %v", err)
	}
	if _, err := MergeShards(out); err == nil || !strings.Contains(err.Error(), "merge when every shard has finished") {
		t.Errorf("merge beside shards: %v", err)
	}
	s0()
	s1()
	u2, err := lock(shard.Shard{})
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	u2()
}
