package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lvnet-go/lvnet/internal/shard"
)

var mergeCmd cmdFunc = mergeMain

// shardTree writes aligned face crops (64 px noise) in nested folders,
// two of the same name (their heatmaps are told apart), a text file named
// .png (a failure) and an empty folder (a failure of the folder), and
// returns the detect arguments naming them.
func shardTree(t *testing.T) (dir string, args []string) {
	t.Helper()
	dir = t.TempDir()
	write := func(rel string, seed uint64) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := png.Encode(&b, noiseRGBA(64, 64, seed)); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 7 {
		write(fmt.Sprintf("photos/set%d/face%d.png", i%2, i), uint64(i+1))
	}
	write("photos/face.png", 20)
	write("more/face.png", 21)
	touch(t, filepath.Join(dir, "photos", "set1", "notes.png"))
	if err := os.MkdirAll(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	write("single.png", 22)
	return dir, []string{filepath.Join(dir, "photos"), filepath.Join(dir, "empty"), filepath.Join(dir, "single.png"), filepath.Join(dir, "more")}
}

// detectFlags are the flags of every run of these tests: batches of one
// face, so that a face's scores do not depend on the faces batched with it
// (they do, by float rounding, and shards batch other faces together).
func detectFlags(ckpt, heatmaps string) []string {
	return []string{"--aligned", "--quiet", "--model", ckpt, "--batch-size", "1", "--heatmaps", heatmaps}
}

// diff describes where got first differs from want.
func diff(got, want string) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	around := func(s string) string { return s[max(0, i-80):min(len(s), i+80)] }
	return fmt.Sprintf("at byte %d of %d (want %d):\n  got  ...%s...\n  want ...%s...", i, len(got), len(want), around(got), around(want))
}

// wantPartial checks a run's error: nil, or a partialError when some
// input failed.
func wantPartial(t *testing.T, what string, err error, stderr string) {
	t.Helper()
	var pe *partialError
	if err != nil && !errors.As(err, &pe) {
		t.Fatalf("%s: %v\n%s", what, err, stderr)
	}
}

// TestDetectShardsMerge runs detect whole and in 3 shards: every input is
// in one shard, and lvnet merge prints what the whole run prints (table,
// JSON and CSV, heatmap names included) with its exit status.
func TestDetectShardsMerge(t *testing.T) {
	ckpt := saveSmallModel(t)
	dir, inputs := shardTree(t)
	hm := filepath.Join(dir, "heatmaps")
	flags := detectFlags(ckpt, hm)
	whole := map[string]string{}
	var wholeErr error
	for _, format := range []string{"table", "--json", "--csv"} {
		args := append(append([]string{}, flags...), inputs...)
		if format != "table" {
			args = append(args, format)
		}
		stdout, stderr, err := runCmd(t, detectCmd, args...)
		var pe *partialError
		if !errors.As(err, &pe) || pe.failed != 2 {
			t.Fatalf("whole run: %v, want 2 failures\n%s", err, stderr)
		}
		whole[format], wholeErr = stdout, err
	}
	if !strings.Contains(whole["--json"], "face-2.heatmap.png") || !strings.Contains(whole["--json"], "no photos or videos") {
		t.Fatalf("the fixture lacks a heatmap name told apart or a folder failure:\n%s", whole["--json"])
	}

	out := filepath.Join(dir, "results")
	for k := range 3 {
		args := append(append([]string{}, flags...), "--out", out, "--shard", fmt.Sprintf("%d/3", k))
		_, stderr, err := runCmd(t, detectCmd, append(args, inputs...)...)
		wantPartial(t, fmt.Sprintf("shard %d/3", k), err, stderr)
		if !strings.Contains(stderr, fmt.Sprintf("inputs of shard %d/3 (12 in all): 0 done earlier", k)) {
			t.Errorf("shard %d/3: summary\n%s", k, stderr)
		}
	}
	// Every input is in exactly one shard.
	seen := map[int]string{}
	inShards := 0
	for k := range 3 {
		p := filepath.Join(out, (shard.Shard{K: k, N: 3}).FileName(resultsPrefix, resultsSuffix))
		rf, err := readResults(p)
		if err != nil || rf.header == nil || rf.header.Total != 12 || rf.torn {
			t.Fatalf("%s: %+v, %v", p, rf, err)
		}
		inShards += rf.header.Inputs
		for i, l := range rf.lines {
			if prev, ok := seen[l.Seq]; ok {
				t.Errorf("input %d in two shards: %s and %s", l.Seq, prev, rf.inputs[i])
			}
			seen[l.Seq] = rf.inputs[i]
		}
	}
	if len(seen) != 12 || inShards != 12 {
		t.Errorf("%d inputs in the shards (headers: %d), want 12", len(seen), inShards)
	}

	for format, want := range whole {
		args := []string{out}
		if format != "table" {
			args = append(args, format)
		}
		got, stderr, err := runCmd(t, mergeCmd, args...)
		if fmt.Sprint(err) != fmt.Sprint(wholeErr) {
			t.Errorf("merge %s: %v, want %v\n%s", format, err, wholeErr, stderr)
		}
		if got != want {
			t.Errorf("merge %s differs from the whole run %s", format, diff(got, want))
		}
	}
	// The files themselves, and --out.
	files, err := filepath.Glob(filepath.Join(out, "shard-*.jsonl"))
	if err != nil || len(files) != 3 {
		t.Fatalf("%v, %v", files, err)
	}
	merged := filepath.Join(dir, "merged.json")
	if _, stderr, err := runCmd(t, mergeCmd, append([]string{"--json", "--out", merged}, files...)...); fmt.Sprint(err) != fmt.Sprint(wholeErr) {
		t.Fatalf("merge --out: %v\n%s", err, stderr)
	}
	if b, err := os.ReadFile(merged); err != nil || string(b) != whole["--json"] {
		t.Errorf("merge --out %s: %v, %s", merged, err, diff(string(b), whole["--json"]))
	}
}

