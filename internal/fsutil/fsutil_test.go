package fsutil

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// entries lists the names in dir.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteFileReplaces(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.json")
	if err := os.WriteFile(p, []byte("old contents, longer than the new"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "new" {
		t.Fatalf("contents %q, want %q", b, "new")
	}
	if got := entries(t, dir); len(got) != 1 || got[0] != "a.json" {
		t.Fatalf("folder holds %v, want only a.json", got)
	}
}

func TestWriteMode(t *testing.T) {
	dir := t.TempDir()
	for _, perm := range []os.FileMode{0o644, 0o600} {
		p := filepath.Join(dir, "f"+perm.String())
		if err := WriteFile(p, []byte("x"), perm); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != perm {
			t.Errorf("%s: mode %v, want %v", p, st.Mode().Perm(), perm)
		}
	}
	// Replacing a file gives it the new mode, not the old one's.
	p := filepath.Join(dir, "g")
	if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("y"), 0o644); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o644 {
		t.Errorf("replaced file: mode %v, want 0644", st.Mode().Perm())
	}
}

func TestWriteMissingFolder(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "missing", "a.bin")
	err := WriteFile(p, []byte("x"), 0o644)
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("error %v, want one that is os.ErrNotExist", err)
	}
	if got := entries(t, dir); len(got) != 0 {
		t.Fatalf("folder holds %v after a failed write", got)
	}
}

func TestWriteFailureKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.bin")
	if err := WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := Write(p, 0o644, func(w io.Writer) error {
		w.Write([]byte(strings.Repeat("partial ", 1<<18))) // more than the buffer: reaches the temporary file
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("error %v, want %v", err, boom)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "old" {
		t.Fatalf("contents after a failed write %q, want %q", b, "old")
	}
	if got := entries(t, dir); len(got) != 1 {
		t.Fatalf("folder holds %v after a failed write, want only state.bin", got)
	}
}

func TestWriteOverFolderFails(t *testing.T) {
	// Renaming over a non-empty folder fails after everything was written:
	// the temporary file must still go.
	dir := t.TempDir()
	p := filepath.Join(dir, "out")
	if err := os.MkdirAll(filepath.Join(p, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("x"), 0o644); err == nil {
		t.Fatal("writing over a folder succeeded")
	}
	if got := entries(t, dir); len(got) != 1 || got[0] != "out" {
		t.Fatalf("folder holds %v, want only out", got)
	}
}

func TestCopyFile(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	want := strings.Repeat("0123456789", 300_000) // several buffers
	if err := os.WriteFile(src, []byte(want), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := CopyFile(src, dst, 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != want {
		t.Fatalf("copy has %d bytes, want %d", len(b), len(want))
	}
	if st, _ := os.Stat(dst); st.Mode().Perm() != 0o644 {
		t.Errorf("copy: mode %v, want 0644", st.Mode().Perm())
	}
	if err := CopyFile(filepath.Join(dir, "none"), dst, 0o644); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("copying a missing file: %v", err)
	}
	if string(must(os.ReadFile(dst))) != want {
		t.Fatal("a failed copy changed the destination")
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestTryLock(t *testing.T) {
	p := filepath.Join(t.TempDir(), ".lock")
	unlock, err := TryLock(p, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := TryLock(p, false); !errors.Is(err, ErrLocked) {
		t.Errorf("second exclusive lock: %v, want ErrLocked", err)
	}
	if _, err := TryLock(p, true); !errors.Is(err, ErrLocked) {
		t.Errorf("shared lock beside an exclusive one: %v, want ErrLocked", err)
	}
	unlock()
	s1, err := TryLock(p, true)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := TryLock(p, true)
	if err != nil {
		t.Fatalf("two shared locks: %v", err)
	}
	if _, err := TryLock(p, false); !errors.Is(err, ErrLocked) {
		t.Errorf("exclusive lock beside shared ones: %v, want ErrLocked", err)
	}
	s1()
	s2()
	u, err := TryLock(p, false)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	u()
}
