package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/lvnet-go/lvnet/internal/shard"
	"github.com/lvnet-go/lvnet/media"
)

// isMedia reports whether a file name has a photo or video extension (the
// pictures package media decodes, the usual video containers).
func isMedia(name string) bool { return media.IsImageExt(name) || media.IsVideoExt(name) }

// entry is an input as named: a file to analyse, or a failure (a folder
// that cannot be read or holds nothing to analyse).
type entry struct {
	path string
	fail string // reason, "" for a file to analyse
	// key picks the entry's shard (--shard): its path relative to the
	// folder argument it was found under, or the path as named
	// (shard.Key).
	key string
}

// expandInputs turns the arguments into entries: files as given (whatever
// their name), folders walked recursively in lexical order for photos and
// videos (by extension; hidden files and folders left out; see walkFolder
// for links), and "-" read as a list of paths, one a line, from stdin.
// warn receives what was skipped, ready to print. No inputs at all (an
// empty list on stdin) is a usage error.
func expandInputs(args []string, stdin io.Reader, warn func(string)) ([]entry, error) {
	var out []entry
	fromStdin := false
	add := func(arg string) {
		st, err := os.Stat(arg)
		if err != nil || !st.IsDir() {
			out = append(out, entry{path: arg, key: shard.Key("", arg)}) // analysing it tells what is wrong
			return
		}
		es := walkFolder(arg, warn)
		for i := range es {
			es[i].key = shard.Key(arg, es[i].path)
		}
		out = append(out, es...)
	}
	for _, a := range args {
		if a != "-" {
			add(a)
			continue
		}
		if fromStdin {
			return nil, usagef("- (read paths from stdin) given twice")
		}
		fromStdin = true
		sc := bufio.NewScanner(stdin)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if line := strings.TrimRight(sc.Text(), "\r"); strings.TrimSpace(line) != "" {
				add(line)
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("read paths from stdin: %w", err)
		}
	}
	if len(out) == 0 {
		return nil, usagef("no inputs: - read no paths from stdin")
	}
	return out, nil
}

// walkFolder lists the photos and videos under dir (see expandInputs).
// A link to a file is followed wherever it points and analysed under the
// link's name, unless it is a second name of a file already listed; links
// that point out of dir are named in a warning. Links to folders are not
// followed (so the walk cannot loop); they, and links that dangle, loop or
// name something other than a file, are skipped and counted in a warning
// (those whose names have no photo or video extension only when they point
// to a folder).
func walkFolder(dir string, warn func(string)) []entry {
	var out []entry
	found, failed := 0, 0
	var links []entry // links to files, kept when not duplicates
	skipped := map[string][]string{}
	var outside []string
	root, rootErr := filepath.EvalSymlinks(dir)
	start := dir
	if st, err := os.Lstat(dir); err == nil && st.Mode()&fs.ModeSymlink != 0 {
		start = dir + string(filepath.Separator) // a folder named by a link: walk what it names
	}
	werr := filepath.WalkDir(start, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			out = append(out, entry{path: path, fail: err.Error()})
			failed++
			if d != nil && d.IsDir() && path != start {
				return fs.SkipDir
			}
			return nil
		}
		if path != start && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		switch {
		case d.Type().IsRegular():
			if isMedia(path) {
				out = append(out, entry{path: path})
				found++
			}
		case d.Type()&fs.ModeSymlink != 0:
			st, err := os.Stat(path)
			var why string
			switch {
			case errors.Is(err, fs.ErrNotExist):
				why = "dangling"
			case errors.Is(err, syscall.ELOOP):
				why = "in a loop of links"
			case err != nil:
				why = "unreadable"
			case st.IsDir():
				skipped["to a folder, not followed"] = append(skipped["to a folder, not followed"], path)
				return nil
			case !st.Mode().IsRegular():
				why = "not to a file"
			}
			if why != "" {
				if isMedia(path) {
					skipped[why] = append(skipped[why], path)
				}
				return nil
			}
			target, terr := filepath.EvalSymlinks(path)
			if !isMedia(path) && (terr != nil || !isMedia(target)) {
				return nil
			}
			links = append(links, entry{path: path})
			out = append(out, entry{path: path}) // dropped below when a duplicate
			if terr == nil && rootErr == nil && !within(root, target) {
				outside = append(outside, path+" -> "+target)
			}
		}
		return nil
	})
	if len(links) > 0 {
		var dups []string
		out, dups = dropDuplicates(out, links)
		if len(dups) > 0 {
			skipped["to a file listed already"] = dups
		}
		found += len(links) - len(dups)
	}
	var notes []string
	if n := countAll(skipped); n > 0 {
		msg := fmt.Sprintf("skipped %s: %s", plural(n, "link"), describe(skipped))
		notes = append(notes, msg)
		warn(termSafe(dir) + ": " + termSafe(msg))
	}
	if len(outside) > 0 {
		warn(termSafe(dir) + ": " + termSafe(fmt.Sprintf("followed %s out of the folder: %s", plural(len(outside), "link"), listSome(outside))))
	}
	switch {
	case werr != nil:
		out = append(out, entry{path: dir, fail: werr.Error()})
	case found == 0 && failed == 0:
		reason := "no photos or videos in this folder"
		if len(notes) > 0 {
			reason += " (" + strings.Join(notes, "; ") + ")"
		}
		out = append(out, entry{path: dir, fail: reason})
	}
	return out
}

// within reports whether path lies in the folder root (both resolved).
func within(root, path string) bool {
	rel, err := filepath.Rel(root, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// dropDuplicates removes from out the links that name a file out already
// lists (a file, or an earlier link to the same file), returning the rest
// and the paths of the links removed.
func dropDuplicates(out, links []entry) ([]entry, []string) {
	isLink := map[string]bool{}
	for _, l := range links {
		isLink[l.path] = true
	}
	type fileID struct{ dev, ino uint64 }
	id := func(path string) (fileID, bool) {
		st, err := os.Stat(path)
		if err != nil {
			return fileID{}, false
		}
		sys, ok := st.Sys().(*syscall.Stat_t)
		if !ok {
			return fileID{}, false
		}
		return fileID{uint64(sys.Dev), uint64(sys.Ino)}, true
	}
	seen := map[fileID]bool{}
	// Files first: a link never hides the file it names.
	for _, e := range out {
		if e.fail == "" && !isLink[e.path] {
			if k, ok := id(e.path); ok {
				seen[k] = true
			}
		}
	}
	var kept []entry
	var dups []string
	for _, e := range out {
		if e.fail == "" && isLink[e.path] {
			if k, ok := id(e.path); ok {
				if seen[k] {
					dups = append(dups, e.path)
					continue
				}
				seen[k] = true
			}
		}
		kept = append(kept, e)
	}
	return kept, dups
}

func countAll(m map[string][]string) int {
	n := 0
	for _, v := range m {
		n += len(v)
	}
	return n
}

// describe words the skipped links by reason: "1 dangling (a.jpg); 2 to a
// folder, not followed (x, y)".
func describe(m map[string][]string) string {
	reasons := make([]string, 0, len(m))
	for r := range m {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	parts := make([]string, len(reasons))
	for i, r := range reasons {
		parts[i] = fmt.Sprintf("%d %s (%s)", len(m[r]), r, listSome(m[r]))
	}
	return strings.Join(parts, "; ")
}

// listSome lists at most three items, then how many more.
func listSome(items []string) string {
	if len(items) <= 3 {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:3], ", ") + fmt.Sprintf(" and %d more", len(items)-3)
}
