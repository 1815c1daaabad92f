package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/lvnet-go/lvnet/internal/fsutil"
	"github.com/lvnet-go/lvnet/internal/shard"
	"github.com/lvnet-go/lvnet/prepare"
)

const mergeArgs = "[--json|--csv] [--out FILE] DIR|FILE... (the results of lvnet detect --out DIR --shard K/N), or DIR (the output of lvnet prepare --shard K/N)"

// mergeMain combines the shards of a batch job: the per-shard results
// files of lvnet detect into the output the unsharded run prints, or the
// per-shard state of lvnet prepare into the folder's index.
func mergeMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags(stderr, "merge", mergeArgs)
	asJSON := fs.Bool("json", false, `detect: print {"results":[...],"errors":[...]} as lvnet detect --json does`)
	asCSV := fs.Bool("csv", false, "detect: print the CSV of lvnet detect --csv")
	out := fs.String("out", "", "detect: write the output to FILE (atomically) instead of stdout")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() == 0:
		return usagef("nothing to merge: name the --out folder of the shards (or their shard-K-of-N.jsonl files)")
	case *asJSON && *asCSV:
		return usagef("--json and --csv exclude each other")
	}
	var files []string
	var prepared []string
	for _, a := range fs.Args() {
		st, err := os.Stat(a)
		if err != nil {
			return usagef("%v", err)
		}
		if !st.IsDir() {
			files = append(files, a)
			continue
		}
		found, err := resultsFiles(a)
		if err != nil {
			return err
		}
		files = append(files, found...)
		if prepare.HasShards(a) {
			prepared = append(prepared, a)
		}
		if len(found) == 0 && !prepare.HasShards(a) {
			return fmt.Errorf("%s: no shards to merge (no %sK-of-N%s of lvnet detect --out, no state of lvnet prepare --shard)", a, resultsPrefix, resultsSuffix)
		}
	}
	if len(prepared) > 0 {
		switch {
		case len(files) > 0:
			return usagef("give the results of lvnet detect and the output of lvnet prepare to separate merges")
		case len(prepared) > 1:
			return usagef("lvnet prepare's shards are merged one folder at a time")
		case *asJSON || *asCSV || *out != "":
			return usagef("--json, --csv and --out are for the results of lvnet detect; lvnet prepare's shards merge into %s", filepath.Join(prepared[0], "index.jsonl"))
		}
		ms, err := prepare.MergeShards(prepared[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "lvnet merge: %d shards: %d videos/images, %s in %s", ms.Shards, ms.Videos,
			plural(ms.Entries, "crop"), filepath.Join(prepared[0], "index.jsonl"))
		if ms.Dropped > 0 {
			fmt.Fprintf(stderr, " (%s of unfinished videos left out)", plural(ms.Dropped, "index line"))
		}
		fmt.Fprintln(stderr)
		return nil
	}

	rows, opts, orphans, err := mergeResults(files)
	if err != nil {
		return err
	}
	if orphans > 0 {
		fmt.Fprintf(stderr, "lvnet merge: left out %s of inputs the latest runs were not given\n", plural(orphans, "result"))
	}
	write := func(w io.Writer) error { return printOutcomes(w, rows, *asJSON, *asCSV, opts.Threshold) }
	if *out != "" {
		if err := fsutil.Write(*out, 0o644, write); err != nil {
			return fmt.Errorf("write %s: %w", *out, err)
		}
	} else if err := write(stdout); err != nil {
		return err
	}
	if n := failures(rows); n > 0 {
		return &partialError{failed: n}
	}
	return nil
}

// resultsFiles lists the results files of lvnet detect --out in dir,
// sorted by shard.
func resultsFiles(dir string) ([]string, error) {
	es, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	type named struct {
		s    shard.Shard
		path string
	}
	var found []named
	for _, e := range es {
		if s, ok := shard.ParseFileName(e.Name(), resultsPrefix, resultsSuffix); ok && !e.IsDir() {
			found = append(found, named{s, filepath.Join(dir, e.Name())})
		}
	}
	sort.Slice(found, func(a, b int) bool {
		if found[a].s.N != found[b].s.N {
			return found[a].s.N < found[b].s.N
		}
		return found[a].s.K < found[b].s.K
	})
	out := make([]string, len(found))
	for i, f := range found {
		out[i] = f.path
	}
	return out, nil
}
