package media

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// VideoInfo describes a video stream, as probed by ffprobe.
type VideoInfo struct {
	// Width and Height are the size of the decoded frames, rotation
	// applied.
	Width, Height int
	// FPS is the frame rate (frames per second).
	FPS float64
	// Duration is the length of the video.
	Duration time.Duration
	// Frames is the number of frames: from the container when it says,
	// else estimated from Duration and FPS (FramesExact false).
	Frames      int
	FramesExact bool
	// Rotation is the display rotation in degrees that decoding applies.
	Rotation int
	// Codec and Format name the codec and container.
	Codec, Format string
}

// VideoOptions select the frames a Video yields. The zero value yields
// every frame with the default limits.
type VideoOptions struct {
	// Every yields every Nth frame (frames 0, N, 2N, ...); 0 or 1 yields
	// all.
	Every int
	// Count yields this many frames spread evenly over the video (the
	// first and the last included, as numpy.linspace(0, frames-1,
	// Count)); it overrides Every. All frames when the video has fewer.
	Count int
	// Limits bound the frame size, duration and number of frames yielded;
	// zero fields select the defaults.
	Limits Limits

	// skipInGo decodes every frame to RGB and drops the unwanted ones in
	// Go instead of ffmpeg's select filter (kept for the benchmark that
	// compares the two).
	skipInGo bool
}

// Frame is one decoded video frame.
type Frame struct {
	// Index is the frame number in the video (0-based).
	Index int
	// Time is the frame's time in seconds (Index/FPS).
	Time float64
	// Img holds the pixels (alpha 255).
	Img *image.RGBA
}

// Video streams the frames of a video file from an ffmpeg process as raw
// RGB over a pipe; nothing is written to disk. Not safe for concurrent use.
type Video struct {
	// Info is what ffprobe found.
	Info VideoInfo

	path, name string
	cmd        *exec.Cmd
	out        io.ReadCloser
	rd         *bufio.Reader
	stderr     *ffmpegLog
	want       []int // frame indices yielded in order (nil: every Nth by `every`)
	every      int
	skipInGo   bool
	maxFrames  int
	n          int // frames read from the pipe
	next       int // frame number after the last one read from the pipe
	count      int // frames returned
	wi         int // next position in want (skipInGo)
	raw        []byte
	frames     chan result   // from the reading goroutine
	quit       chan struct{} // closed by Close
	err        error         // sticky: io.EOF or the failure
	closeOnce  sync.Once
}

// result is a frame or the error ending the stream.
type result struct {
	f   Frame
	err error
}

// videoExt reports whether a file extension is taken for a video.
func videoExt(ext string) bool {
	switch strings.ToLower(ext) {
	case ".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".ts", ".mts",
		".m2ts", ".flv", ".wmv", ".3gp", ".3g2", ".ogv", ".mxf", ".vob":
		return true
	}
	return false
}

// IsVideoExt reports whether name (a file name or path) has, in any case,
// the extension of a usual video container; IsVideo also looks at the
// file's first bytes.
func IsVideoExt(name string) bool { return videoExt(filepath.Ext(name)) }

// IsVideo reports whether path looks like a video: by its first bytes when
// they are those of a known container (or of an image, which is not a
// video), else by its extension.
func IsVideo(path string) bool {
	if head := fileHead(path); head != nil {
		n := len(head)
		if sniffVideo(head) != "" {
			return true
		}
		heif := IsHEIF(head)
		if heif || sniffImage(head) != "" || (n > 0 && LooksLikeText(head)) {
			return false
		}
	}
	return videoExt(filepath.Ext(path))
}

// fileHead returns the first 512 bytes of a file (nil when unreadable or
// empty).
func fileHead(path string) []byte {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	head := make([]byte, 512)
	n, _ := io.ReadFull(f, head)
	if n == 0 {
		return nil
	}
	return head[:n]
}

