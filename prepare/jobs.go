package prepare

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/lvnet-go/lvnet/internal/shard"
	"github.com/lvnet-go/lvnet/media"
)

// job is one video or image to process.
type job struct {
	// key names the job's outputs (real/<key>/, fake/<key>/, masks/<key>/)
	// and identifies it in .prepare-done: slash-separated, no "." or ".."
	// components.
	key    string
	src    string // video or image file
	mask   string // its mask video or image; "" for none
	label  int    // 0 real, 1 fake
	method string // FaceForensics++ subset ("Deepfakes", "youtube"); "" otherwise
	video  bool   // src is a video (else an image)
	panel  string // authors' layout: the frame folder below Out ("Deepfakes/000_003.mp4"); "" for none
	// shardKey is the job's key for Options.Shard (shard.Key): src relative
	// to the input folder it was found under (the FaceForensics++ root),
	// or src as given when named directly.
	shardKey string
}

// IsFFPP reports whether dir is the root of a FaceForensics++ download: it
// holds both original_sequences/ and manipulated_sequences/.
func IsFFPP(dir string) bool {
	for _, d := range []string{"original_sequences", "manipulated_sequences"} {
		st, err := os.Stat(filepath.Join(dir, d))
		if err != nil || !st.IsDir() {
			return false
		}
	}
	return true
}

// ffppJobs lists the videos of a FaceForensics++ root: every subset below
// original_sequences/ (real) and manipulated_sequences/ (fake), in the
// compression folder comp, restricted to methods when given. The masks of
// fakes are <Method>/masks/videos/<name>.mp4 when present.
func ffppJobs(root, comp string, methods []string, authors bool) ([]job, error) {
	want := map[string]bool{}
	for _, m := range methods {
		want[strings.ToLower(m)] = true
	}
	var jobs []job
	seen := map[string]bool{}
	var comps []string
	for _, side := range []struct {
		dir   string
		label int
	}{{"original_sequences", 0}, {"manipulated_sequences", 1}} {
		subsets, err := os.ReadDir(filepath.Join(root, side.dir))
		if err != nil {
			return nil, fmt.Errorf("prepare %s: %w", root, err)
		}
		for _, s := range subsets {
			if !s.IsDir() || (len(want) > 0 && !want[strings.ToLower(s.Name())]) {
				continue
			}
			seen[strings.ToLower(s.Name())] = true
			sub := filepath.Join(root, side.dir, s.Name())
			vdir := filepath.Join(sub, comp, "videos")
			es, err := os.ReadDir(vdir)
			if err != nil {
				if cs, _ := os.ReadDir(sub); len(cs) > 0 {
					for _, c := range cs {
						if c.IsDir() && c.Name() != "masks" && c.Name() != "models" {
							comps = append(comps, s.Name()+"/"+c.Name())
						}
					}
				}
				continue
			}
			for _, e := range es {
				if e.IsDir() || !media.IsVideo(filepath.Join(vdir, e.Name())) {
					continue
				}
				name := e.Name()
				stem := strings.TrimSuffix(name, filepath.Ext(name))
				j := job{
					key: s.Name() + "/" + stem, src: filepath.Join(vdir, name),
					label: side.label, method: s.Name(), video: true,
				}
				j.shardKey = shard.Key(root, j.src)
				if side.label == 1 {
					m := filepath.Join(sub, "masks", "videos", name)
					if _, err := os.Stat(m); err == nil {
						j.mask = m
					}
				}
				if authors {
					j.panel = s.Name() + "/" + stem + ".mp4"
				}
				jobs = append(jobs, j)
			}
		}
	}
	for _, m := range methods {
		if !seen[strings.ToLower(m)] {
			return nil, fmt.Errorf("prepare %s: no subset %q under original_sequences/ or manipulated_sequences/", root, m)
		}
	}
	if len(jobs) == 0 {
		if len(comps) > 0 {
			return nil, fmt.Errorf("prepare %s: no videos in compression %q (found %s); choose one with --compression", root, comp, strings.Join(comps, ", "))
		}
		return nil, fmt.Errorf("prepare %s: no videos found", root)
	}
	sort.Slice(jobs, func(a, b int) bool { return jobs[a].key < jobs[b].key })
	return jobs, nil
}

// labelOf infers a label from the path components of p, nearest first:
// "real" or "original_sequences" make it real, "fake" or
// "manipulated_sequences" fake.
func labelOf(p string) (int, bool) {
	abs, err := filepath.Abs(p)
	if err != nil {
		abs = p
	}
	comps := strings.Split(filepath.ToSlash(abs), "/")
	for i := len(comps) - 1; i >= 0; i-- {
		switch strings.ToLower(comps[i]) {
		case "real", "original_sequences", "original":
			return 0, true
		case "fake", "manipulated_sequences", "manipulated":
			return 1, true
		}
	}
	return 0, false
}

