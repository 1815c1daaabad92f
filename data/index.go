package data

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// IndexFile is the name of the project's index inside a prepared data
// directory; a spec naming that directory opens the index in it.
const IndexFile = "index.jsonl"

// IndexEntry is one line of the project's own index (index.jsonl), written by
// `lvnet prepare`. Image and Mask are relative to the index's directory
// (absolute paths are kept as they are).
type IndexEntry struct {
	// Image is the face crop.
	Image string `json:"image"`
	// Mask is the pixel mask of the forged area (white = forged); "" when
	// there is none (reals, or fakes without a mask).
	Mask string `json:"mask,omitempty"`
	// Landmarks are facial landmarks (68 points, dlib order) in the
	// coordinates of Image; nil when unknown.
	Landmarks [][2]float32 `json:"landmarks,omitempty"`
	// Label is 0 for real, 1 for fake.
	Label int `json:"label"`
	// Video groups frames of one video (video-level metrics).
	Video string `json:"video,omitempty"`
	// Frame is the frame number within Video.
	Frame int `json:"frame"`
	// Method names the forgery method ("" or "real" for reals).
	Method string `json:"method,omitempty"`
}

// validate reports what is wrong with an entry, or nil.
func (e *IndexEntry) validate() error {
	if e.Image == "" {
		return errors.New(`missing "image"`)
	}
	if e.Label != 0 && e.Label != 1 {
		return fmt.Errorf("label %d is neither 0 (real) nor 1 (fake)", e.Label)
	}
	if e.Frame < 0 {
		return fmt.Errorf("negative frame %d", e.Frame)
	}
	return nil
}

// ReadIndex reads an index.jsonl file. Blank lines are ignored; a last line
// without its newline that is not a valid entry (a write torn by a crash, or
// one in progress) is dropped; any other bad line is an error naming the
// file and line number.
func ReadIndex(path string) ([]IndexEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read index: %w", err)
	}
	defer f.Close()
	var out []IndexEntry
	r := bufio.NewReaderSize(f, 1<<16)
	for line := 1; ; line++ {
		b, err := r.ReadBytes('\n')
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("read index %s:%d: %w", path, line, err)
		}
		complete := len(b) > 0 && b[len(b)-1] == '\n'
		text := bytes.TrimSpace(b)
		if len(text) > 0 {
			var e IndexEntry
			perr := json.Unmarshal(text, &e)
			if perr == nil {
				perr = e.validate()
			}
			if perr != nil {
				if !complete {
					break // torn last line
				}
				return nil, fmt.Errorf("index %s:%d: %w", path, line, perr)
			}
			out = append(out, e)
		}
		if err == io.EOF {
			break
		}
	}
	return out, nil
}

// IndexWriter appends entries to an index.jsonl file, one whole line per
// Append followed by fsync, so that a crash loses at most the line being
// written. Opening an existing index continues it; a torn last line left by
// a crash is cut off first (a last line that is a valid entry lacking only
// its newline is completed instead). An IndexWriter is not safe for
// concurrent use.
type IndexWriter struct {
	path string
	f    *os.File
	n    int
}

// OpenIndexWriter opens (creating it and its directory when needed) the index
// at path for appending.
func OpenIndexWriter(path string) (*IndexWriter, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("open index %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open index: %w", err)
	}
	n, end, err := scanIndexTail(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open index %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open index %s: %w", path, err)
	}
	if st.Size() != end {
		// Bytes after the last newline: a complete entry missing only its
		// newline (a hand-written file) is kept, anything else is a line
		// torn by a crash and dropped.
		tail := make([]byte, st.Size()-end)
		if _, err := f.ReadAt(tail, end); err != nil {
			f.Close()
			return nil, fmt.Errorf("open index %s: %w", path, err)
		}
		var e IndexEntry
		if json.Unmarshal(bytes.TrimSpace(tail), &e) == nil && e.validate() == nil {
			end, n = st.Size(), n+1
			if _, err := f.WriteAt([]byte("\n"), end); err != nil {
				f.Close()
				return nil, fmt.Errorf("open index %s: %w", path, err)
			}
			end++
		} else if err := f.Truncate(end); err != nil {
			f.Close()
			return nil, fmt.Errorf("open index %s: drop torn last line: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, fmt.Errorf("open index %s: %w", path, err)
		}
	}
	if _, err := f.Seek(end, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("open index %s: %w", path, err)
	}
	if st.Size() == 0 {
		syncDir(filepath.Dir(path)) // make the new file's name durable
	}
	return &IndexWriter{path: path, f: f, n: n}, nil
}

// scanIndexTail counts the complete non-blank lines of f and returns the
// offset just after the last newline.
func scanIndexTail(f *os.File) (lines int, end int64, err error) {
	r := bufio.NewReaderSize(f, 1<<16)
	var off int64
	for {
		b, rerr := r.ReadBytes('\n')
		if len(b) > 0 && b[len(b)-1] == '\n' {
			off += int64(len(b))
			end = off
			if len(bytes.TrimSpace(b)) > 0 {
				lines++
			}
		}
		if rerr == io.EOF {
			return lines, end, nil
		}
		if rerr != nil {
			return 0, 0, rerr
		}
	}
}

// syncDir fsyncs a directory so that a created or renamed entry survives a
// crash. Errors are ignored: some file systems cannot sync directories.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// Path returns the file the writer appends to.
func (w *IndexWriter) Path() string { return w.path }

// Len returns the number of entries in the index: those found on opening
// plus those appended since.
func (w *IndexWriter) Len() int { return w.n }

// Append writes e as one line and fsyncs the file.
func (w *IndexWriter) Append(e IndexEntry) error {
	if w.f == nil {
		return fmt.Errorf("append to index %s: writer is closed", w.path)
	}
	if err := e.validate(); err != nil {
		return fmt.Errorf("append to index %s: %w", w.path, err)
	}
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("append to index %s: %w", w.path, err)
	}
	b = append(b, '\n')
	if _, err := w.f.Write(b); err != nil {
		return fmt.Errorf("append to index %s: %w", w.path, err)
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("append to index %s: sync: %w", w.path, err)
	}
	w.n++
	return nil
}

// Close closes the file. Closing twice is harmless.
func (w *IndexWriter) Close() error {
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	if err != nil {
		return fmt.Errorf("close index %s: %w", w.path, err)
	}
	return nil
}