// sniffVideo names the container of b from its magic bytes ("" when
// unknown).
func sniffVideo(b []byte) string {
	switch {
	case len(b) >= 12 && string(b[4:8]) == "ftyp" && !isHEIF(string(b[8:12])):
		if string(b[8:10]) == "qt" {
			return "QuickTime"
		}
		return "MP4"
	case bytes.HasPrefix(b, []byte{0x1A, 0x45, 0xDF, 0xA3}):
		return "Matroska/WebM"
	case len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "AVI ":
		return "AVI"
	case bytes.HasPrefix(b, []byte("FLV\x01")):
		return "FLV"
	case bytes.HasPrefix(b, []byte{0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11}):
		return "ASF/WMV"
	case bytes.HasPrefix(b, []byte{0x00, 0x00, 0x01, 0xBA}):
		return "MPEG-PS"
	case len(b) >= 377 && b[0] == 0x47 && b[188] == 0x47 && b[376] == 0x47:
		return "MPEG-TS"
	case bytes.HasPrefix(b, []byte("OggS")) && bytes.Contains(b[:min(len(b), 64)], []byte("theora")):
		return "Ogg"
	}
	return ""
}

// ProbeVideo runs ffprobe on path and describes its first video stream.
func ProbeVideo(path string) (VideoInfo, error) {
	name := filepath.Base(path)
	st, err := os.Stat(path)
	if err != nil {
		return VideoInfo{}, fmt.Errorf("open video: %w", err)
	}
	if st.IsDir() {
		return VideoInfo{}, fmt.Errorf("%s: %w: is a directory", path, ErrNotVideo)
	}
	if st.Size() == 0 {
		return VideoInfo{}, fmt.Errorf("%s: %w", name, ErrEmpty)
	}
	if head := fileHead(path); sniffVideo(head) == "" {
		switch {
		case IsHEIF(head):
			return VideoInfo{}, fmt.Errorf("%s: %w (a HEIF/AVIF image)", name, ErrNotVideo)
		case sniffImage(head) != "":
			return VideoInfo{}, fmt.Errorf("%s: %w (a %s image)", name, ErrNotVideo, sniffImage(head))
		case LooksLikeText(head):
			return VideoInfo{}, fmt.Errorf("%s: %w (looks like text)", name, ErrNotVideo)
		}
	}
	if _, err := exec.LookPath("ffprobe"); err != nil {
		return VideoInfo{}, fmt.Errorf("%s: reading videos needs ffprobe and ffmpeg (Debian package ffmpeg): %w", name, err)
	}
	cmd := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0",
		"-show_entries", "stream=codec_name,width,height,r_frame_rate,avg_frame_rate,nb_frames,duration:stream_tags=rotate:stream_side_data=rotation:format=duration,format_name",
		"-of", "json", "--", path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		full := stderr.String()
		msg := strings.ReplaceAll(lastLine(full), path, name)
		kind := ErrNotVideo
		if strings.Contains(full, "moov atom not found") || strings.Contains(full, "ended prematurely") {
			kind = ErrTruncated
			msg = "moov atom not found: the file ends before the index an MP4/MOV needs"
		}
		return VideoInfo{}, fmt.Errorf("%s: %w (ffprobe: %s)", name, kind, msg)
	}
	var pr struct {
		Streams []struct {
			Codec        string `json:"codec_name"`
			Width        int    `json:"width"`
			Height       int    `json:"height"`
			RFrameRate   string `json:"r_frame_rate"`
			AvgFrameRate string `json:"avg_frame_rate"`
			NbFrames     string `json:"nb_frames"`
			Duration     string `json:"duration"`
			Tags         struct {
				Rotate string `json:"rotate"`
			} `json:"tags"`
			SideData []struct {
				Rotation *float64 `json:"rotation"`
			} `json:"side_data_list"`
		} `json:"streams"`
		Format struct {
			Duration string `json:"duration"`
			Name     string `json:"format_name"`
		} `json:"format"`
	}
	if err := json.Unmarshal(out, &pr); err != nil {
		return VideoInfo{}, fmt.Errorf("%s: reading ffprobe's answer: %w", name, err)
	}
	if len(pr.Streams) == 0 {
		return VideoInfo{}, fmt.Errorf("%s: %w: no video stream (format %s)", name, ErrNotVideo, pr.Format.Name)
	}
	s := pr.Streams[0]
	info := VideoInfo{Width: s.Width, Height: s.Height, Codec: s.Codec, Format: pr.Format.Name}
	if s.Tags.Rotate != "" {
		info.Rotation, _ = strconv.Atoi(s.Tags.Rotate)
	}
	for _, sd := range s.SideData {
		if sd.Rotation != nil {
			info.Rotation = int(math.Round(*sd.Rotation))
		}
	}
	if r := ((info.Rotation % 360) + 360) % 360; r == 90 || r == 270 {
		info.Width, info.Height = info.Height, info.Width
	}
	info.FPS = parseRate(s.AvgFrameRate)
	if info.FPS <= 0 || info.FPS > 1000 {
		info.FPS = parseRate(s.RFrameRate)
	}
	dur := parseFloat(s.Duration)
	if dur <= 0 {
		dur = parseFloat(pr.Format.Duration)
	}
	info.Duration = time.Duration(dur * float64(time.Second))
	if n, err := strconv.Atoi(s.NbFrames); err == nil && n > 0 {
		info.Frames, info.FramesExact = n, true
	} else if dur > 0 && info.FPS > 0 {
		info.Frames = int(math.Round(dur * info.FPS))
	}
	return info, nil
}

