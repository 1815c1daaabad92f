package data

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// defaultMethods are the four FaceForensics++ manipulations.
var defaultMethods = []string{"Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures"}

// readSplit reads a FaceForensics++ split file: a JSON list of
// [target, source] video id pairs.
func readSplit(path string) ([][2]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read split: %w", err)
	}
	var raw [][]string
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("split %s: want a JSON list of [target, source] pairs: %w", path, err)
	}
	out := make([][2]string, len(raw))
	for i, p := range raw {
		if len(p) != 2 || p[0] == "" || p[1] == "" {
			return nil, fmt.Errorf("split %s: entry %d is %q, want a [target, source] pair", path, i, p)
		}
		out[i] = [2]string{p[0], p[1]}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("split %s: no pairs", path)
	}
	return out, nil
}

// findSplit resolves the split parameter: a file as given, or relative to
// ROOT or ROOT/splits; without one, <Options.Split>.json in those places.
func (d *Dataset) findSplit(root, split string) (string, error) {
	name := split
	if name == "" {
		name = d.opts.Split + ".json"
	}
	cands := []string{name}
	if !filepath.IsAbs(name) {
		cands = append(cands, filepath.Join(root, name), filepath.Join(root, "splits", name))
		if !strings.HasSuffix(name, ".json") {
			cands = append(cands, filepath.Join(root, name+".json"), filepath.Join(root, "splits", name+".json"))
		}
	}
	for _, c := range cands {
		if st, err := os.Stat(c); err == nil && !st.IsDir() {
			return c, nil
		}
	}
	return "", fmt.Errorf("no split file %q (looked in %s); give ?split=FILE.json", name, strings.Join(cands, ", "))
}

// listFrames returns the image files of a video directory in natural order.
func listFrames(dir string) ([]string, error) {
	es, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range es {
		if !e.IsDir() && isImageFile(e.Name()) {
			names = append(names, e.Name())
		}
	}
	sort.Slice(names, func(i, j int) bool { return naturalLess(names[i], names[j]) })
	return names, nil
}

// openFFPP lists the authors' FaceForensics++ layout:
// ROOT/<method>/<target>_<source>.mp4/<frame>.png for fakes and
// ROOT/youtube/<a>_<b>.mp4/... for reals (ff_all.py names the real video
// folders like the fake ones, both orders of each split pair; a plain
// <a>.mp4 folder is used when that is what exists). Every frame is a
// 3-panel image: face | mask | extra.
func (d *Dataset) openFFPP(root string, q url.Values) ([]Sample, error) {
	st, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("open ffpp: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("open ffpp %s: not a directory", root)
	}
	splitPath, err := d.findSplit(root, q.Get("split"))
	if err != nil {
		return nil, fmt.Errorf("open ffpp %s: %w", root, err)
	}
	pairs, err := readSplit(splitPath)
	if err != nil {
		return nil, fmt.Errorf("open ffpp %s: %w", root, err)
	}
	methods := defaultMethods
	if m := q.Get("methods"); m != "" {
		methods = nil
		for _, s := range strings.Split(m, ",") {
			if s = strings.TrimSpace(s); s != "" {
				methods = append(methods, s)
			}
		}
	}
	realDir := q.Get("real")
	if realDir == "" {
		realDir = "youtube"
	}
	var ss []Sample
	missing := 0
	addVideo := func(method, video string, label int) bool {
		dir := filepath.Join(root, method, video)
		names, err := listFrames(dir)
		if err != nil {
			return false
		}
		id := method + "/" + strings.TrimSuffix(video, ".mp4")
		for k, n := range names {
			fr := trailingNumber(n)
			if fr < 0 {
				fr = k
			}
			ss = append(ss, Sample{
				Path: filepath.Join(dir, n), Label: label, Video: id, Frame: fr,
				Method: method, Panel: 3,
			})
		}
		return true
	}
	warnMissing := func(dir string) {
		missing++
		if missing <= 5 {
			d.warnf("ffpp %s: missing video folder %s", root, dir)
		}
	}
	for _, m := range methods {
		if st, err := os.Stat(filepath.Join(root, m)); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("open ffpp %s: no method folder %s", root, filepath.Join(root, m))
		}
		for _, p := range pairs {
			for _, v := range []string{p[0] + "_" + p[1] + ".mp4", p[1] + "_" + p[0] + ".mp4"} {
				if !addVideo(m, v, 1) {
					warnMissing(filepath.Join(root, m, v))
				}
			}
		}
	}
	if st, err := os.Stat(filepath.Join(root, realDir)); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("open ffpp %s: no real video folder %s", root, filepath.Join(root, realDir))
	}
	seen := map[string]bool{}
	for _, p := range pairs {
		for _, ab := range [][2]string{{p[0], p[1]}, {p[1], p[0]}} {
			v := ab[0] + "_" + ab[1] + ".mp4"
			if addVideo(realDir, v, 0) {
				continue
			}
			single := ab[0] + ".mp4"
			if seen[single] {
				continue
			}
			seen[single] = true
			if !addVideo(realDir, single, 0) {
				warnMissing(filepath.Join(root, realDir, v))
			}
		}
	}
	if missing > 5 {
		d.warnf("ffpp %s: %d video folders missing in all", root, missing)
	}
	if len(ss) == 0 {
		return nil, fmt.Errorf("open ffpp %s: no frames found for split %s", root, splitPath)
	}
	return ss, nil
}
