// Package prepare turns face videos and photos into LVNet's training data:
// face crops (square, Scale times the detected face box, resized to Size),
// the same geometry cut out of the forgery mask when there is one, the 68
// landmarks in crop coordinates, and an index (data.IndexFile) that `lvnet
// train --data DIR` reads.
//
// Inputs are videos, images, folders of them, or a FaceForensics++ root
// (original_sequences/ and manipulated_sequences/, as the dataset's download
// script lays them out), which is processed whole:
//
//	original_sequences/youtube/<comp>/videos/<id>.mp4           real
//	manipulated_sequences/<Method>/<comp>/videos/<t>_<s>.mp4    fake
//	manipulated_sequences/<Method>/masks/videos/<t>_<s>.mp4     its mask
//
// The output directory holds
//
//	index.jsonl                   one data.IndexEntry per face crop
//	real/<video>/<frame>.png      crops of real videos
//	fake/<video>/<frame>.png      crops of fake videos
//	masks/<video>/<frame>.png     their masks (binary, 0 or 255)
//	<Method>/<name>.mp4/<frame>.png
//	                              with the authors' layout (LayoutAuthors):
//	                              3-panel images face | mask | mask (reals:
//	                              face | black | black), as the authors'
//	                              process/create_dataset_*.py write them
//
// where <video> is the video's key, e.g. Deepfakes/000_003 or youtube/000.
// The real/, fake/ and masks/ folders are also the plain-folder layout that
// data opens without the index.
//
// Work is resumable: a video counts as done once its crops are in place,
// its index lines are written and its key is appended to .prepare-done;
// on the next run done videos are skipped and the lines of a video
// interrupted half-way are dropped from the index before it is redone, so
// the index never holds duplicates. Videos are processed in parallel
// (Options.Workers) with one shared face detector.
//
// Large inputs can be split over N jobs (Options.Shard, `lvnet prepare
// --shard K/N`): each processes a stable subset of the videos into the same
// output directory, with its own state files (index-K-of-N.jsonl,
// .prepare-done-K-of-N), and MergeShards (`lvnet merge DIR`) then writes
// index.jsonl and .prepare-done as an unsharded run would (shards.go).
package prepare
