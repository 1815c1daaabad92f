// Package sbi makes self-blended images (SBI; Shiohara and Yamasaki, "Detecting
// Deepfakes with Self-Blended Images", CVPR 2022): forged training faces with
// exact forgery masks, made from real faces alone.
//
// One face is both source and target. The source gets small colour,
// contrast and sharpness changes and a small random shift and resize; a blend
// mask is drawn from the landmarks (the convex hull of the face, or one of
// three part-based hulls), deformed, eroded and blurred; and the source is
// alpha-blended into the target through that mask times a random blend
// ratio. The result differs from the input face only where the returned
// mask is above zero.
//
//	img, mask, err := sbi.Blend(face, landmarks, rng, sbi.Options{})
//
// Generator serves self-blended faces from a folder of real face crops (with
// their landmarks from the folder's index.jsonl, as written by `lvnet
// prepare`, or detected on first use and cached) as a data.Generator: the
// `sbi:DIR` training data spec.
//
// Every random choice comes from the caller's *rand.Rand (math/rand/v2), so
// a seed fixes the output.
package sbi
