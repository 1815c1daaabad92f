package prepare

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/lvnet-go/lvnet/data"
	"github.com/lvnet-go/lvnet/face"
	"github.com/lvnet-go/lvnet/internal/shard"
)

// shardInputs writes photos of real and fake faces in nested folders.
func shardInputs(t *testing.T) string {
	t.Helper()
	in := filepath.Join(t.TempDir(), "in")
	for i := range 14 {
		class := []string{"real", "fake"}[i%2]
		writeImage(t, filepath.Join(in, class, fmt.Sprintf("set%d", i%3), fmt.Sprintf("p%02d.png", i)), coordFrame(120+i, 100))
	}
	return in
}

func shardOptions(out string, s shard.Shard) Options {
	o := quiet()
	o.Out, o.Size, o.Workers, o.Shard = out, 32, 2, s
	o.Detector = &boxDetector{boxes: []face.Box{{X0: 30, Y0: 20, X1: 70, Y1: 60}}}
	return o
}

// files lists the regular files below dir with their contents, state files
// left out.
func files(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if strings.HasPrefix(rel, ".") || strings.HasSuffix(rel, ".jsonl") {
			return nil
		}
		b, err := os.ReadFile(p)
		out[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sortedIndex reads an index sorted as MergeShards sorts it.
func sortedIndex(t *testing.T, path string) []data.IndexEntry {
	t.Helper()
	es, err := data.ReadIndex(path)
	if err != nil {
		t.Fatal(err)
	}
	sort.SliceStable(es, func(a, b int) bool {
		x, y := es[a], es[b]
		if x.Video != y.Video {
			return x.Video < y.Video
		}
		if x.Frame != y.Frame {
			return x.Frame < y.Frame
		}
		return x.Image < y.Image
	})
	return es
}

// TestShardedPrepare: three shards writing one folder, merged, give the
// crops, index and done list of an unsharded run; merging refuses missing
// and unfinished shards and shards split otherwise; reruns skip done work.
func TestShardedPrepare(t *testing.T) {
	in := shardInputs(t)
	ctx := context.Background()
	whole := filepath.Join(t.TempDir(), "whole")
	st, err := Run(ctx, []string{in}, shardOptions(whole, shard.Shard{}))
	if err != nil || st.Done != 14 || st.All != 14 {
		t.Fatalf("unsharded: %+v, %v", st, err)
	}

	out := filepath.Join(t.TempDir(), "sharded")
	const n = 3
	jobs := 0
	run := func(k int) Stats {
		t.Helper()
		st, err := Run(ctx, []string{in}, shardOptions(out, shard.Shard{K: k, N: n}))
		if err != nil {
			t.Fatalf("shard %d/%d: %v", k, n, err)
		}
		if st.All != 14 {
			t.Errorf("shard %d/%d: %d jobs in all, want 14", k, n, st.All)
		}
		return st
	}
	for _, k := range []int{0, 2} {
		st := run(k)
		jobs += st.Jobs
	}
	if _, err := MergeShards(out); err == nil || !strings.Contains(err.Error(), "shard(s) 1/3 of 3 missing") {
		t.Errorf("merge without shard 1: %v", err)
	}
	// Shard 1 is interrupted, then resumed.
	c, cancel := context.WithCancel(ctx)
	o := shardOptions(out, shard.Shard{K: 1, N: n})
	o.Workers = 1
	o.Detector = &boxDetector{boxes: []face.Box{{X0: 30, Y0: 20, X1: 70, Y1: 60}}, cancel: cancel, cancelAt: 2}
	st1, err := Run(c, []string{in}, o)
	cancel()
	if err != nil || !st1.Interrupted || st1.Jobs < 2 {
		t.Fatalf("interrupted shard 1: %+v, %v (a shard of fewer than 2 inputs: change the fixture)", st1, err)
	}
	if _, err := MergeShards(out); err == nil || !strings.Contains(err.Error(), "not finished: 1/3 (") {
		t.Errorf("merge with shard 1 unfinished: %v", err)
	}
	st1 = run(1)
	jobs += st1.Jobs
	if jobs != 14 || st1.Skipped == 0 {
		t.Errorf("the shards hold %d jobs, want 14; shard 1 resumed with %d skipped", jobs, st1.Skipped)
	}
	if st := run(1); st.Done != 0 || st.Skipped != st.Jobs {
		t.Errorf("rerun of a finished shard: %+v", st)
	}

	ms, err := MergeShards(out)
	if err != nil {
		t.Fatal(err)
	}
	if ms != (MergeStats{Shards: 3, Videos: 14, Entries: 14}) {
		t.Errorf("merge stats %+v", ms)
	}
	if got, want := files(t, out), files(t, whole); len(want) < 14 || !reflect.DeepEqual(got, want) {
		t.Errorf("sharded output holds %d files, the unsharded %d (or their contents differ)", len(got), len(want))
	}
	got, want := sortedIndex(t, filepath.Join(out, data.IndexFile)), sortedIndex(t, filepath.Join(whole, data.IndexFile))
	if !reflect.DeepEqual(got, want) {
		t.Errorf("merged index differs from the unsharded one:\n%+v\n%+v", got, want)
	}
	raw, err := data.ReadIndex(filepath.Join(out, data.IndexFile))
	if err != nil || !reflect.DeepEqual(raw, got) {
		t.Errorf("the merged index is not in (video, frame, image) order: %v", err)
	}
	dw, _ := readDone(filepath.Join(whole, DoneFile))
	dm, _ := readDone(filepath.Join(out, DoneFile))
	if !reflect.DeepEqual(dw, dm) {
		t.Errorf("merged done list %v, unsharded %v", dm, dw)
	}
	// The merged folder is a dataset, and an unsharded run resumes from it.
	ds, err := data.Open("index:"+out, data.Options{ImageSize: 32, Warn: io.Discard})
	if err != nil || ds.Len() != 14 {
		t.Fatalf("index:%s: %v", out, err)
	}
	if st, err := Run(ctx, []string{in}, shardOptions(out, shard.Shard{})); err != nil || st.Skipped != 14 || st.Done != 0 {
		t.Errorf("unsharded run after the merge: %+v, %v", st, err)
	}

	// Shards split otherwise are refused, and leave no trace.
	if _, err := Run(ctx, []string{in}, shardOptions(out, shard.Shard{K: 0, N: 2})); err == nil || !strings.Contains(err.Error(), "split otherwise (.prepare-shard-0-of-3.json") {
		t.Errorf("shard 0/2 beside shards of 3: %v", err)
	}
	if HasShards(out) != true {
		t.Error("HasShards: false")
	}
	if _, err := os.Stat(filepath.Join(out, ".prepare-shard-0-of-2.json")); err == nil {
		t.Error("the refused shard left its status")
	}
	if err := os.WriteFile(filepath.Join(out, ".prepare-shard-1-of-4.json"), []byte(`{"shard":"1/4","jobs":1,"done":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := MergeShards(out); err == nil || !strings.Contains(err.Error(), "N=3 (") || !strings.Contains(err.Error(), "N=4 (.prepare-shard-1-of-4.json)") {
		t.Errorf("merge of shards split otherwise: %v", err)
	}
	if _, err := MergeShards(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no shards there") {
		t.Errorf("merge of a folder without shards: %v", err)
	}
}

// TestShardEmpty: a shard without inputs still records that it ran, so
// that the merge finds every shard.
func TestShardEmpty(t *testing.T) {
	in := filepath.Join(t.TempDir(), "real", "one.png")
	writeImage(t, in, coordFrame(120, 100))
	out := t.TempDir()
	key := shard.Key("", in)
	for k := range 2 {
		st, err := Run(context.Background(), []string{in}, shardOptions(out, shard.Shard{K: k, N: 2}))
		want := 0
		if k == shard.Of(key, 2) {
			want = 1
		}
		if err != nil || st.Jobs != want || st.All != 1 {
			t.Fatalf("shard %d/2: %+v, %v; want %d jobs", k, st, err, want)
		}
	}
	ms, err := MergeShards(out)
	if err != nil || ms.Videos != 1 || ms.Entries != 1 {
		t.Fatalf("merge: %+v, %v", ms, err)
	}
}
