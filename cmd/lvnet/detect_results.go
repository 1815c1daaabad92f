package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/lvnet-go/lvnet/detect"
	"github.com/lvnet-go/lvnet/internal/fsutil"
	"github.com/lvnet-go/lvnet/internal/shard"
)

// The results files of `lvnet detect --out DIR`: DIR/shard-K-of-N.jsonl,
// JSON Lines. The first line is a header (resultsHeader), then one line per
// input (resultsLine): the input's position among all the inputs, as the
// unsharded run orders them (seq), and its result (the object of
// `--json`'s results[]) or its failure (the object of errors[]). Lines
// are appended and fsynced one by one, so a job killed loses at most the
// line being written; on a rerun the file is read, a torn last line
// dropped, the inputs with a line skipped, and the file rewritten
// atomically when the positions changed (inputs added or removed).
// `lvnet merge DIR` puts the shards' lines back in order.
const (
	resultsPrefix = "shard-"
	resultsSuffix = ".jsonl"
	resultsFormat = 1
)

// resultsHeader is the first line of a results file.
type resultsHeader struct {
	Format  int            `json:"lvnet_detect_results"` // resultsFormat
	Shard   string         `json:"shard"`                // "K/N"
	Inputs  int            `json:"inputs"`               // inputs of the shard, at its latest run
	Total   int            `json:"total"`                // inputs of all shards
	Options resultsOptions `json:"options"`
}

// resultsOptions are the settings that shape the results: a rerun that
// changes them, or a merge of shards that differ in them, is refused.
type resultsOptions struct {
	Model     string  `json:"model_sha256"`
	DType     string  `json:"dtype"`
	Threshold float64 `json:"threshold"`
	Every     int     `json:"every"`
	MaxFrames int     `json:"max_frames"`
	MaxFaces  int     `json:"max_faces"`
	Aligned   bool    `json:"aligned"`
	Heatmaps  string  `json:"heatmaps"`
}

// diff names the settings that differ between o (of a file) and now.
func (o resultsOptions) diff(now resultsOptions) string {
	var d []string
	add := func(name string, was, is any) {
		if was != is {
			d = append(d, fmt.Sprintf("%s %v, now %v", name, was, is))
		}
	}
	add("model (sha256)", short(o.Model), short(now.Model))
	add("--dtype", o.DType, now.DType)
	add("--threshold", o.Threshold, now.Threshold)
	add("--every", o.Every, now.Every)
	add("--max-frames", o.MaxFrames, now.MaxFrames)
	add("--max-faces", o.MaxFaces, now.MaxFaces)
	add("--aligned", o.Aligned, now.Aligned)
	add("--heatmaps", fmt.Sprintf("%q", o.Heatmaps), fmt.Sprintf("%q", now.Heatmaps))
	return strings.Join(d, "; ")
}