// TestDetectResume: --out without --shard is one shard of one; a rerun
// skips what is done, drops a torn last line, follows inputs added and
// removed, retries failures with --retry-errors and refuses other
// settings; merge then still prints what a whole run prints.
func TestDetectResume(t *testing.T) {
	ckpt := saveSmallModel(t)
	dir, inputs := shardTree(t)
	hm := filepath.Join(dir, "heatmaps")
	flags := detectFlags(ckpt, hm)
	out := filepath.Join(dir, "results")
	run := func(extra ...string) string {
		t.Helper()
		args := append(append(append([]string{}, flags...), "--out", out), extra...)
		_, stderr, err := runCmd(t, detectCmd, append(args, inputs...)...)
		wantPartial(t, "run", err, stderr)
		return stderr
	}
	if s := run(); !strings.Contains(s, "12 inputs: 0 done earlier, 12 now, 0 left") {
		t.Errorf("first run:\n%s", s)
	}
	path := filepath.Join(out, "shard-0-of-1.jsonl")
	if s := run(); !strings.Contains(s, "12 inputs: 12 done earlier, 0 now") {
		t.Errorf("rerun:\n%s", s)
	}
	// A job killed while writing its last line.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b[:len(b)-20], 0o644); err != nil {
		t.Fatal(err)
	}
	if s := run(); !strings.Contains(s, "12 inputs: 11 done earlier, 1 now") {
		t.Errorf("rerun after a torn line:\n%s", s)
	}
	// The same lines (the rewrite puts them in input order).
	sorted := func(b []byte) string {
		lines := strings.Split(string(b), "\n")
		slices.Sort(lines)
		return strings.Join(lines, "\n")
	}
	if b2, _ := os.ReadFile(path); sorted(b) != sorted(b2) {
		t.Errorf("the file after the rerun differs from the first run's %s", diff(sorted(b2), sorted(b)))
	}
	// Failures are done too, unless retried.
	if s := run("--retry-errors"); !strings.Contains(s, "12 inputs: 10 done earlier, 2 now") {
		t.Errorf("--retry-errors:\n%s", s)
	}
	// Other settings are refused.
	_, _, err = runCmd(t, detectCmd, append(append(append([]string{}, flags...), "--out", out, "--threshold", "0.7"), inputs...)...)
	if err == nil || !strings.Contains(err.Error(), "made otherwise (--threshold ") {
		t.Errorf("rerun with another threshold: %v", err)
	}
	// An input added (before the others in order), one removed.
	noiseFile(t, filepath.Join(dir, "photos", "set0", "aaa.png"), 30)
	if err := os.Remove(filepath.Join(dir, "photos", "set1", "face1.png")); err != nil {
		t.Fatal(err)
	}
	if s := run(); !strings.Contains(s, "12 inputs: 11 done earlier, 1 now") || !strings.Contains(s, "keeps 1 result of inputs not given now") {
		t.Errorf("rerun with an input added and one removed:\n%s", s)
	}
	wholeOut, _, wholeErr := runCmd(t, detectCmd, append(append(append([]string{}, flags...), "--json"), inputs...)...)
	got, stderr, err := runCmd(t, mergeCmd, "--json", out)
	if got != wholeOut || fmt.Sprint(err) != fmt.Sprint(wholeErr) || !strings.Contains(stderr, "left out 1 result of inputs the latest runs were not given") {
		t.Errorf("merge: %v (want %v)\n%s%s", err, wholeErr, stderr, diff(got, wholeOut))
	}
}

