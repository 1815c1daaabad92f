package prepare

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/lvnet-go/lvnet/data"
	"github.com/lvnet-go/lvnet/internal/fsutil"
)

// DoneFile lists, one key a line, the videos whose outputs and index lines
// are complete.
const DoneFile = ".prepare-done"

// readDone reads the done keys from the done list at path (DoneFile, or a
// shard's); a last line without its newline (a crash while writing) does
// not count.
func readDone(path string) (map[string]bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("prepare: read done list %s: %w", path, err)
	}
	done := map[string]bool{}
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			break // torn last line
		}
		if k := strings.TrimSpace(string(b[:i])); k != "" {
			done[k] = true
		}
		b = b[i+1:]
	}
	return done, nil
}

// doneLog appends keys to the done list.
type doneLog struct {
	f *os.File
}

// openDone opens the done list at p for appending (creating it), cutting a
// torn last line.
func openDone(p string) (*doneLog, error) {
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("prepare: open done list: %w", err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("prepare: read done list: %w", err)
	}
	if end := bytes.LastIndexByte(b, '\n') + 1; end != len(b) {
		if err := f.Truncate(int64(end)); err != nil {
			f.Close()
			return nil, fmt.Errorf("prepare: repair done list: %w", err)
		}
	}
	if _, err := f.Seek(0, 2); err != nil {
		f.Close()
		return nil, fmt.Errorf("prepare: open done list: %w", err)
	}
	return &doneLog{f: f}, nil
}

// mark appends key and syncs.
func (d *doneLog) mark(key string) error {
	if _, err := d.f.WriteString(key + "\n"); err != nil {
		return fmt.Errorf("prepare: write done list: %w", err)
	}
	if err := d.f.Sync(); err != nil {
		return fmt.Errorf("prepare: sync done list: %w", err)
	}
	return nil
}

func (d *doneLog) Close() error { return d.f.Close() }

// keyOfEntry returns the done key an index entry belongs to: the folder of
// its image below real/ or fake/, or an ancestor of it that is a done key
// (faces of --all-faces sit in per-face folders below their video's).
func keyOfEntry(e data.IndexEntry, done map[string]bool) (string, bool) {
	dir := path.Dir(filepath.ToSlash(e.Image))
	first, rest, ok := strings.Cut(dir, "/")
	if !ok || (first != "real" && first != "fake") {
		return "", false
	}
	for k := rest; k != "." && k != "/" && k != ""; k = path.Dir(k) {
		if done[k] {
			return k, true
		}
	}
	return "", false
}

// repairIndex rewrites the index at p (out/index.jsonl, or a shard's in
// out), when needed, to hold only the entries of done videos, each image
// once (first line kept): lines of a video interrupted before it was marked
// done are dropped so that redoing it adds no duplicates. The rewrite goes
// through a temporary file and a rename. It returns the number of entries
// kept and dropped.
func repairIndex(p string, done map[string]bool) (kept, dropped int, err error) {
	es, err := data.ReadIndex(p)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("prepare: %w", err)
	}
	seen := map[string]bool{}
	var keep []data.IndexEntry
	for _, e := range es {
		if _, ok := keyOfEntry(e, done); !ok || seen[e.Image] {
			continue
		}
		seen[e.Image] = true
		keep = append(keep, e)
	}
	raw, err := os.ReadFile(p)
	if err != nil {
		return 0, 0, fmt.Errorf("prepare: %w", err)
	}
	if len(keep) == len(es) && (len(raw) == 0 || raw[len(raw)-1] == '\n') {
		return len(keep), 0, nil // nothing to repair
	}
	var buf bytes.Buffer
	for _, e := range keep {
		b, err := json.Marshal(e)
		if err != nil {
			return 0, 0, fmt.Errorf("prepare: %w", err)
		}
		buf.Write(append(b, '\n'))
	}
	if err := fsutil.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		return 0, 0, fmt.Errorf("prepare: repair index %s: %w", p, err)
	}
	return len(keep), len(es) - len(keep), nil
}
