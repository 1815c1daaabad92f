package serve

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/lvnet-go/lvnet/media"
)

// Kinds of upload, from their first bytes.
const (
	kindImage = "image"
	kindVideo = "video"
)

// upload is a received file: an image in memory or a video in a
// server-named temporary file.
type upload struct {
	name   string // display name (sanitized client file name)
	kind   string // kindImage or kindVideo
	format string // "PNG", "MP4", ...
	data   []byte // image bytes
	path   string // video: temporary file (remove it with cleanup)
	size   int64
}

// cleanup removes the temporary file of a video upload. Each path that
// ends an upload's life calls it once.
func (u *upload) cleanup() {
	if u != nil && u.path != "" {
		os.Remove(u.path)
	}
}

// sniffHead is how many bytes are looked at to tell the format.
const sniffHead = 512

// uploadMemory is the most of an upload kept in memory: larger images are
// spooled to a temporary file, as videos always are. (A variable for the
// tests.)
var uploadMemory int64 = 16 << 20

// sniff tells the kind and format of a file from its first bytes and the
// extension of its (client) name. When it is neither a supported image nor
// a video, why says what it looks like.
func sniff(head []byte, name string) (kind, format, why string) {
	switch {
	case bytes.HasPrefix(head, []byte{0xFF, 0xD8, 0xFF}):
		return kindImage, "JPEG", ""
	case bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")):
		return kindImage, "PNG", ""
	case bytes.HasPrefix(head, []byte("GIF87a")), bytes.HasPrefix(head, []byte("GIF89a")):
		return kindImage, "GIF", ""
	case len(head) >= 14 && bytes.HasPrefix(head, []byte("BM")) && !media.LooksLikeText(head):
		return kindImage, "BMP", ""
	case len(head) >= 12 && string(head[:4]) == "RIFF" && string(head[8:12]) == "WEBP":
		return kindImage, "WebP", ""
	case media.IsHEIF(head):
		return "", "", "HEIF/AVIF images are not supported: convert to JPEG or PNG"
	case len(head) >= 12 && string(head[4:8]) == "ftyp":
		if string(head[8:10]) == "qt" {
			return kindVideo, "QuickTime", ""
		}
		return kindVideo, "MP4", ""
	case bytes.HasPrefix(head, []byte{0x1A, 0x45, 0xDF, 0xA3}):
		return kindVideo, "Matroska/WebM", ""
	case len(head) >= 12 && string(head[:4]) == "RIFF" && string(head[8:12]) == "AVI ":
		return kindVideo, "AVI", ""
	case bytes.HasPrefix(head, []byte("FLV\x01")):
		return kindVideo, "FLV", ""
	case bytes.HasPrefix(head, []byte{0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11}):
		return kindVideo, "ASF/WMV", ""
	case bytes.HasPrefix(head, []byte{0x00, 0x00, 0x01, 0xBA}):
		return kindVideo, "MPEG-PS", ""
	case len(head) >= 377 && head[0] == 0x47 && head[188] == 0x47 && head[376] == 0x47:
		return kindVideo, "MPEG-TS", ""
	case bytes.HasPrefix(head, []byte("OggS")) && bytes.Contains(head[:min(len(head), 64)], []byte("theora")):
		return kindVideo, "Ogg", ""
	case bytes.HasPrefix(head, []byte("II*\x00")), bytes.HasPrefix(head, []byte("MM\x00*")):
		return "", "", "TIFF images are not supported: convert to JPEG or PNG"
	case bytes.HasPrefix(head, []byte("%PDF")):
		return "", "", "looks like a PDF document"
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		return "", "", "looks like a ZIP archive"
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return "", "", "looks like a gzip archive"
	case media.LooksLikeText(head):
		return "", "", "looks like text"
	}
	// Containers without a magic number ffmpeg may still read: trust the
	// extension of a video name.
	if videoExt[strings.ToLower(path.Ext(name))] {
		return kindVideo, strings.ToUpper(strings.TrimPrefix(path.Ext(name), ".")), ""
	}
	return "", "", fmt.Sprintf("unknown format, starts with % x", head[:min(len(head), 8)])
}

var videoExt = map[string]bool{
	".mp4": true, ".m4v": true, ".mov": true, ".avi": true, ".mkv": true, ".webm": true,
	".mpg": true, ".mpeg": true, ".ts": true, ".mts": true, ".m2ts": true, ".flv": true,
	".wmv": true, ".3gp": true, ".3g2": true, ".ogv": true, ".mxf": true, ".vob": true,
	".y4m": true, ".h264": true, ".264": true, ".hevc": true,
}

// displayName makes a client file name safe to show: its last path element
// (either slash), without control or format characters, at most 120 runes;
// "upload" when nothing is left. It is never used as a path.
func displayName(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	var b strings.Builder
	n := 0
	for _, r := range name {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			continue
		}
		if n == 120 {
			break
		}
		b.WriteRune(r)
		n++
	}
	s := strings.TrimSpace(b.String())
	if s == "" || s == "." || s == ".." {
		return "upload"
	}
	return s
}