// noiseFile writes a 64 px noise PNG.
func noiseFile(t *testing.T, path string, seed uint64) {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, noiseRGBA(64, 64, seed)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestMergeRefuses: shards missing, unfinished, of different N or inputs,
// or reporting an input twice are refused with messages that name them.
func TestMergeRefuses(t *testing.T) {
	ckpt := saveSmallModel(t)
	dir, inputs := shardTree(t)
	flags := detectFlags(ckpt, filepath.Join(dir, "heatmaps"))
	out := filepath.Join(dir, "results")
	// K from the environment, as in an indexed Job.
	t.Setenv(shard.EnvSlurm, "")
	for _, k := range []string{"0", "2"} {
		t.Setenv(shard.EnvKubernetes, k)
		_, stderr, err := runCmd(t, detectCmd, append(append(append([]string{}, flags...), "--out", out, "--shard", "/3"), inputs...)...)
		wantPartial(t, "shard "+k, err, stderr)
	}
	shardPath := func(k, n int) string {
		return filepath.Join(out, (shard.Shard{K: k, N: n}).FileName(resultsPrefix, resultsSuffix))
	}
	merge := func(want string, args ...string) {
		t.Helper()
		if len(args) == 0 {
			args = []string{out}
		}
		_, _, err := runCmd(t, mergeCmd, args...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("merge %v: %v, want an error containing %q", args, err, want)
		}
	}
	merge("missing shard(s) of 3: 1/3 (shard-1-of-3.jsonl)")
	t.Setenv(shard.EnvKubernetes, "1")
	_, stderr, err := runCmd(t, detectCmd, append(append(append([]string{}, flags...), "--out", out, "--shard", "/3"), inputs...)...)
	wantPartial(t, "shard 1", err, stderr)
	if _, _, err := runCmd(t, mergeCmd, out); err != nil && !errors.As(err, new(*partialError)) {
		t.Fatalf("merge of 3 shards: %v", err)
	}
	merge("shard 1/3 given twice", out, shardPath(1, 3))

	edit := func(path string, f func(lines []string) []string) func() {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.SplitAfter(string(b), "\n")
		if err := os.WriteFile(path, []byte(strings.Join(f(lines), "")), 0o644); err != nil {
			t.Fatal(err)
		}
		return func() { os.WriteFile(path, b, 0o644) }
	}
	// A shard whose job has not finished: a line missing.
	var full, other string // a shard with 2+ lines, another with 1+
	for k := range 3 {
		if rf, _ := readResults(shardPath(k, 3)); len(rf.lines) >= 2 && full == "" {
			full = shardPath(k, 3)
		} else if len(rf.lines) >= 1 && other == "" {
			other = shardPath(k, 3)
		}
	}
	if full == "" || other == "" {
		t.Fatal("the fixture's shards are too small")
	}
	undo := edit(full, func(l []string) []string { return l[:len(l)-2] })
	merge("not finished: ")
	undo()
	// An input reported by two shards.
	otherLines, _ := os.ReadFile(other)
	undo = edit(full, func(l []string) []string {
		return append(l[:len(l)-2], strings.SplitAfter(string(otherLines), "\n")[1])
	})
	merge("reported twice")
	undo()
	// Shards over other inputs.
	undo = edit(full, func(l []string) []string {
		l[0] = strings.Replace(l[0], `"total":12`, `"total":13`, 1)
		return l
	})
	merge("shards run over different inputs")
	undo()
	// Shards split otherwise.
	_, stderr, err = runCmd(t, detectCmd, append(append(append([]string{}, flags...), "--out", out, "--shard", "0/2"), inputs...)...)
	wantPartial(t, "shard 0/2", err, stderr)
	merge("shards of different runs: N=2 (")
	merge("not a results file", filepath.Join(dir, "single.png"))
	merge("no shards to merge", filepath.Join(dir, "photos"))
}

func TestShardUsage(t *testing.T) {
	t.Setenv(shard.EnvKubernetes, "")
	t.Setenv(shard.EnvSlurm, "")
	for _, tc := range []struct {
		cmd  cmdFunc
		args []string
		want string
	}{
		{detectCmd, []string{"--shard", "0/2", "a.png"}, "need --out DIR"},
		{detectCmd, []string{"--retry-errors", "a.png"}, "need --out DIR"},
		{detectCmd, []string{"--out", "o", "--json", "a.png"}, "--out writes JSON Lines"},
		{detectCmd, []string{"--out", "o", "--shard", "3/2", "a.png"}, "K=3 is outside 0 to 1"},
		{detectCmd, []string{"--out", "o", "--shard", "x/2", "a.png"}, `K "x" is not a number`},
		{detectCmd, []string{"--out", "o", "--shard", "0/0", "a.png"}, "N must be at least 1"},
		{detectCmd, []string{"--out", "o", "--shard", "/2", "a.png"}, "neither $JOB_COMPLETION_INDEX"},
		{prepareCmd, []string{"--out", "o", "--shard", "2/2", "a.png"}, "--shard"},
		{mergeCmd, nil, "nothing to merge"},
		{mergeCmd, []string{"--json", "--csv", "d"}, "exclude each other"},
		{mergeCmd, []string{filepath.Join(t.TempDir(), "absent")}, "no such file"},
	} {
		_, _, err := runCmd(t, tc.cmd, tc.args...)
		var ue *usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want a usage error containing %q", tc.args, err, tc.want)
		}
	}
}