func parseRate(s string) float64 {
	num, den, ok := strings.Cut(s, "/")
	if !ok {
		return parseFloat(s)
	}
	a, b := parseFloat(num), parseFloat(den)
	if b == 0 {
		return 0
	}
	return a / b
}

func parseFloat(s string) float64 {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

// spread returns count indices spread evenly over [0, total), as
// numpy.linspace(0, total-1, count).astype(int).
func spread(total, count int) []int {
	if count >= total {
		idx := make([]int, total)
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	if count == 1 {
		return []int{0}
	}
	idx := make([]int, count)
	for k := range idx {
		idx[k] = int(float64(k) * float64(total-1) / float64(count-1))
	}
	return idx
}

// OpenVideo probes path, checks the limits and starts decoding. Read frames
// with Next; Close stops ffmpeg.
func OpenVideo(path string, opts VideoOptions) (*Video, error) {
	lim := opts.Limits.withDefaults()
	info, err := ProbeVideo(path)
	if err != nil {
		return nil, err
	}
	name := filepath.Base(path)
	if err := lim.checkPixels(name, info.Width, info.Height); err != nil {
		return nil, err
	}
	if lim.MaxDuration > 0 && info.Duration > lim.MaxDuration {
		return nil, fmt.Errorf("%s: %w: the video lasts %v, the limit is %v", name, ErrTooLarge, info.Duration.Round(time.Second), lim.MaxDuration)
	}
	v := &Video{Info: info, path: path, name: name, every: max(opts.Every, 1), skipInGo: opts.skipInGo, maxFrames: lim.MaxFrames}
	if opts.Count < 0 || opts.Every < 0 {
		return nil, fmt.Errorf("%s: bad sampling: Count %d, Every %d", name, opts.Count, opts.Every)
	}
	expect := (info.Frames + v.every - 1) / v.every
	if opts.Count > 0 {
		total := info.Frames
		if total <= 0 {
			return nil, fmt.Errorf("%s: cannot spread %d frames: ffprobe gives neither a frame count nor a duration", name, opts.Count)
		}
		v.want = spread(total, opts.Count)
		expect = len(v.want)
	}
	if lim.MaxFrames > 0 && expect > lim.MaxFrames {
		return nil, fmt.Errorf("%s: %w: sampling gives %d frames, the limit is %d", name, ErrTooLarge, expect, lim.MaxFrames)
	}
	// At the verbose level ffmpeg ends with how many frames it decoded;
	// the errors are told apart by their level tag (ffmpegLog).
	args := []string{"-loglevel", "level+verbose", "-nostats", "-nostdin", "-i", path, "-map", "0:v:0"}
	if !v.skipInGo {
		switch {
		case v.want != nil && len(v.want) < info.Frames:
			terms := make([]string, len(v.want))
			for i, n := range v.want {
				terms[i] = "eq(n\\," + strconv.Itoa(n) + ")"
			}
			args = append(args, "-vf", "select="+strings.Join(terms, "+"))
		case v.want == nil && v.every > 1:
			args = append(args, "-vf", "select=not(mod(n\\,"+strconv.Itoa(v.every)+"))")
		}
	}
	args = append(args, "-vsync", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-")
	v.cmd = exec.Command("ffmpeg", args...)
	v.stderr = newFFmpegLog()
	v.cmd.Stderr = v.stderr
	if v.out, err = v.cmd.StdoutPipe(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := v.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: start ffmpeg: %w", name, err)
	}
	v.rd = bufio.NewReaderSize(v.out, 1<<20)
	v.raw = make([]byte, 3*info.Width*info.Height)
	v.frames = make(chan result, 2)
	v.quit = make(chan struct{})
	go v.produce()
	return v, nil
}

// indexOf returns the video frame number of the k-th frame that ffmpeg
// sends, and whether that frame is yielded.
func (v *Video) indexOf(k int) (int, bool) {
	if !v.skipInGo { // ffmpeg's select filter sent only the wanted frames
		switch {
		case v.want != nil && k < len(v.want):
			return v.want[k], true
		case v.want != nil:
			return k, true
		}
		return k * v.every, true
	}
	if v.want != nil {
		for v.wi < len(v.want) && v.want[v.wi] < k {
			v.wi++
		}
		if v.wi < len(v.want) && v.want[v.wi] == k {
			v.wi++
			return k, true
		}
		return k, false
	}
	return k, k%v.every == 0
}

// Next returns the next frame; io.EOF after the last. A video that ends
// early or has corrupt data gives an error (naming the file and how many
// frames were read) instead of io.EOF once the frames before the damage
// have been returned. Frames are decoded ahead (up to two) while the caller
// works on the previous one.
func (v *Video) Next() (Frame, error) {
	if v.err != nil {
		return Frame{}, v.err
	}
	r, ok := <-v.frames
	switch {
	case !ok:
		v.err = fmt.Errorf("%s: video is closed", v.name)
	case r.err != nil:
		v.err = r.err
	default:
		return r.f, nil
	}
	return Frame{}, v.err
}

// produce reads frames from ffmpeg into v.frames until the stream ends
// (sending the final error or io.EOF) or Close asks it to stop. It alone
// waits for the ffmpeg process.
func (v *Video) produce() {
	defer close(v.frames)
	for {
		f, err := v.read()
		select {
		case v.frames <- result{f, err}:
		case <-v.quit:
			if err == nil { // ffmpeg is still to be reaped
				_ = v.drainExit()
			}
			return
		}
		if err != nil {
			return
		}
	}
}

// drainExit reaps ffmpeg after Close killed it.
func (v *Video) drainExit() error {
	_, _ = io.Copy(io.Discard, v.rd)
	return v.cmd.Wait()
}

// read returns the next wanted frame from the pipe, or the error that ends
// the stream (io.EOF when it ended cleanly).
func (v *Video) read() (Frame, error) {
	for {
		if _, err := io.ReadFull(v.rd, v.raw); err != nil {
			partial := errors.Is(err, io.ErrUnexpectedEOF)
			if !errors.Is(err, io.EOF) && !partial {
				_ = v.drainExit()
				return Frame{}, fmt.Errorf("%s: reading frames from ffmpeg after %d frames: %w", v.name, v.count, err)
			}
			return Frame{}, v.endError(partial)
		}
		k := v.n
		v.n++
		idx, ok := v.indexOf(k)
		v.next = max(v.next, idx+1)
		if !ok {
			continue
		}
		if v.maxFrames > 0 && v.count >= v.maxFrames {
			_ = v.cmd.Process.Kill()
			_ = v.drainExit()
			return Frame{}, fmt.Errorf("%s: %w: more than %d frames", v.name, ErrTooLarge, v.maxFrames)
		}
		v.count++
		img := image.NewRGBA(image.Rect(0, 0, v.Info.Width, v.Info.Height))
		rgbToRGBA(v.raw, img.Pix)
		t := 0.0
		if v.Info.FPS > 0 {
			t = float64(idx) / v.Info.FPS
		}
		return Frame{Index: idx, Time: t, Img: img}, nil
	}
}

// endError waits for ffmpeg after the pipe ended and returns io.EOF for a
// clean end, or an error saying how the video was damaged.
func (v *Video) endError(partial bool) error {
	werr := v.cmd.Wait()
	msg, decoded := v.stderr.result()
	if werr == nil && msg == "" && !partial {
		return io.EOF
	}
	// Frames decoded: ffmpeg's count, else those read from the pipe (all
	// that were decoded when ffmpeg does not select), else at least up to
	// the last one ffmpeg sent.
	count := fmt.Sprint(decoded)
	switch {
	case decoded >= 0:
	case v.skipInGo || (v.want == nil && v.every == 1):
		decoded, count = v.n, fmt.Sprint(v.n)
	default:
		decoded, count = v.next, fmt.Sprint("at least ", v.next)
	}
	kind := ErrCorrupt
	low := strings.ToLower(msg)
	if partial || strings.Contains(low, "prematurely") || strings.Contains(low, "partial file") ||
		strings.Contains(low, "truncat") || (v.Info.FramesExact && decoded < v.Info.Frames) {
		kind = ErrTruncated
	}
	detail := lastLine(msg)
	if detail == "" && werr != nil {
		detail = werr.Error()
	}
	if detail == "" {
		detail = "the last frame is incomplete"
	}
	return fmt.Errorf("%s: %w video: decoding stopped after %d frames were read (%s of about %d decoded): %s",
		v.name, kind, v.count, count, v.Info.Frames, detail)
}

// Close stops decoding: it kills ffmpeg and waits for it. Safe to call more
// than once; Next returns an error afterwards.
func (v *Video) Close() error {
	v.closeOnce.Do(func() {
		close(v.quit)
		if v.cmd.Process != nil {
			_ = v.cmd.Process.Kill() // fails harmlessly when ffmpeg has exited
		}
		for range v.frames { // let the reader finish (it reaps ffmpeg)
		}
	})
	if v.err == nil {
		v.err = fmt.Errorf("%s: video is closed", v.name)
	}
	return nil
}

// ReadFrames decodes the frames of a video selected by opts. On a truncated
// or corrupt video it returns the frames read before the damage together
// with the error.
func ReadFrames(path string, opts VideoOptions) ([]Frame, error) {
	v, err := OpenVideo(path, opts)
	if err != nil {
		return nil, err
	}
	defer v.Close()
	var frames []Frame
	for {
		f, err := v.Next()
		if err == io.EOF {
			return frames, nil
		}
		if err != nil {
			return frames, err
		}
		frames = append(frames, f)
	}
}

// rgbToRGBA expands packed RGB to RGBA with alpha 255.
func rgbToRGBA(src, dst []byte) {
	n := len(src) / 3
	_ = dst[4*n-1]
	for i := 0; i < n; i++ {
		s := src[3*i : 3*i+3 : 3*i+3]
		d := dst[4*i : 4*i+4 : 4*i+4]
		d[0], d[1], d[2], d[3] = s[0], s[1], s[2], 255
	}
}

// lastLine returns the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			return l
		}
	}
	return ""
}