// cleanKey turns a relative path into a job key: forward slashes, no empty,
// "." or ".." components, characters other than letters, digits and "._-"
// replaced by "_".
func cleanKey(rel string) string {
	var parts []string
	for _, c := range strings.Split(filepath.ToSlash(rel), "/") {
		if c == "" || c == "." || c == ".." {
			continue
		}
		b := []byte(c)
		for i, ch := range b {
			ok := ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '.' || ch == '_' || ch == '-'
			if !ok {
				b[i] = '_'
			}
		}
		parts = append(parts, string(b))
	}
	if len(parts) == 0 {
		return "_"
	}
	return strings.Join(parts, "/")
}

// plainJobs lists the videos and images of inputs (files or folders,
// searched recursively; directories named "masks", hidden ones and the
// output directory out are left out). The label
// is forced ("real", "fake") or inferred from the path (labelOf). Masks are
// looked up in masks: the file itself for a single input file, else a
// folder holding files of the same relative name (any extension).
func plainJobs(inputs []string, label, masks, out string) ([]job, error) {
	outAbs, _ := filepath.Abs(out)
	var jobs []job
	keys := map[string]int{}
	maskIsFile := false
	if masks != "" {
		st, err := os.Stat(masks)
		if err != nil {
			return nil, fmt.Errorf("prepare: masks: %w", err)
		}
		maskIsFile = !st.IsDir()
		if maskIsFile && (len(inputs) != 1 || isDir(inputs[0])) {
			return nil, fmt.Errorf("prepare: --masks %s is a file: give one input file with it, or a folder of masks named like the inputs", masks)
		}
	}
	add := func(root, path, rel string) error {
		isVid := media.IsVideo(path)
		if !isVid && !media.IsImageExt(path) {
			return nil
		}
		j := job{src: path, video: isVid, shardKey: shard.Key(root, path)}
		switch label {
		case "real":
			j.label = 0
		case "fake":
			j.label = 1
		default:
			l, ok := labelOf(path)
			if !ok {
				return fmt.Errorf("prepare: cannot tell whether %s is real or fake (no folder named real or fake in its path): give --label real or --label fake", path)
			}
			j.label = l
		}
		switch {
		case maskIsFile:
			j.mask = masks
		case masks != "":
			j.mask = findMask(masks, rel)
		}
		key := cleanKey(rel) // with its extension: "a.mp4" and a folder "a/" stay apart
		if n := keys[key]; n > 0 {
			keys[key] = n + 1
			key = fmt.Sprintf("%s_%d", key, n+1)
		} else {
			keys[key] = 1
		}
		j.key = key
		jobs = append(jobs, j)
		return nil
	}
	for _, in := range inputs {
		st, err := os.Stat(in)
		if err != nil {
			return nil, fmt.Errorf("prepare: %w", err)
		}
		if !st.IsDir() {
			if err := add("", in, filepath.Base(in)); err != nil {
				return nil, err
			}
			continue
		}
		base := filepath.Base(filepath.Clean(in))
		var files []string
		err = filepath.WalkDir(in, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.IsDir() {
				n := strings.ToLower(e.Name())
				if p != in && (n == "masks" || n == "mask" || strings.HasPrefix(n, ".")) {
					return fs.SkipDir
				}
				if abs, _ := filepath.Abs(p); out != "" && abs == outAbs {
					return fs.SkipDir // our own output, inside an input folder
				}
				return nil
			}
			files = append(files, p)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("prepare: %w", err)
		}
		sort.Strings(files)
		for _, p := range files {
			rel, _ := filepath.Rel(in, p)
			if err := add(in, p, filepath.Join(base, rel)); err != nil {
				return nil, err
			}
		}
	}
	if len(jobs) == 0 {
		return nil, fmt.Errorf("prepare: no videos or images in %s", strings.Join(inputs, ", "))
	}
	return jobs, nil
}

// findMask returns the file below dir with the relative name rel (its
// first component, the input folder's name, optional), with the same or
// any other image or video extension; "" when there is none.
func findMask(dir, rel string) string {
	rel = filepath.FromSlash(rel)
	cands := []string{rel}
	if i := strings.IndexRune(rel, filepath.Separator); i >= 0 {
		cands = append(cands, rel[i+1:])
	}
	for _, c := range cands {
		p := filepath.Join(dir, c)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
		stem := strings.TrimSuffix(p, filepath.Ext(p))
		for _, ext := range append(media.ImageExts(), ".mp4", ".avi", ".mkv", ".mov", ".webm") {
			if st, err := os.Stat(stem + ext); err == nil && !st.IsDir() {
				return stem + ext
			}
		}
	}
	return ""
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
