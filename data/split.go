package data

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// DefaultHoldout is the fraction of source groups a "subset=val" spec keeps
// when it gives no "holdout".
const DefaultHoldout = 0.15

// subsetOf reads the subset parameters of a spec: subset=train|val|all and
// holdout=F (the fraction of groups in val). It returns "" when the spec
// names no subset.
func subsetOf(part string, q url.Values) (subset string, holdout float64, err error) {
	subset = q.Get("subset")
	holdout = DefaultHoldout
	if v := q.Get("holdout"); v != "" {
		holdout, err = strconv.ParseFloat(v, 64)
		if err != nil || holdout <= 0 || holdout >= 1 {
			return "", 0, fmt.Errorf("open %q: holdout=%q is not a fraction in (0, 1)", part, v)
		}
	}
	switch subset {
	case "", "all", "train", "val":
	default:
		return "", 0, fmt.Errorf("open %q: subset=%q (want train, val or all)", part, subset)
	}
	if subset == "all" {
		subset = ""
	}
	return subset, holdout, nil
}

// InHoldout reports whether a source group falls in the validation part of a
// split keeping the fraction holdout of all groups: a hash of the group's
// name decides, so the assignment of a group never changes when others are
// added or removed.
func InHoldout(group string, holdout float64) bool {
	h := sha256.Sum256([]byte("lvnet-split-v1\x00" + group))
	return float64(binary.BigEndian.Uint64(h[:8])>>11)/float64(1<<53) < holdout
}

// selectSubset keeps the samples of one side of a group split.
func selectSubset(ss []Sample, subset string, holdout float64) []Sample {
	if subset == "" {
		return ss
	}
	groups := sourceGroups(ss)
	out := ss[:0:0]
	for i, s := range ss {
		if InHoldout(groups[i], holdout) == (subset == "val") {
			out = append(out, s)
		}
	}
	return out
}

// ffppID matches FaceForensics++ video names: "033" (an original) or
// "033_097" (a forgery of target 033 with the face of source 097).
var ffppID = regexp.MustCompile(`^(\d{3,4})(?:_(\d{3,4}))?(?:\.mp4)?$`)

// SourceGroups returns, for each sample, the group a split keeps on one side
// (see sourceGroups).
func SourceGroups(ss []Sample) []string { return sourceGroups(ss) }

// sourceGroups returns, for each sample, the group that must stay on one
// side of a split: Sample.Group when set; for FaceForensics++ names the
// connected component of the ids (033_097, 097_033, 033 and 097 are one
// group); otherwise the video.
func sourceGroups(ss []Sample) []string {
	parent := map[string]string{}
	var find func(string) string
	find = func(x string) string {
		p, ok := parent[x]
		if !ok || p == x {
			parent[x] = x
			return x
		}
		r := find(p)
		parent[x] = r
		return r
	}
	union := func(a, b string) {
		ra, rb := find(a), find(b)
		if ra == rb {
			return
		}
		if rb < ra {
			ra, rb = rb, ra
		}
		parent[rb] = ra
	}
	ids := make([][]string, len(ss))
	for i, s := range ss {
		if s.Group != "" {
			continue
		}
		if m := ffppID.FindStringSubmatch(path.Base(filepath.ToSlash(s.Video))); m != nil {
			ids[i] = []string{"ffpp:" + m[1]}
			if m[2] != "" {
				ids[i] = append(ids[i], "ffpp:"+m[2])
				union(ids[i][0], ids[i][1])
			} else {
				find(ids[i][0])
			}
		}
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		switch {
		case s.Group != "":
			out[i] = s.Group
		case ids[i] != nil:
			out[i] = find(ids[i][0])
		default:
			out[i] = s.Video
		}
	}
	return out
}

// openDFDC lists a DFDC face folder: DIR/metadata.csv (videoname,
// original_width, original_height, label, original) with the images in
// DIR/real/<video>.jpg and DIR/fake/<video>.jpg. A fake's group is the real
// video it was made from (column original), so a split keeps a real and its
// fakes together.
func (d *Dataset) openDFDC(dir string) ([]Sample, error) {
	meta := filepath.Join(dir, "metadata.csv")
	f, err := os.Open(meta)
	if err != nil {
		return nil, fmt.Errorf("open dfdc: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	head, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("open dfdc %s: %w", meta, err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.TrimSpace(strings.ToLower(h))] = i
	}
	for _, k := range []string{"videoname", "label", "original"} {
		if _, ok := col[k]; !ok {
			return nil, fmt.Errorf("open dfdc %s: no column %q in the header %v", meta, k, head)
		}
	}
	var ss []Sample
	seen := map[string]bool{}
	for line := 2; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("open dfdc %s: %w", meta, err)
		}
		video := strings.TrimSpace(rec[col["videoname"]])
		base := strings.TrimSuffix(video, filepath.Ext(video))
		if base == "" || strings.ContainsAny(base, `/\`) || base == "." || base == ".." {
			return nil, fmt.Errorf("open dfdc %s:%d: bad video name %q", meta, line, video)
		}
		if seen[base] {
			continue // the published metadata repeats some rows
		}
		seen[base] = true
		s := Sample{Video: "dfdc/" + base, Method: "dfdc", Frame: 0}
		switch strings.ToUpper(strings.TrimSpace(rec[col["label"]])) {
		case "REAL":
			s.Path = filepath.Join(dir, "real", base+".jpg")
			s.Group = "dfdc/" + base
		case "FAKE":
			orig := strings.TrimSpace(rec[col["original"]])
			if orig == "" {
				return nil, fmt.Errorf("open dfdc %s:%d: fake %q names no original", meta, line, video)
			}
			s.Label = 1
			s.Path = filepath.Join(dir, "fake", base+".jpg")
			s.Group = "dfdc/" + strings.TrimSuffix(orig, filepath.Ext(orig))
		default:
			return nil, fmt.Errorf("open dfdc %s:%d: label %q (want REAL or FAKE)", meta, line, rec[col["label"]])
		}
		if _, err := os.Stat(s.Path); err != nil {
			d.warnf("dfdc %s:%d: %v (skipped)", meta, line, err)
			d.mu.Lock()
			d.skipped++
			d.mu.Unlock()
			continue
		}
		ss = append(ss, s)
	}
	sort.SliceStable(ss, func(i, j int) bool { return ss[i].Video < ss[j].Video })
	if len(ss) == 0 {
		return nil, fmt.Errorf("open dfdc %s: no samples", meta)
	}
	return ss, nil
}

// selectMethods keeps the reals and the fakes of the named methods (case
// insensitive): one forgery method against all reals.
func selectMethods(ss []Sample, methods []string) []Sample {
	out := ss[:0:0]
	for _, s := range ss {
		keep := s.Label == 0
		for _, m := range methods {
			keep = keep || strings.EqualFold(strings.TrimSpace(m), s.Method)
		}
		if keep {
			out = append(out, s)
		}
	}
	return out
}