// readUpload reads the file of a detection request: the part named "file"
// of a multipart/form-data body (or, when there is none, its only file
// part), else the whole body, named by the "name" query parameter. The
// choice does not depend on the order of the parts: other file parts are
// read and dropped when a "file" part exists; two "file" parts, or several
// file parts none of which is named "file", are refused. The body must
// already be bounded (http.MaxBytesReader). Videos, and images larger than
// uploadMemory, are written to a new temporary file in tmpDir that the
// caller removes with cleanup.
func readUpload(r *http.Request, tmpDir string) (*upload, error) {
	ct, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "multipart/form-data" {
		return readFile(r.Body, displayName(r.URL.Query().Get("name")), tmpDir)
	}
	if params["boundary"] == "" {
		return nil, badInput("bad_multipart", "multipart/form-data body without a boundary")
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	// The "file" part and the first other file part, each an upload or
	// the reason it cannot be analysed (known only once the body is read).
	var named, other *candidate
	nNamed, nOther := 0, 0
	drop := func(c *candidate) {
		if c != nil {
			c.up.cleanup()
		}
	}
	defer func() { // whatever is not returned
		drop(named)
		drop(other)
	}()
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, bodyError(err, "malformed multipart body")
		}
		isNamed := part.FormName() == "file"
		keep := false
		switch {
		case isNamed:
			nNamed++
			keep = nNamed == 1
		case part.FileName() != "":
			nOther++
			keep = nOther == 1 && nNamed == 0
		}
		if !keep {
			// Other form fields are not used (options are query
			// parameters), nor are file parts beside the chosen one.
			if _, err := io.Copy(io.Discard, part); err != nil {
				return nil, bodyError(err, "malformed multipart body")
			}
			continue
		}
		name := part.FileName()
		if name == "" {
			name = r.URL.Query().Get("name")
		}
		up, err := readFile(part, displayName(name), tmpDir)
		var ae *apiError
		if err != nil && !(errors.As(err, &ae) && partError[ae.code]) {
			return nil, err // the body, not the part, went wrong
		}
		c := &candidate{up: up, err: err}
		if isNamed {
			named = c
			drop(other) // the "file" part wins
			other = nil
		} else {
			other = c
		}
	}
	var c *candidate
	switch {
	case nNamed > 1:
		return nil, badInput("too_many_files", `send one file per request: the form has several parts named "file"`)
	case nNamed == 1:
		c, named = named, nil
	case nOther > 1:
		return nil, badInput("too_many_files", `send one file per request, or name the one to analyse "file": the form has several file parts`)
	case nOther == 1:
		c, other = other, nil
	default:
		return nil, badInput("no_file", `the form has no file: send it in a part named "file"`)
	}
	return c.up, c.err
}

// candidate is a file part read: its upload, or why it cannot be analysed.
type candidate struct {
	up  *upload
	err error
}

// partError lists the codes of readFile's errors that concern the file
// sent, not the body: they are answered only if that part is the one used.
var partError = map[string]bool{"empty": true, "unsupported_media": true}

// readFile reads one file from rd, keeping an image of at most
// uploadMemory bytes in memory and spooling a larger one, or a video, to
// a temporary file.
func readFile(rd io.Reader, name, tmpDir string) (*upload, error) {
	br := bufio.NewReaderSize(rd, sniffHead)
	head, err := br.Peek(sniffHead)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, bodyError(err, name+": reading the upload")
	}
	if len(head) == 0 {
		return nil, badInput("empty", name+": the file is empty")
	}
	kind, format, why := sniff(head, name)
	if kind == "" {
		return nil, &apiError{status: http.StatusUnsupportedMediaType, code: "unsupported_media",
			msg: fmt.Sprintf("%s: not an image or a video (%s)", name, why)}
	}
	up := &upload{name: name, kind: kind, format: format}
	var first io.Reader = br
	if kind == kindImage {
		up.data, err = io.ReadAll(io.LimitReader(br, uploadMemory+1))
		if err != nil {
			return nil, bodyError(err, name+": reading the upload")
		}
		if int64(len(up.data)) <= uploadMemory {
			up.size = int64(len(up.data))
			return up, nil
		}
		first = io.MultiReader(bytes.NewReader(up.data), br)
		up.data = nil
	}
	f, err := os.CreateTemp(tmpDir, "lvnet-upload-*"+fileSuffix(format))
	if err != nil {
		return nil, fmt.Errorf("spool upload: %w", err)
	}
	up.path = f.Name()
	up.size, err = io.Copy(f, first)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("spool upload: %w", cerr)
	}
	if err != nil {
		up.cleanup()
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("spool upload: %w", err)
		}
		return nil, bodyError(err, name+": reading the upload")
	}
	return up, nil
}

