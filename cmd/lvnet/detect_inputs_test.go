package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lvnet-go/lvnet/detect"
)

// paths returns the entries to analyse and the failures.
func paths(es []entry) (ok, failed []string) {
	for _, e := range es {
		if e.fail == "" {
			ok = append(ok, e.path)
		} else {
			failed = append(failed, e.path+": "+e.fail)
		}
	}
	return ok, failed
}

func touch(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func link(t *testing.T, target, path string) {
	t.Helper()
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
}

// expand runs expandInputs on args, returning the entries and warnings.
func expand(t *testing.T, args ...string) ([]string, []string, []string) {
	t.Helper()
	var warnings []string
	es, err := expandInputs(args, strings.NewReader(""), func(m string) { warnings = append(warnings, m) })
	if err != nil {
		t.Fatal(err)
	}
	ok, failed := paths(es)
	return ok, failed, warnings
}

func TestFolderLinks(t *testing.T) {
	tmp := t.TempDir()
	elsewhere := filepath.Join(tmp, "elsewhere")
	touch(t, filepath.Join(elsewhere, "photo.jpg"))

	t.Run("only a link to a photo", func(t *testing.T) {
		dir := filepath.Join(tmp, "only")
		os.Mkdir(dir, 0o755)
		link(t, filepath.Join(elsewhere, "photo.jpg"), filepath.Join(dir, "link.jpg"))
		ok, failed, warnings := expand(t, dir)
		if !slices.Equal(ok, []string{filepath.Join(dir, "link.jpg")}) || len(failed) != 0 {
			t.Errorf("entries %q, failures %q; want the link", ok, failed)
		}
		if len(warnings) != 1 || !strings.Contains(warnings[0], "followed 1 link out of the folder: "+filepath.Join(dir, "link.jpg")+" -> ") {
			t.Errorf("warnings %q, want the link out of the folder named", warnings)
		}
	})

	t.Run("bad links beside a photo", func(t *testing.T) {
		dir := filepath.Join(tmp, "mixed")
		touch(t, filepath.Join(dir, "a.jpg"))
		link(t, "a.jpg", filepath.Join(dir, "b.jpg"))               // a second name of a.jpg: skipped
		link(t, "missing.jpg", filepath.Join(dir, "dangling.jpg"))  // dangling
		link(t, "loop2.jpg", filepath.Join(dir, "loop1.jpg"))       // a loop
		link(t, "loop1.jpg", filepath.Join(dir, "loop2.jpg"))       // a loop
		link(t, elsewhere, filepath.Join(dir, "album"))             // a folder: not followed
		link(t, "missing.txt", filepath.Join(dir, "notes.txt"))     // not a photo name: not counted
		link(t, "/dev/null", filepath.Join(dir, "null.mp4"))        // not a file
		link(t, filepath.Join(dir, "sub"), filepath.Join(dir, "z")) // to a folder below: not followed
		touch(t, filepath.Join(dir, "sub", "c.png"))
		ok, failed, warnings := expand(t, dir)
		want := []string{filepath.Join(dir, "a.jpg"), filepath.Join(dir, "sub", "c.png")}
		if !slices.Equal(ok, want) || len(failed) != 0 {
			t.Errorf("entries %q, failures %q; want %q", ok, failed, want)
		}
		if len(warnings) != 1 {
			t.Fatalf("warnings %q, want one", warnings)
		}
		for _, s := range []string{"skipped 7 links: ", "1 dangling (" + filepath.Join(dir, "dangling.jpg") + ")",
			"2 in a loop of links", "1 not to a file (" + filepath.Join(dir, "null.mp4") + ")",
			"2 to a folder, not followed (" + filepath.Join(dir, "album") + ", " + filepath.Join(dir, "z") + ")",
			"1 to a file listed already (" + filepath.Join(dir, "b.jpg") + ")"} {
			if !strings.Contains(warnings[0], s) {
				t.Errorf("warning %q lacks %q", warnings[0], s)
			}
		}
	})

	t.Run("only bad links", func(t *testing.T) {
		dir := filepath.Join(tmp, "bad")
		os.Mkdir(dir, 0o755)
		link(t, "missing.jpg", filepath.Join(dir, "gone.jpg"))
		_, failed, _ := expand(t, dir)
		if len(failed) != 1 || !strings.Contains(failed[0], "no photos or videos in this folder (skipped 1 link: 1 dangling (") {
			t.Errorf("failures %q, want the folder's, counting the link", failed)
		}
	})

	t.Run("a folder named by a link", func(t *testing.T) {
		l := filepath.Join(tmp, "linked")
		link(t, elsewhere, l)
		ok, failed, warnings := expand(t, l)
		if !slices.Equal(ok, []string{filepath.Join(l, "photo.jpg")}) || len(failed) != 0 || len(warnings) != 0 {
			t.Errorf("entries %q, failures %q, warnings %q; want the photo", ok, failed, warnings)
		}
	})
}

func TestEmptyStdinIsUsageError(t *testing.T) {
	_, err := expandInputs([]string{"-"}, strings.NewReader("\n  \n"), func(string) {})
	var ue *usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "no inputs") {
		t.Errorf("empty stdin: %v, want a usage error", err)
	}
	// Through the command: exit status 2, before a model is loaded.
	var out, errOut bytes.Buffer
	err = detectMain(t.Context(), []string{"--model", filepath.Join(t.TempDir(), "none.safetensors"), "-"}, strings.NewReader(""), &out, &errOut)
	if !errors.As(err, &ue) {
		t.Errorf("lvnet detect - </dev/null: %v, want a usage error (exit 2)", err)
	}
}