// ffmpegLog takes the stderr of ffmpeg run with -loglevel level+verbose:
// it keeps the last 4 KiB of the errors (lines tagged [error], [fatal] or
// [panic], without the tag) and the number of frames ffmpeg decoded, from
// its closing statistics ("Input stream #0:0 (video): 19 packets read
// (474616 bytes); 19 frames decoded;"), and drops the rest.
type ffmpegLog struct {
	mu      sync.Mutex
	line    []byte // the line being written (at most 4 KiB kept)
	errs    tailBuffer
	decoded int // -1 until known
}

func newFFmpegLog() *ffmpegLog {
	return &ffmpegLog{errs: tailBuffer{max: 4096}, decoded: -1}
}

func (l *ffmpegLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for rest := p; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			l.line = append(l.line, rest[:min(len(rest), max(0, 4096-len(l.line)))]...)
			break
		}
		l.line = append(l.line, rest[:min(i, max(0, 4096-len(l.line)))]...)
		l.take(string(l.line))
		l.line, rest = l.line[:0], rest[i+1:]
	}
	return len(p), nil
}

// take files one line of the log.
func (l *ffmpegLog) take(line string) {
	for _, tag := range []string{"[error] ", "[fatal] ", "[panic] "} {
		if i := strings.Index(line, tag); i >= 0 {
			l.errs.Write([]byte(line[:i] + line[i+len(tag):] + "\n"))
			return
		}
	}
	if strings.Contains(line, "[verbose]") && strings.Contains(line, "Input stream #") && strings.Contains(line, "(video)") {
		if _, after, ok := strings.Cut(line, "bytes); "); ok {
			var n int
			if _, err := fmt.Sscanf(after, "%d frames decoded", &n); err == nil {
				l.decoded = max(l.decoded, n)
			}
		}
	}
}

// result returns the errors and the frames decoded (-1: not told).
func (l *ffmpegLog) result() (string, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.line) > 0 {
		l.take(string(l.line))
		l.line = l.line[:0]
	}
	return strings.TrimSpace(l.errs.String()), l.decoded
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
