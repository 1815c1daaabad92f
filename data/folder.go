package data

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// framePattern matches "<word>_<video>_<frame>" file names such as
// image_16_10.png.
var framePattern = regexp.MustCompile(`^[A-Za-z]+_(.+)_(\d+)$`)

// isMaskDir reports whether a directory holds masks rather than samples.
func isMaskDir(name string) bool {
	n := strings.ToLower(name)
	return n == "masks" || n == "mask"
}

// openFolder lists the images below dir: under a directory named "real"
// they are real, under "fake" fake (the nearest such ancestor decides);
// the masks of fakes live in a sibling "masks" directory with the same
// relative names.
func (d *Dataset) openFolder(dir string) ([]Sample, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("open folder: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("open folder %s: not a directory", dir)
	}
	type found struct {
		rel   []string // path components below dir, file name last
		label int
		at    int // index in rel of the real/fake component
	}
	var files []found
	masks := map[string]bool{}
	rootName := filepath.Base(filepath.Clean(dir))
	err = filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			if path == dir {
				return err
			}
			d.warnf("folder %s: %v", dir, err)
			if e != nil && e.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if e.IsDir() || !isImageFile(e.Name()) {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return nil
		}
		comps := strings.Split(filepath.ToSlash(rel), "/")
		// The root's own name counts (folder:/x/real is all real).
		all := append([]string{rootName}, comps...)
		label, at, inMask := -1, -1, false
		for i := len(all) - 2; i >= 0; i-- {
			n := strings.ToLower(all[i])
			if isMaskDir(n) && label < 0 {
				inMask = true
			}
			if label < 0 && (n == "real" || n == "fake") {
				label, at = 0, i
				if n == "fake" {
					label = 1
				}
			}
		}
		if inMask {
			masks[filepath.ToSlash(rel)] = true
			return nil
		}
		if label < 0 {
			return nil
		}
		files = append(files, found{rel: all, label: label, at: at})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("open folder %s: %w", dir, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("open folder %s: no images below a directory named real or fake", dir)
	}
	ss := make([]Sample, 0, len(files))
	for _, f := range files {
		relPath := strings.Join(f.rel[1:], "/") // below dir
		s := Sample{Path: filepath.Join(dir, filepath.FromSlash(relPath)), Label: f.label, Frame: -1}
		// Mask (fakes only: reals are all-zero even when a mask of the same
		// name exists): replace the real/fake component by "masks".
		if f.at >= 1 && f.label == 1 {
			mrel := append(append(append([]string{}, f.rel[1:f.at]...), "masks"), f.rel[f.at+1:]...)
			if mp := strings.Join(mrel, "/"); masks[mp] {
				s.MaskPath = filepath.Join(dir, filepath.FromSlash(mp))
			}
		}
		if f.at >= 1 {
			s.Method = f.rel[f.at-1]
		}
		dirRel := strings.Join(f.rel[1:len(f.rel)-1], "/")
		if dirRel == "" {
			dirRel = rootName
		}
		name := f.rel[len(f.rel)-1]
		base := strings.TrimSuffix(name, filepath.Ext(name))
		switch m := framePattern.FindStringSubmatch(base); {
		case m != nil:
			s.Video = dirRel + "/" + m[1]
			s.Frame, _ = strconv.Atoi(m[2])
		case len(f.rel)-1 > f.at+1: // nested: real/<video>/<frame>.png
			s.Video = dirRel
			s.Frame = trailingNumber(name)
		default:
			s.Video = dirRel + "/" + base
			s.Frame = 0
		}
		if s.Frame < 0 {
			s.Frame = 0
		}
		ss = append(ss, s)
	}
	return ss, nil
}

// openIndex lists the entries of an index.jsonl (paths relative to its
// directory).
func (d *Dataset) openIndex(path string) ([]Sample, error) {
	es, err := ReadIndex(path)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, filepath.FromSlash(p))
	}
	ss := make([]Sample, len(es))
	for i, e := range es {
		video := e.Video
		if video == "" {
			video = e.Image
		}
		ss[i] = Sample{
			Path:      abs(e.Image),
			MaskPath:  abs(e.Mask),
			Label:     e.Label,
			Video:     video,
			Frame:     e.Frame,
			Method:    e.Method,
			Landmarks: e.Landmarks,
		}
	}
	return ss, nil
}