// TestPrepareShardsMerge: lvnet merge DIR writes the index of prepare's
// shards, and refuses output flags for them.
func TestPrepareShardsMerge(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	// The state prepare's shards leave (package prepare tests the runs).
	for k := range 2 {
		s := shard.Shard{K: k, N: 2}
		os.WriteFile(filepath.Join(out, s.FileName(".prepare-shard-", ".json")), []byte(`{"shard":"`+s.String()+`","jobs":1,"done":1}`), 0o644)
		os.WriteFile(filepath.Join(out, s.FileName(".prepare-done-", "")), []byte(fmt.Sprintf("v%d.mp4\n", k)), 0o644)
		os.WriteFile(filepath.Join(out, s.FileName("index-", ".jsonl")), []byte(fmt.Sprintf(`{"image":"real/v%d.mp4/0000.png","label":0,"video":"v%d.mp4","frame":0}`+"\n", k, k)), 0o644)
	}
	_, _, err := runCmd(t, mergeCmd, "--json", out)
	if err == nil || !strings.Contains(err.Error(), "--json, --csv and --out are for the results of lvnet detect") {
		t.Errorf("merge --json of prepare's shards: %v", err)
	}
	_, stderr, err := runCmd(t, mergeCmd, out)
	if err != nil || !strings.Contains(stderr, "2 shards: 2 videos/images, 2 crops in ") {
		t.Fatalf("merge: %v\n%s", err, stderr)
	}
	b, err := os.ReadFile(filepath.Join(out, "index.jsonl"))
	if err != nil || strings.Count(string(b), "\n") != 2 {
		t.Errorf("index.jsonl: %v\n%s", err, b)
	}
}

// TestDetectInterrupted: a run stopped (SIGINT, SIGTERM: its context ends)
// keeps what it wrote and says how to resume; the rerun does the rest.
func TestDetectInterrupted(t *testing.T) {
	ckpt := saveSmallModel(t)
	dir, inputs := shardTree(t)
	out := filepath.Join(dir, "results")
	args := append(append(detectFlags(ckpt, filepath.Join(dir, "heatmaps")), "--out", out), inputs...)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var stderr bytes.Buffer
	err := detectMain(ctx, args, strings.NewReader(""), io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), "interrupted with 11 of 12 inputs left; run the same command again to resume") {
		t.Fatalf("interrupted run: %v\n%s", err, stderr.String())
	}
	_, s, err := runCmd(t, detectCmd, args...)
	wantPartial(t, "rerun", err, s)
	if !strings.Contains(s, "12 inputs: 1 done earlier, 11 now, 0 left") {
		t.Errorf("rerun:\n%s", s)
	}
}
