// Package data opens LVNet's training and evaluation datasets — face crops
// with a pixel mask of the forged area (reals: all zero) and, for the
// semi-supervised variant (SSPSL), a landmark reference region — and loads
// them in deterministic, prefetched, augmented batches (see Loader).
//
// A dataset is named by a spec (the --data flag):
//
//	ffpp:ROOT[?split=train.json&methods=Deepfakes,Face2Face&every=3&real=youtube]
//	    The authors' FaceForensics++ layout: ROOT/<method>/<t>_<s>.mp4/<frame>.png
//	    for the [t, s] pairs of the split file (both orders), reals in
//	    ROOT/youtube/ named the same way; every frame is a 3-panel image
//	    face | mask | extra. The split file is looked up as given, in ROOT
//	    and in ROOT/splits (default <Options.Split>.json).
//	dfb:FILE.json[?dataset=NAME&split=train&compression=c23&root=DIR&every=N]
//	    A DeepfakeBench dataset JSON (dataset -> label -> split ->
//	    [compression ->] video -> {label, frames, masks, landmarks}); label
//	    names containing "real" are real. Relative paths are resolved
//	    against root (default: the JSON's directory).
//	DIR, folder:DIR[?every=N]
//	    Images below a directory named "real" are real, below "fake" fake,
//	    at any depth; the masks of fakes sit in a sibling "masks" directory
//	    under the same relative name. image_<video>_<frame>.png names give
//	    video and frame; otherwise the parent directory is the video.
//	index:DIR/index.jsonl, or a DIR holding index.jsonl
//	    The project's own index (IndexEntry lines, see IndexWriter).
//	dfdc:DIR[?subset=train|val&holdout=0.15]
//	    DFDC face crops: DIR/metadata.csv (videoname, label, original) with
//	    DIR/real/<video>.jpg and DIR/fake/<video>.jpg; a fake is grouped
//	    with the real video it was made from.
//	NAME:ARG (e.g. sbi:DIR)
//	    A generated source registered in Options.Generators.
//
// Folder, index and dfdc specs take method=M1,M2 (the reals and the fakes of
// those methods only) and subset=train|val (holdout=F, default 0.15): a split by source, decided by a hash of each sample's group so that
// it is stable when data is added. The group is the DFDC original, the
// connected FaceForensics++ ids (033_097, 097_033, 033 and 097 together), or
// else the video.
//
// Several specs joined with "+" make one dataset ('+' inside a path is
// kept when what follows it is not a spec). Unreadable or corrupt files are
// skipped with a warning and counted (Dataset.Skipped); structural problems
// (missing directories, bad JSON) are errors at Open naming the file.
//
// Random choices use math/rand/v2.
package data
