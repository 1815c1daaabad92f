package prepare

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

	"github.com/lvnet-go/lvnet/data"
	"github.com/lvnet-go/lvnet/internal/fsutil"
	"github.com/lvnet-go/lvnet/internal/shard"
)

// Sharded runs (Options.Shard): N jobs, each given the same inputs and
// output folder with its own shard K/N, process the videos of their shard
// (shard.Key of the video's path below the input folder) into the same
// folder at once. Crops, masks and panels go where an unsharded run puts
// them (every video belongs to one shard, so no two jobs write the same
// folder); the state is the shard's own:
//
//	index-K-of-N.jsonl          the shard's index lines
//	.prepare-done-K-of-N        the shard's done videos
//	.prepare-shard-K-of-N.json  its progress: videos in the shard, done
//	.tmp-K-of-N/                its temporary files
//	.prepare-lock-K-of-N        held (flock) by the shard's job
//
// and each job also holds .prepare-lock shared, which keeps unsharded runs
// and MergeShards out while shards run. MergeShards then writes index.jsonl
// and .prepare-done, the state an unsharded run would leave: `index:DIR`
// and `lvnet train --data DIR` read the folder, and a later unsharded run
// resumes from it.
const (
	shardIndexPrefix  = "index-"
	shardDonePrefix   = ".prepare-done-"
	shardStatusPrefix = ".prepare-shard-"
	lockFile          = ".prepare-lock"
)

// stateFiles are the paths of a run's state in the output folder: an
// unsharded run's, or a shard's (see above).
type stateFiles struct {
	index, done, tmp string
	lock             string // held exclusively
	shared           string // held shared ("" for none)
	status           string // shards: their progress ("" for none)
}

func stateOf(out string, s shard.Shard) stateFiles {
	if !s.Enabled() {
		return stateFiles{
			index: filepath.Join(out, data.IndexFile), done: filepath.Join(out, DoneFile),
			tmp: filepath.Join(out, ".tmp"), lock: filepath.Join(out, lockFile),
		}
	}
	return stateFiles{
		index:  filepath.Join(out, s.FileName(shardIndexPrefix, ".jsonl")),
		done:   filepath.Join(out, s.FileName(shardDonePrefix, "")),
		tmp:    filepath.Join(out, s.FileName(".tmp-", "")),
		lock:   filepath.Join(out, s.FileName(lockFile+"-", "")),
		shared: filepath.Join(out, lockFile),
		status: filepath.Join(out, s.FileName(shardStatusPrefix, ".json")),
	}
}

// lockOut takes the run's locks on the output folder out; the locks go with
// the process.
func (f stateFiles) lockOut(out string, s shard.Shard) (unlock func(), err error) {
	var unlockShared func()
	if f.shared != "" {
		if unlockShared, err = fsutil.TryLock(f.shared, true); err != nil {
			if errors.Is(err, fsutil.ErrLocked) {
				return nil, fmt.Errorf("prepare: an lvnet prepare without --shard, or lvnet merge, is using %s (%s is locked); run the shards when it has finished", out, f.shared)
			}
			return nil, fmt.Errorf("prepare: %w", err)
		}
	}
	unlockOwn, err := fsutil.TryLock(f.lock, false)
	if err != nil {
		if unlockShared != nil {
			unlockShared()
		}
		switch {
		case !errors.Is(err, fsutil.ErrLocked):
			return nil, fmt.Errorf("prepare: %w", err)
		case s.Enabled():
			return nil, fmt.Errorf("prepare: another lvnet prepare --shard %s is writing to %s (%s is locked)", s, out, f.lock)
		default:
			return nil, fmt.Errorf("prepare: another lvnet prepare (or shards of one) is writing to %s (%s is locked)", out, f.lock)
		}
	}
	if unlockShared == nil {
		return unlockOwn, nil
	}
	return func() { unlockOwn(); unlockShared() }, nil
}