// fileSuffix is the extension given to a spooled upload of a format, so
// that ffmpeg and the image decoder guess right where the contents do not
// tell.
func fileSuffix(format string) string {
	switch format {
	case "JPEG":
		return ".jpg"
	case "PNG", "GIF", "BMP":
		return "." + strings.ToLower(format)
	case "WebP":
		return ".webp"
	}
	return videoSuffix(format)
}

// uploadReader reads a request body, ending an upload that stalls or
// trickles: each read must end by a deadline that allows idle time and,
// past a first idle period, an average of minRate bytes per second since
// the upload began; and by the request's deadline. The deadline is set on
// the connection, so that a client that sends nothing is cut off too;
// where the connection has no deadlines (tests through httptest's
// recorder), slow reads are caught when they return.
type uploadReader struct {
	r          io.ReadCloser
	rc         *http.ResponseController
	start, end time.Time // the upload's start, the request's deadline (zero: none)
	idle       time.Duration
	minRate    int64 // bytes per second, 0 for no minimum
	n          int64 // bytes read
	noDeadline bool
	ended      bool // a read returned an error (io.EOF at the end)
}

// Reasons for an upload's deadline.
const (
	dlRequest = iota // the request's deadline
	dlIdle           // nothing sent for the idle time
	dlRate           // below the minimum rate
)

// deadline returns when the next read must have ended, and why.
func (u *uploadReader) deadline(now time.Time) (time.Time, int) {
	dl, why := now.Add(u.idle), dlIdle
	if u.minRate > 0 {
		due := u.start.Add(u.idle + time.Duration(float64(u.n+1)/float64(u.minRate)*float64(time.Second)))
		if due.Before(dl) {
			dl, why = due, dlRate
		}
	}
	if !u.end.IsZero() && u.end.Before(dl) {
		dl, why = u.end, dlRequest
	}
	return dl, why
}

func (u *uploadReader) Read(p []byte) (int, error) {
	if u.ended {
		// Past the end of the body the server reads the connection (to
		// see the client go): its deadline is not ours to set.
		return u.r.Read(p)
	}
	now := time.Now()
	dl, why := u.deadline(now)
	if !now.Before(dl) {
		return 0, u.slow(why, now)
	}
	if !u.noDeadline {
		if err := u.rc.SetReadDeadline(dl); err != nil {
			u.noDeadline = true
		}
	}
	n, err := u.r.Read(p)
	u.n += int64(n)
	u.ended = err != nil
	late := errors.Is(err, os.ErrDeadlineExceeded) || (u.noDeadline && err == nil && time.Now().After(dl))
	if late {
		return n, u.slow(why, time.Now())
	}
	return n, err
}

func (u *uploadReader) Close() error { return u.r.Close() }

// slow is the error ending an upload past its deadline.
func (u *uploadReader) slow(why int, now time.Time) error {
	switch why {
	case dlIdle:
		return &apiError{status: http.StatusRequestTimeout, code: "upload_stalled",
			msg: fmt.Sprintf("the upload stalled: nothing received for %v (after %d bytes)", u.idle, u.n)}
	case dlRate:
		return &apiError{status: http.StatusRequestTimeout, code: "upload_too_slow",
			msg: fmt.Sprintf("the upload is too slow: %d bytes in %v, the minimum is %s/s", u.n, now.Sub(u.start).Round(100*time.Millisecond), formatBytes(u.minRate))}
	}
	return os.ErrDeadlineExceeded // the request's timeout: answered 408 upload_timeout
}

// videoSuffix is the extension given to a spooled video of a format, so
// that ffmpeg guesses right where the contents do not tell.
func videoSuffix(format string) string {
	switch format {
	case "MP4":
		return ".mp4"
	case "QuickTime":
		return ".mov"
	case "Matroska/WebM":
		return ".mkv"
	case "AVI":
		return ".avi"
	case "FLV":
		return ".flv"
	case "ASF/WMV":
		return ".wmv"
	case "MPEG-PS":
		return ".mpg"
	case "MPEG-TS":
		return ".ts"
	case "Ogg":
		return ".ogv"
	}
	ext := "." + strings.ToLower(format)
	if videoExt[ext] {
		return ext
	}
	return ".bin"
}

// bodyError words an error of reading the request body: too large (413),
// or cut short / malformed (400); an upload ended for its slowness is
// answered as it is (408).
func bodyError(err error, what string) error {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return &apiError{status: http.StatusRequestEntityTooLarge, code: "too_large",
			msg: fmt.Sprintf("the upload is larger than the limit of %s", formatBytes(mb.Limit))}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return badInput("incomplete_upload", what+": the upload ended early")
	}
	return badInput("bad_upload", fmt.Sprintf("%s: %v", what, err))
}

// formatBytes writes n bytes in binary units ("200 MiB").
func formatBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
