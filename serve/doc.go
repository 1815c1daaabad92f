// Package serve is LVNet's HTTP server (`lvnet serve`): an API to analyse
// photos and videos, health and Prometheus metrics endpoints, and a web
// page to drop a file on and see the verdict, the heatmaps and, for
// videos, a per-frame chart. It runs any detect.Analyzer (in production a
// detect.Pipeline).
//
// # API
//
// POST /v1/detect analyses one file, sent as the part named "file" of a
// multipart/form-data body (a form without one may hold a single file
// part of any name; other file parts beside "file" are ignored, whatever
// their order), or as the whole body (name it with ?name=). The format comes from the file's first bytes, not
// from its Content-Type (the name's extension only decides for video
// streams without a signature, such as raw H.264). Query parameters:
//
//	threshold=T    label threshold on p_fake, in (0, 1] (server default 0.5)
//	aligned=1      the file is an aligned face crop, used whole
//	every=N        videos: analyse every Nth frame
//	max_frames=N   videos: at most N frames (capped by the server's limit)
//	max_faces=N    at most N faces per frame (1 to 256)
//	inline=1       heatmaps as data:image/png;base64 URLs in the JSON
//	heatmaps=0     no heatmaps (default: links, GET /v1/heatmaps/TOKEN.png,
//	               kept in memory for a while)
//
// The answer (200) is the JSON of `lvnet detect --json` with one result,
// plus the model and the analysis time:
//
//	{"results": [{"input": "me.jpg", "kind": "image", "p_fake": 0.93,
//	  "label": "fake", "patch_p_fake": [[...]], "faces": [...]}],
//	 "model": {...}, "elapsed_s": 0.41}
//
// A file without faces is not an error: 200 with label "none". Errors are
// {"error": "me.jpg: truncated PNG ...", "code": "truncated"} with status
//
//	400  bad input: empty, truncated, corrupt, malformed upload or query
//	405  wrong method (Allow says which)
//	408  the upload stalled (upload_stalled), was too slow (upload_too_slow)
//	     or took longer than the request timeout (upload_timeout)
//	413  upload above Config.MaxUploadBytes, or a picture above the pixel limit
//	415  not an image or a video ("looks like text", "a PDF document", ...)
//	422  an analysis the analyzer cannot do (code needs_aligned: send aligned=1)
//	503  busy: the analysis slots and the queue are full, too many uploads
//	     are in progress, or the wait in the queue ran out; Retry-After
//	     says when to try again
//	504  the analysis took longer than the request timeout
//	500  the analyzer failed (the details go to the server log only)
//
// GET /healthz answers {"status": "ok", "model": ..., "threshold": ...,
// "aligned": ..., "running": ..., "queued": ..., "uploading": ..., ...}
// (uploading: requests still receiving their file). GET /metrics
// answers the Prometheus text format (0.0.4): lvnet_http_requests_total
// by path and code, the lvnet_inference_duration_seconds histogram,
// lvnet_inferences_in_flight, lvnet_queue_length, lvnet_requests_in_flight,
// lvnet_uploads_in_progress,
// lvnet_faces_analysed_total, lvnet_results_total by label,
// lvnet_analysis_errors_total by code, upload counters and the start time.
// GET / is the web page (self-contained: no other origin is contacted).
//
// # Guards
//
// Uploads are bounded in size, and in time: one that sends nothing for
// Config.UploadIdleTimeout (20 s), or that after that long has sent less
// than Config.MinUploadRate (8 KiB/s) on average, is ended with 408. At
// most Config.MaxUploads (16) requests receive their file at once, each
// keeping at most 16 MiB in memory (larger images are spooled to disk, as
// videos are). A request takes an admission place only once its file is
// received, so clients that send slowly cannot keep others from being
// served: at most Config.MaxConcurrent analyses run at once and
// Config.QueueLen more requests may wait for a slot (for at most
// Config.QueueWait); requests beyond that are answered 503, at once and
// before their body is read when every place is already taken, as are
// uploads beyond MaxUploads. Every request has a deadline
// (Config.RequestTimeout); an analyzer that overruns it keeps its slot
// until it returns, so the bound on concurrent analyses holds. Analyzer panics become 500s. Serve
// and ServeListener shut down gracefully when their context ends.
//
// Client file names are only shown, never used as paths: images stay in
// memory (up to 16 MiB) and videos and larger images are spooled to
// server-named temporary files in Config.TempDir, removed when the
// analysis ends. Server paths are kept
// out of answers.
package serve
