package serve

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"sync"
	"time"
)

// latencyBuckets are the upper bounds (seconds) of the inference latency
// histogram.
var latencyBuckets = [...]float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// metrics counts what the server did, for /metrics. It is safe for
// concurrent use.
type metrics struct {
	mu        sync.Mutex
	requests  map[[2]string]uint64 // {path, code}
	buckets   [len(latencyBuckets)]uint64
	count     uint64
	sum       float64
	faces     uint64
	labels    map[string]uint64
	errors    map[string]uint64 // analysis failures by code
	uploaded  uint64
	uploads   uint64
	startTime time.Time
}

func newMetrics() *metrics {
	return &metrics{
		requests:  map[[2]string]uint64{},
		labels:    map[string]uint64{},
		errors:    map[string]uint64{},
		startTime: time.Now(),
	}
}

// request counts one answered request.
func (m *metrics) request(path string, code int) {
	m.mu.Lock()
	m.requests[[2]string{path, strconv.Itoa(code)}]++
	m.mu.Unlock()
}

// upload counts a received upload of n bytes.
func (m *metrics) upload(n int64) {
	m.mu.Lock()
	m.uploads++
	m.uploaded += uint64(n)
	m.mu.Unlock()
}

// analysis records one finished analysis: its duration, and the label and
// face count of its result (nil on failure, with code the error code).
func (m *metrics) analysis(d time.Duration, label string, faces int, failure string) {
	sec := d.Seconds()
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, le := range latencyBuckets {
		if sec <= le {
			m.buckets[i]++
		}
	}
	m.count++
	m.sum += sec
	if failure != "" {
		m.errors[failure]++
		return
	}
	m.faces += uint64(faces)
	m.labels[label]++
}

// meanLatency is the mean analysis time so far (0 before the first).
func (m *metrics) meanLatency() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.count == 0 {
		return 0
	}
	return time.Duration(m.sum / float64(m.count) * float64(time.Second))
}

// write prints the metrics in the Prometheus text exposition format
// (version 0.0.4); running, waiting, admitted and uploading are the gate's
// load.
func (m *metrics) write(w io.Writer, running, waiting, admitted, uploading int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := &promWriter{w: w}
	p.family("lvnet_http_requests_total", "counter", "HTTP requests answered, by path and status code.")
	keys := make([][2]string, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][0] != keys[j][0] {
			return keys[i][0] < keys[j][0]
		}
		return keys[i][1] < keys[j][1]
	})
	for _, k := range keys {
		p.sample("lvnet_http_requests_total", fmt.Sprintf(`code="%s",path="%s"`, k[1], escapeLabel(k[0])), float64(m.requests[k]))
	}

	p.family("lvnet_inference_duration_seconds", "histogram", "Time an analysis took (decode, faces, model, overlays).")
	for i, le := range latencyBuckets {
		p.sample("lvnet_inference_duration_seconds_bucket", `le="`+formatFloat(le)+`"`, float64(m.buckets[i]))
	}
	p.sample("lvnet_inference_duration_seconds_bucket", `le="+Inf"`, float64(m.count))
	p.sample("lvnet_inference_duration_seconds_sum", "", m.sum)
	p.sample("lvnet_inference_duration_seconds_count", "", float64(m.count))

	p.family("lvnet_inferences_in_flight", "gauge", "Analyses running now.")
	p.sample("lvnet_inferences_in_flight", "", float64(running))
	p.family("lvnet_queue_length", "gauge", "Requests waiting for an analysis slot.")
	p.sample("lvnet_queue_length", "", float64(waiting))
	p.family("lvnet_requests_in_flight", "gauge", "Detection requests admitted (upload received): waiting or running.")
	p.sample("lvnet_requests_in_flight", "", float64(admitted))
	p.family("lvnet_uploads_in_progress", "gauge", "Detection requests reading their upload, not yet admitted.")
	p.sample("lvnet_uploads_in_progress", "", float64(uploading))

	p.family("lvnet_faces_analysed_total", "counter", "Faces (tracks, in videos) in the results.")
	p.sample("lvnet_faces_analysed_total", "", float64(m.faces))
	p.family("lvnet_results_total", "counter", "Analyses that succeeded, by verdict label.")
	for _, l := range sortedKeys(m.labels) {
		p.sample("lvnet_results_total", `label="`+escapeLabel(l)+`"`, float64(m.labels[l]))
	}
	p.family("lvnet_analysis_errors_total", "counter", "Analyses that failed, by error code.")
	for _, c := range sortedKeys(m.errors) {
		p.sample("lvnet_analysis_errors_total", `code="`+escapeLabel(c)+`"`, float64(m.errors[c]))
	}
	p.family("lvnet_uploads_total", "counter", "Uploads received in full.")
	p.sample("lvnet_uploads_total", "", float64(m.uploads))
	p.family("lvnet_upload_bytes_total", "counter", "Bytes of the uploads received in full.")
	p.sample("lvnet_upload_bytes_total", "", float64(m.uploaded))
	p.family("lvnet_start_time_seconds", "gauge", "Start time of the server, seconds since the Unix epoch.")
	p.sample("lvnet_start_time_seconds", "", float64(m.startTime.UnixNano())/1e9)
	return p.err
}

// promWriter writes exposition lines, keeping the first error.
type promWriter struct {
	w   io.Writer
	err error
}

func (p *promWriter) family(name, typ, help string) {
	p.printf("# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
}

func (p *promWriter) sample(name, labels string, v float64) {
	if labels != "" {
		p.printf("%s{%s} %s\n", name, labels, formatFloat(v))
		return
	}
	p.printf("%s %s\n", name, formatFloat(v))
}

func (p *promWriter) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

// formatFloat writes v as Prometheus expects (integers without exponent,
// +Inf, -Inf and NaN spelled out).
func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// escapeLabel escapes a label value (backslash, quote, newline).
func escapeLabel(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			out = append(out, `\\`...)
		case '"':
			out = append(out, `\"`...)
		case '\n':
			out = append(out, `\n`...)
		default:
			out = append(out, s[i])
		}
	}
	return string(out)
}

func sortedKeys(m map[string]uint64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