func TestTermSafe(t *testing.T) {
	for in, want := range map[string]string{
		"photo.jpg":                 "photo.jpg",
		"a\033[31mRED.jpg":          `a\x1b[31mRED.jpg`,
		"two\nlines.jpg":            `two\nlines.jpg`,
		"tab\there\r.jpg":           `tab\there\r.jpg`,
		"bidi\u202egpj.exe":         `bidi\u202egpj.exe`,
		"c1\u009b31m.jpg":           `c1\x9b31m.jpg`,
		"bad\xffutf8.jpg":           `bad\xffutf8.jpg`,
		"sep\u2028.jpg":             `sep\u2028.jpg`,
		"写真.jpg":                    "写真.jpg",
		"family👨\u200d👩\u200d👧.jpg": "family👨\u200d👩\u200d👧.jpg",
		`back\slash.jpg`:            `back\slash.jpg`,
	} {
		if got := termSafe(in); got != want {
			t.Errorf("termSafe(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDisplayWidth(t *testing.T) {
	for s, want := range map[string]int{"abc": 3, "写真": 4, "ｆｕｌｌ": 8, "e\u0301": 1, "😀": 2, "한국": 4} {
		if got := displayWidth(s); got != want {
			t.Errorf("displayWidth(%q) = %d, want %d", s, got, want)
		}
	}
}

// TestTableHostileNames: names with escape sequences, newlines and wide
// characters give one line each, escaped, with the columns aligned on the
// terminal.
func TestTableHostileNames(t *testing.T) {
	res := func(name string) *detect.Result {
		return &detect.Result{Input: name, Kind: "image", Label: "real", PFake: 0.25, Faces: []detect.Face{{}}}
	}
	rows := []outcome{
		{input: "plain.jpg", r: res("plain.jpg")},
		{input: "a\033[31mRED.jpg", r: res("a\033[31mRED.jpg")},
		{input: "two\nlines.jpg", err: "not an image (looks like\ttext)\n"},
		{input: "写真の名前.jpg", r: res("写真の名前.jpg")},
	}
	var b bytes.Buffer
	if err := writeTable(&b, rows, 0.5); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.ContainsAny(out, "\033\t\r") {
		t.Errorf("raw control characters in the table:\n%q", out)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 1+len(rows) {
		t.Fatalf("%d lines for %d rows:\n%s", len(lines), len(rows), out)
	}
	for _, want := range []string{`a\x1b[31mRED.jpg`, `two\nlines.jpg`, `not an image (looks like\ttext)\n`} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// The LABEL column starts at the same display column on every line.
	col := -1
	for _, l := range lines {
		i := strings.Index(l, "  LABEL")
		if i < 0 {
			for _, lab := range []string{"  real", "  error"} {
				if j := strings.Index(l, lab); j >= 0 {
					i = j
					break
				}
			}
		}
		c := displayWidth(l[:i+2])
		if col >= 0 && c != col {
			t.Errorf("LABEL at column %d, want %d:\n%s", c, col, out)
		}
		col = c
	}
}

// TestDetectHostileNameMessages runs lvnet detect on files whose names hold
// an escape sequence and a newline: neither reaches stdout or stderr raw.
func TestDetectHostileNameMessages(t *testing.T) {
	ckpt := saveSmallModel(t)
	dir := t.TempDir()
	var args []string
	for _, name := range []string{"a\033[31mRED.png", "two\nlines.png"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("these are not pixels\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, p)
	}
	stdout, stderr, err := runCmd(t, detectCmd, append([]string{"--aligned", "--quiet", "--model", ckpt}, args...)...)
	if err == nil {
		t.Fatal("no error for two bad files")
	}
	for _, s := range []string{stdout, stderr} {
		if strings.Contains(s, "\033") || strings.Count(s, "\n") != 2+strings.Count(s, "INPUT") {
			t.Errorf("raw control characters or split lines:\n%q", s)
		}
		if !strings.Contains(s, `a\x1b[31mRED.png`) || !strings.Contains(s, `two\nlines.png`) {
			t.Errorf("names not escaped:\n%s", s)
		}
	}
}
