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

// readUpload reads the file of a detection request: the "file" part (or
// the first file part) of a multipart/form-data body, else the whole body,
// named by the "name" query parameter. The body must already be bounded
// (http.MaxBytesReader). Videos are written to a new temporary file in
// tmpDir that the caller removes with cleanup.
func readUpload(r *http.Request, tmpDir string) (*upload, error) {
	ct, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "multipart/form-data" {
		return readFile(r.Body, displayName(r.URL.Query().Get("name")), tmpDir)
	}
	if params["boundary"] == "" {
		return nil, badInput("bad_multipart", "multipart/form-data body without a boundary")
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	var up *upload
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			up.cleanup()
			return nil, bodyError(err, "malformed multipart body")
		}
		isFile := part.FileName() != "" || part.FormName() == "file"
		if !isFile {
			// Other form fields are not used: options are query parameters.
			if _, err := io.Copy(io.Discard, part); err != nil {
				up.cleanup()
				return nil, bodyError(err, "malformed multipart body")
			}
			continue
		}
		if up != nil {
			up.cleanup()
			return nil, badInput("too_many_files", "send one file per request")
		}
		name := part.FileName()
		if name == "" {
			name = r.URL.Query().Get("name")
		}
		up, err = readFile(part, displayName(name), tmpDir)
		if err != nil {
			return nil, err
		}
	}
	if up == nil {
		return nil, badInput("no_file", `the form has no file: send it in a part named "file"`)
	}
	return up, nil
}

// readFile reads one file from rd, keeping an image in memory and spooling a
// video to a temporary file.
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
	if kind == kindImage {
		up.data, err = io.ReadAll(br)
		if err != nil {
			return nil, bodyError(err, name+": reading the upload")
		}
		up.size = int64(len(up.data))
		return up, nil
	}
	f, err := os.CreateTemp(tmpDir, "lvnet-upload-*"+videoSuffix(format))
	if err != nil {
		return nil, fmt.Errorf("spool upload: %w", err)
	}
	up.path = f.Name()
	up.size, err = io.Copy(f, br)
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
// or cut short / malformed (400).
func bodyError(err error, what string) error {
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
