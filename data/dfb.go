package data

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// dfbVideo is one video of a DeepfakeBench dataset JSON.
type dfbVideo struct {
	Label     string   `json:"label"`
	Frames    []string `json:"frames"`
	Masks     []string `json:"masks"`
	Landmarks []string `json:"landmarks"`
}

// compressionLevels are the FaceForensics++ compression keys DeepfakeBench
// inserts between split and video.
var compressionLevels = map[string]bool{"c23": true, "c40": true, "raw": true}

// openDFB lists a DeepfakeBench dataset JSON (preprocessing/rearrange.py):
// dataset -> label name -> split -> [compression ->] video -> {label,
// frames, [masks], [landmarks]}. Label names containing "real" are real.
// Relative frame paths (DeepfakeBench writes them relative to its data
// root, sometimes with backslashes) are resolved against ?root=, default
// the JSON file's directory. Masks and landmarks not listed are looked for
// where DeepfakeBench puts them: the frame path with "frames" replaced by
// "masks" (same name) or "landmarks" (.npy).
func (d *Dataset) openDFB(file string, q url.Values) ([]Sample, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("open dfb: %w", err)
	}
	var doc map[string]map[string]map[string]json.RawMessage
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("open dfb %s: want {dataset: {label: {split: ...}}}: %w", file, err)
	}
	root := q.Get("root")
	if root == "" {
		root = filepath.Dir(file)
	}
	split := q.Get("split")
	if split == "" {
		split = d.opts.Split
	}
	comp := q.Get("compression")
	var names []string
	if n := q.Get("dataset"); n != "" {
		if _, ok := doc[n]; !ok {
			return nil, fmt.Errorf("open dfb %s: no dataset %q (have %s)", file, n, strings.Join(sortedKeys(doc), ", "))
		}
		names = []string{n}
	} else {
		names = sortedKeys(doc)
	}
	dirs := &dirCache{m: map[string]map[string]bool{}}
	var ss []Sample
	for _, ds := range names {
		for _, labelName := range sortedKeys(doc[ds]) {
			raw, ok := doc[ds][labelName][split]
			if !ok {
				d.warnf("dfb %s: %s/%s has no split %q", file, ds, labelName, split)
				continue
			}
			videos, err := dfbVideos(raw, comp)
			if err != nil {
				return nil, fmt.Errorf("open dfb %s: %s/%s/%s: %w", file, ds, labelName, split, err)
			}
			for _, vname := range sortedKeys(videos) {
				v := videos[vname]
				name := labelName
				if v.Label != "" {
					name = v.Label
				}
				label := 1
				if strings.Contains(strings.ToLower(name), "real") {
					label = 0
				}
				ss = append(ss, dfbSamples(v, root, ds+"/"+labelName+"/"+vname, labelName, label, dirs)...)
			}
		}
	}
	if len(ss) == 0 {
		return nil, fmt.Errorf("open dfb %s: no frames for split %q", file, split)
	}
	return ss, nil
}

// dfbVideos decodes a split's content: videos, or compression level ->
// videos, or (DFDC's val quirk) a single video object.
func dfbVideos(raw json.RawMessage, comp string) (map[string]dfbVideo, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("want an object: %w", err)
	}
	if _, ok := m["frames"]; ok {
		var v dfbVideo
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, err
		}
		return map[string]dfbVideo{"video": v}, nil
	}
	levels := 0
	for k := range m {
		if compressionLevels[k] {
			levels++
		}
	}
	if levels > 0 && levels == len(m) {
		key := comp
		if key == "" {
			switch {
			case m["c23"] != nil:
				key = "c23"
			case len(m) == 1:
				for k := range m {
					key = k
				}
			default:
				return nil, fmt.Errorf("several compression levels (%s); pick one with ?compression=", strings.Join(sortedKeys(m), ", "))
			}
		}
		sub, ok := m[key]
		if !ok {
			return nil, fmt.Errorf("no compression level %q (have %s)", key, strings.Join(sortedKeys(m), ", "))
		}
		m = nil
		if err := json.Unmarshal(sub, &m); err != nil {
			return nil, fmt.Errorf("compression %s: want an object: %w", key, err)
		}
	}
	out := make(map[string]dfbVideo, len(m))
	for k, r := range m {
		var v dfbVideo
		dec := json.NewDecoder(bytes.NewReader(r))
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("video %s: %w", k, err)
		}
		out[k] = v
	}
	return out, nil
}

// dirCache lists directories once (DeepfakeBench's derived mask and
// landmark paths).
type dirCache struct{ m map[string]map[string]bool }

func (c *dirCache) has(p string) bool {
	dir, name := filepath.Split(p)
	set, ok := c.m[dir]
	if !ok {
		set = map[string]bool{}
		if es, err := os.ReadDir(dir); err == nil {
			for _, e := range es {
				set[e.Name()] = true
			}
		}
		c.m[dir] = set
	}
	return set[name]
}

// dfbPath turns a DeepfakeBench path into a local one.
func dfbPath(p, root string) string {
	p = strings.ReplaceAll(p, `\`, "/")
	if path.IsAbs(p) {
		return filepath.FromSlash(p)
	}
	return filepath.Join(root, filepath.FromSlash(p))
}

// derive replaces the last path component named "frames" by repl.
func derive(p, repl string) (string, bool) {
	parts := strings.Split(filepath.ToSlash(p), "/")
	for i := len(parts) - 2; i >= 0; i-- {
		if parts[i] == "frames" {
			parts[i] = repl
			return filepath.FromSlash(strings.Join(parts, "/")), true
		}
	}
	return "", false
}

func dfbSamples(v dfbVideo, root, video, method string, label int, dirs *dirCache) []Sample {
	byName := func(list []string) map[string]string {
		m := map[string]string{}
		for _, p := range list {
			lp := dfbPath(p, root)
			m[strings.TrimSuffix(filepath.Base(lp), filepath.Ext(lp))] = lp
		}
		return m
	}
	masks, lms := byName(v.Masks), byName(v.Landmarks)
	frames := make([]string, 0, len(v.Frames))
	for _, f := range v.Frames {
		frames = append(frames, dfbPath(f, root))
	}
	sort.Slice(frames, func(i, j int) bool { return naturalLess(frames[i], frames[j]) })
	ss := make([]Sample, 0, len(frames))
	for k, f := range frames {
		base := filepath.Base(f)
		stem := strings.TrimSuffix(base, filepath.Ext(base))
		s := Sample{Path: f, Label: label, Video: video, Method: method, Frame: trailingNumber(base)}
		if s.Frame < 0 {
			s.Frame = k
		}
		if mp, ok := masks[stem]; ok {
			s.MaskPath = mp
		} else if len(v.Masks) == 0 {
			if mp, ok := derive(f, "masks"); ok && dirs.has(mp) {
				s.MaskPath = mp
			}
		}
		if lp, ok := lms[stem]; ok {
			s.LandmarkPath = lp
		} else if len(v.Landmarks) == 0 {
			if lp, ok := derive(f, "landmarks"); ok {
				lp = strings.TrimSuffix(lp, filepath.Ext(lp)) + ".npy"
				if dirs.has(lp) {
					s.LandmarkPath = lp
				}
			}
		}
		ss = append(ss, s)
	}
	return ss
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