// short abbreviates a hash for messages.
func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// resultsLine is one input's line.
type resultsLine struct {
	// Seq is the input's position among all the inputs; -1 for an input
	// of an earlier run that the latest run was not given (kept, so that
	// naming it again does not redo it; merge leaves it out).
	Seq    int             `json:"seq"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *detect.Failure `json:"error,omitempty"`
}

// input returns the line's input name.
func (l *resultsLine) input() (string, error) {
	if l.Error != nil {
		return l.Error.Input, nil
	}
	var r struct {
		Input string `json:"input"`
	}
	err := json.Unmarshal(l.Result, &r)
	return r.Input, err
}

// resultsFile is a results file as read.
type resultsFile struct {
	path   string
	header *resultsHeader // nil when the file does not exist
	lines  []resultsLine
	inputs []string // of each line
	torn   bool     // the last line was cut off (a crash while writing)
}

// readResults reads the results file at path; a missing file gives an
// empty resultsFile. A last line without its newline that does not parse
// is dropped (torn); any other bad line is an error naming the file and
// line.
func readResults(path string) (*resultsFile, error) {
	rf := &resultsFile{path: path}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return rf, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read results: %w", err)
	}
	for n := 1; len(b) > 0; n++ {
		line := b
		complete := false
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b, complete = b[:i], b[i+1:], true
		} else {
			b = nil
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		bad := func(err error) error {
			return fmt.Errorf("results %s:%d: %w (delete the file to start the shard over)", path, n, err)
		}
		if rf.header == nil {
			var h resultsHeader
			if err := json.Unmarshal(line, &h); err != nil || h.Format == 0 {
				if !complete {
					rf.torn = true
					break
				}
				return nil, bad(errors.New("not a results file of lvnet detect --out (no header)"))
			}
			if h.Format != resultsFormat {
				return nil, bad(fmt.Errorf("results format %d; this lvnet reads %d", h.Format, resultsFormat))
			}
			rf.header = &h
			continue
		}
		var l resultsLine
		err := json.Unmarshal(line, &l)
		if err == nil && (l.Result == nil) == (l.Error == nil) {
			err = errors.New(`want one of "result" and "error"`)
		}
		var in string
		if err == nil {
			in, err = l.input()
		}
		if err == nil && in == "" {
			err = errors.New("no input name")
		}
		if err != nil {
			if !complete {
				rf.torn = true
				break
			}
			return nil, bad(err)
		}
		rf.lines = append(rf.lines, l)
		rf.inputs = append(rf.inputs, in)
	}
	return rf, nil
}

// resultsWriter appends lines to a results file.
type resultsWriter struct {
	path string
	f    *os.File
}

// add appends the outcome of the input at position seq (a result, or a
// failure) as one line and fsyncs it.
func (w *resultsWriter) add(seq int, r *detect.Result, fail *detect.Failure) error {
	l := resultsLine{Seq: seq, Error: fail}
	if r != nil {
		b, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("results %s: %w", w.path, err)
		}
		l.Result = b
	}
	b, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("results %s: %w", w.path, err)
	}
	if _, err := w.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("write results: sync: %w", err)
	}
	return nil
}

func (w *resultsWriter) Close() error { return w.f.Close() }

// resultsJob is a run of lvnet detect --out: shard sh of the inputs, its
// results file, and what an earlier run has done.
type resultsJob struct {
	sh     shard.Shard
	path   string
	done   map[int]bool // positions with a line
	kept   int          // lines of an earlier run reused
	orphan int          // lines of inputs no longer given, kept
	w      *resultsWriter
	unlock func()
}

func (j *resultsJob) Close() {
	if j.w != nil {
		j.w.Close()
	}
	j.unlock()
}

// openResultsJob opens (creating DIR when needed) the results file of
// shard sh in dir for the run over entries, whose positions sel are the
// shard's: it takes the shard's lock, reads what an earlier run wrote
// (refusing one with other options), matches its lines to the inputs by
// name, and rewrites the file when the header or positions changed or a
// torn line must go. With retry, lines of failures are dropped (those
// inputs are analysed again).
func openResultsJob(dir string, sh shard.Shard, entries []entry, sel []int, opts resultsOptions, retry bool) (*resultsJob, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("--out: %w", err)
	}
	path := filepath.Join(dir, sh.FileName(resultsPrefix, resultsSuffix))
	lock := filepath.Join(dir, sh.FileName("."+resultsPrefix, ".lock"))
	unlock, err := fsutil.TryLock(lock, false)
	if errors.Is(err, fsutil.ErrLocked) {
		return nil, fmt.Errorf("another lvnet detect --shard %s is writing %s (%s is locked)", sh, path, lock)
	}
	if err != nil {
		return nil, err
	}
	j := &resultsJob{sh: sh, path: path, done: map[int]bool{}, unlock: unlock}
	rf, err := readResults(path)
	if err != nil {
		j.Close()
		return nil, err
	}
	header := resultsHeader{Format: resultsFormat, Shard: sh.String(), Inputs: len(sel), Total: len(entries), Options: opts}
	changed := rf.header == nil || rf.torn || *rf.header != header
	if h := rf.header; h != nil {
		if h.Shard != sh.String() {
			j.Close()
			return nil, fmt.Errorf("%s holds the results of shard %s, not %s", path, h.Shard, sh)
		}
		if d := h.Options.diff(opts); d != "" {
			j.Close()
			return nil, fmt.Errorf("%s holds results made otherwise (%s): run with the same model and flags, or write to another --out", path, d)
		}
	}
	// Match the lines to the inputs, by name, in order (an input named
	// twice has two lines).
	byInput := map[string][]int{}
	for i, in := range rf.inputs {
		if retry && rf.lines[i].Error != nil {
			changed = true
			continue
		}
		byInput[in] = append(byInput[in], i)
	}
	used := make([]bool, len(rf.lines))
	var lines []resultsLine
	for _, k := range sel {
		q := byInput[entries[k].path]
		if len(q) == 0 {
			continue
		}
		i := q[0]
		byInput[entries[k].path] = q[1:]
		used[i] = true
		l := rf.lines[i]
		if l.Seq != k {
			l.Seq, changed = k, true
		}
		lines = append(lines, l)
		j.done[k] = true
	}
	j.kept = len(lines)
	for i, l := range rf.lines {
		switch {
		case used[i] || (retry && l.Error != nil):
		case l.Error != nil: // a failure of an input no longer given: nothing to keep
			changed = true
		default:
			if l.Seq != -1 {
				l.Seq, changed = -1, true
			}
			lines = append(lines, l)
			j.orphan++
		}
	}
	if changed {
		err := fsutil.Write(path, 0o644, func(w io.Writer) error {
			enc := json.NewEncoder(w)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(header); err != nil {
				return err
			}
			for _, l := range lines {
				b, err := json.Marshal(l)
				if err != nil {
					return err
				}
				if _, err := w.Write(append(b, '\n')); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			j.Close()
			return nil, fmt.Errorf("write results %s: %w", path, err)
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		j.Close()
		return nil, fmt.Errorf("open results: %w", err)
	}
	j.w = &resultsWriter{path: path, f: f}
	return j, nil
}

// mergeResults reads the results files of the shards of one run and puts
// their outcomes back in the order of the unsharded run. It refuses shards
// of different runs (N, options or inputs), missing shards and shards not
// finished (naming them), and an input reported twice. It returns the
// outcomes, the options (their threshold labels the table) and the number
// of lines left out for inputs the latest runs were not given.
func mergeResults(paths []string) ([]outcome, resultsOptions, int, error) {
	var opts resultsOptions
	type part struct {
		sh shard.Shard
		rf *resultsFile
	}
	var parts []part
	var found []shard.Shard
	name := map[shard.Shard]string{}
	for _, p := range paths {
		sh, ok := shard.ParseFileName(filepath.Base(p), resultsPrefix, resultsSuffix)
		if !ok {
			return nil, opts, 0, fmt.Errorf("%s: not a results file of lvnet detect --out (want %sK-of-N%s)", p, resultsPrefix, resultsSuffix)
		}
		if prev, ok := name[sh]; ok {
			return nil, opts, 0, fmt.Errorf("shard %s given twice: %s and %s", sh, prev, p)
		}
		rf, err := readResults(p)
		if err != nil {
			return nil, opts, 0, err
		}
		if rf.header == nil {
			return nil, opts, 0, fmt.Errorf("%s: no header (has the shard's job started?)", p)
		}
		if rf.header.Shard != sh.String() {
			return nil, opts, 0, fmt.Errorf("%s holds the results of shard %s, not %s", p, rf.header.Shard, sh)
		}
		parts = append(parts, part{sh, rf})
		found = append(found, sh)
		name[sh] = p
	}
	n, missing, err := shard.CheckSet(found, func(s shard.Shard) string { return name[s] })
	if err != nil {
		return nil, opts, 0, err
	}
	if len(missing) > 0 {
		var ms []string
		for _, s := range missing {
			ms = append(ms, fmt.Sprintf("%s (%s)", s, s.FileName(resultsPrefix, resultsSuffix)))
		}
		return nil, opts, 0, fmt.Errorf("missing shard(s) of %d: %s; run lvnet detect --shard K/%d --out DIR with the same inputs for each", n, strings.Join(ms, ", "), n)
	}
	sort.Slice(parts, func(a, b int) bool { return parts[a].sh.K < parts[b].sh.K })
	first := parts[0]
	opts = first.rf.header.Options
	total, sum := first.rf.header.Total, 0
	var unfinished []string
	orphans := 0
	for _, p := range parts {
		h := p.rf.header
		if d := opts.diff(h.Options); d != "" {
			return nil, opts, 0, fmt.Errorf("shards made otherwise: %s and %s differ (%s)", name[first.sh], name[p.sh], d)
		}
		if h.Total != total {
			return nil, opts, 0, fmt.Errorf("shards run over different inputs: %s has %d inputs in all, %s %d; rerun every shard with the same inputs", name[first.sh], total, name[p.sh], h.Total)
		}
		sum += h.Inputs
		got := 0
		for _, l := range p.rf.lines {
			if l.Seq >= 0 {
				got++
			} else {
				orphans++
			}
		}
		if got != h.Inputs {
			unfinished = append(unfinished, fmt.Sprintf("%s (%d of %d inputs; %s)", p.sh, got, h.Inputs, name[p.sh]))
		}
	}
	if len(unfinished) > 0 {
		return nil, opts, 0, fmt.Errorf("shard(s) not finished: %s; wait for their jobs, or rerun them (the same command resumes)", strings.Join(unfinished, ", "))
	}
	if sum != total {
		return nil, opts, 0, fmt.Errorf("the shards hold %d inputs, their headers say %d in all; rerun every shard with the same inputs", sum, total)
	}
	rows := make([]outcome, total)
	from := make([]shard.Shard, total)
	filled := make([]bool, total)
	for _, p := range parts {
		for i, l := range p.rf.lines {
			if l.Seq < 0 {
				continue
			}
			in := p.rf.inputs[i]
			if l.Seq >= total {
				return nil, opts, 0, fmt.Errorf("%s: input %s at position %d of %d; rerun every shard with the same inputs", name[p.sh], in, l.Seq, total)
			}
			if filled[l.Seq] {
				return nil, opts, 0, fmt.Errorf("input %d of %d reported twice: %s in %s, %s in %s; rerun every shard with the same inputs",
					l.Seq, total, rows[l.Seq].input, name[from[l.Seq]], in, name[p.sh])
			}
			o := outcome{input: in}
			if l.Error != nil {
				o.err = l.Error.Error
			} else {
				o.r = new(detect.Result)
				if err := json.Unmarshal(l.Result, o.r); err != nil {
					return nil, opts, 0, fmt.Errorf("%s: result of %s: %w", name[p.sh], in, err)
				}
			}
			rows[l.Seq], from[l.Seq], filled[l.Seq] = o, p.sh, true
		}
	}
	return rows, opts, orphans, nil
}