// shardStatus is a shard's progress, written when its run starts and when
// it ends (.prepare-shard-K-of-N.json).
type shardStatus struct {
	Shard string `json:"shard"` // "K/N"
	Jobs  int    `json:"jobs"`  // videos and images in the shard
	Done  int    `json:"done"`  // of them done
}

func writeStatus(path string, st shardStatus) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	if err := fsutil.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("prepare: write %s: %w", path, err)
	}
	return nil
}

func readStatus(path string) (shardStatus, error) {
	var st shardStatus
	b, err := os.ReadFile(path)
	if err != nil {
		return st, fmt.Errorf("prepare: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("prepare: %s: %w", path, err)
	}
	return st, nil
}

// shardsIn lists the shards that have run in out (their status files).
func shardsIn(out string) ([]shard.Shard, error) {
	es, err := os.ReadDir(out)
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	var ss []shard.Shard
	for _, e := range es {
		if s, ok := shard.ParseFileName(e.Name(), shardStatusPrefix, ".json"); ok && !e.IsDir() {
			ss = append(ss, s)
		}
	}
	return ss, nil
}

// startShard records that shard s starts in out with jobs videos, done of
// them done earlier, and checks that out holds no shards of another N (a
// run split differently would take some videos twice). The status is
// written before the check, so that of two runs of different N starting
// at once, at least one sees the other; on a conflict a status this call
// created is removed again.
func startShard(out string, f stateFiles, s shard.Shard, jobs, done int) error {
	_, statErr := os.Stat(f.status)
	if err := writeStatus(f.status, shardStatus{Shard: s.String(), Jobs: jobs, Done: done}); err != nil {
		return err
	}
	ss, err := shardsIn(out)
	if err != nil {
		return err
	}
	var other []string
	for _, o := range ss {
		if o.N != s.N {
			other = append(other, o.FileName(shardStatusPrefix, ".json"))
		}
	}
	if len(other) == 0 {
		return nil
	}
	if errors.Is(statErr, fs.ErrNotExist) {
		os.Remove(f.status)
	}
	return fmt.Errorf("prepare: %s holds shards split otherwise (%s): give every shard the same N, or another --out", out, strings.Join(other, ", "))
}

// HasShards reports whether out holds the state of sharded runs (see
// MergeShards).
func HasShards(out string) bool {
	ss, err := shardsIn(out)
	return err == nil && len(ss) > 0
}

// MergeStats summarise MergeShards.
type MergeStats struct {
	Shards  int // N
	Videos  int // done videos and images
	Entries int // index lines written
	Dropped int // index lines of videos a shard had not finished, left out
}

// MergeShards writes out/index.jsonl and out/.prepare-done from the state
// of the shards that prepared out (Options.Shard): the union of their done
// videos, and their index lines of those videos, sorted by video key, then
// frame and image (an order that does not depend on N). Both files are
// written atomically and are what an unsharded run would have left, so the
// folder then reads as one dataset and a later run without --shard
// resumes from it; rerun MergeShards after rerunning shards. It refuses
// while shards run (the lock), when the shards were split differently,
// when a shard is missing or has not finished (naming them), and when
// two shards hold the same video or crop.
func MergeShards(out string) (MergeStats, error) {
	var ms MergeStats
	unlock, err := fsutil.TryLock(filepath.Join(out, lockFile), false)
	if errors.Is(err, fsutil.ErrLocked) {
		return ms, fmt.Errorf("prepare: merge %s: an lvnet prepare is writing to it (%s is locked); merge when every shard has finished", out, filepath.Join(out, lockFile))
	}
	if err != nil {
		return ms, fmt.Errorf("prepare: merge %s: %w", out, err)
	}
	defer unlock()
	found, err := shardsIn(out)
	if err != nil {
		return ms, err
	}
	if len(found) == 0 {
		return ms, fmt.Errorf("prepare: merge %s: no shards there (no %sK-of-N.json files: run lvnet prepare --shard K/N --out %s first)", out, shardStatusPrefix, out)
	}
	statusName := func(s shard.Shard) string { return s.FileName(shardStatusPrefix, ".json") }
	n, missing, err := shard.CheckSet(found, statusName)
	if err != nil {
		return ms, fmt.Errorf("prepare: merge %s: %w", out, err)
	}
	ms.Shards = n
	if len(missing) > 0 {
		names := make([]string, len(missing))
		for i, s := range missing {
			names[i] = s.String()
		}
		return ms, fmt.Errorf("prepare: merge %s: shard(s) %s of %d missing (no %s): run them with --shard K/%d", out, strings.Join(names, ", "), n, statusName(missing[0]), n)
	}
	var unfinished []string
	for k := range n {
		s := shard.Shard{K: k, N: n}
		st, err := readStatus(filepath.Join(out, statusName(s)))
		if err != nil {
			return ms, err
		}
		if st.Done < st.Jobs {
			unfinished = append(unfinished, fmt.Sprintf("%s (%d of %d videos/images done)", s, st.Done, st.Jobs))
		}
	}
	if len(unfinished) > 0 {
		return ms, fmt.Errorf("prepare: merge %s: shard(s) not finished: %s; rerun them (the same command resumes)", out, strings.Join(unfinished, ", "))
	}

	type keyed struct {
		key string
		e   data.IndexEntry
	}
	var all []keyed
	owner := map[string]shard.Shard{} // done key -> its shard
	image := map[string]shard.Shard{} // image -> its shard
	for k := range n {
		s := shard.Shard{K: k, N: n}
		f := stateOf(out, s)
		done, err := readDone(f.done)
		if err != nil {
			return ms, err
		}
		for key := range done {
			if o, ok := owner[key]; ok {
				return ms, fmt.Errorf("prepare: merge %s: video %s is done in shards %s and %s: were the shards given the same inputs?", out, key, o, s)
			}
			owner[key] = s
		}
		es, err := data.ReadIndex(f.index)
		if errors.Is(err, fs.ErrNotExist) {
			continue // a shard without videos, or without crops
		}
		if err != nil {
			return ms, fmt.Errorf("prepare: merge: %w", err)
		}
		for _, e := range es {
			key, ok := keyOfEntry(e, done)
			if !ok {
				ms.Dropped++ // a video interrupted before it was marked done
				continue
			}
			if o, ok := image[e.Image]; ok {
				if o == s {
					ms.Dropped++ // a duplicate line the shard's next run drops
					continue
				}
				return ms, fmt.Errorf("prepare: merge %s: crop %s is in the indexes of shards %s and %s", out, e.Image, o, s)
			}
			image[e.Image] = s
			all = append(all, keyed{key, e})
		}
	}
	sort.SliceStable(all, func(a, b int) bool {
		x, y := all[a], all[b]
		if x.key != y.key {
			return x.key < y.key
		}
		if x.e.Frame != y.e.Frame {
			return x.e.Frame < y.e.Frame
		}
		return x.e.Image < y.e.Image
	})
	idx := filepath.Join(out, data.IndexFile)
	err = fsutil.Write(idx, 0o644, func(w io.Writer) error {
		for _, k := range all {
			b, err := json.Marshal(k.e)
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
		return ms, fmt.Errorf("prepare: merge: write %s: %w", idx, err)
	}
	keys := make([]string, 0, len(owner))
	for k := range owner {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var buf bytes.Buffer
	for _, k := range keys {
		buf.WriteString(k + "\n")
	}
	donePath := filepath.Join(out, DoneFile)
	if err := fsutil.WriteFile(donePath, buf.Bytes(), 0o644); err != nil {
		return ms, fmt.Errorf("prepare: merge: write %s: %w", donePath, err)
	}
	ms.Videos, ms.Entries = len(keys), len(all)
	return ms, nil
}
