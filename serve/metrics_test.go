package serve

import (
	"bufio"
	"bytes"
	"image/color"
	"io"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sampleLine is a Prometheus text-format sample: name, optional labels,
// value.
var sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (\S+)$`)

// scrape fetches /metrics, checks its syntax (every sample's family
// announced by HELP and TYPE first, values parse) and returns the samples
// by name{labels}.
func scrape(t testing.TB, base string) map[string]float64 {
	t.Helper()
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); res.StatusCode != 200 || !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Fatalf("GET /metrics: %d %q", res.StatusCode, ct)
	}
	body, _ := io.ReadAll(res.Body)
	return parseMetrics(t, body)
}

func parseMetrics(t testing.TB, body []byte) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	types := map[string]string{}
	helped := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if f, ok := strings.CutPrefix(line, "# HELP "); ok {
			helped[strings.Fields(f)[0]] = true
			continue
		}
		if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
			parts := strings.Fields(f)
			if len(parts) != 2 {
				t.Fatalf("line %d: bad TYPE line %q", n, line)
			}
			types[parts[0]] = parts[1]
			continue
		}
		m := sampleLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("line %d: not a sample: %q", n, line)
		}
		family := m[1]
		if types[family] == "" {
			family = strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(family, "_bucket"), "_sum"), "_count")
		}
		if types[family] == "" || !helped[family] {
			t.Fatalf("line %d: sample %q before its HELP and TYPE", n, line)
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatalf("line %d: value %q: %v", n, m[3], err)
		}
		out[m[1]+m[2]] = v
	}
	return out
}

func TestMetrics(t *testing.T) {
	fake := &fakeAnalyzer{delay: 20 * time.Millisecond, match: "slow.png"}
	_, base := startServer(t, fake, Config{})
	img := pngBytes(t, 3, 3, color.RGBA{255, 0, 0, 255})
	postFile(t, base, "", "a.png", img)                                                 // 200, fake
	postFile(t, base, "?threshold=1", "slow.png", img)                                  // 200, fake (p = 1)
	postFile(t, base, "?threshold=0.9", "c.png", pngBytes(t, 3, 3, color.RGBA{A: 255})) // 200, real
	postFile(t, base, "", "t.jpg", []byte("text"))                                      // 415, no analysis
	postFile(t, base, "", "cut.png", img[:len(img)-30])                                 // 400, analysis failed
	do(t, "GET", base+"/healthz", "", nil)
	do(t, "GET", base+"/nowhere", "", nil)

	m := scrape(t, base)
	want := map[string]float64{
		`lvnet_http_requests_total{code="200",path="/v1/detect"}`: 3,
		`lvnet_http_requests_total{code="415",path="/v1/detect"}`: 1,
		`lvnet_http_requests_total{code="400",path="/v1/detect"}`: 1,
		`lvnet_http_requests_total{code="200",path="/healthz"}`:   1,
		`lvnet_http_requests_total{code="404",path="other"}`:      1,
		`lvnet_inference_duration_seconds_count`:                  4,
		`lvnet_inference_duration_seconds_bucket{le="+Inf"}`:      4,
		`lvnet_faces_analysed_total`:                              3,
		`lvnet_results_total{label="fake"}`:                       2,
		`lvnet_results_total{label="real"}`:                       1,
		`lvnet_analysis_errors_total{code="truncated"}`:           1,
		`lvnet_uploads_total`:                                     4,
		`lvnet_inferences_in_flight`:                              0,
		`lvnet_queue_length`:                                      0,
		`lvnet_requests_in_flight`:                                0,
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	// The histogram is cumulative and its sum covers the slow analysis.
	prev := 0.0
	for _, le := range latencyBuckets {
		v := m[`lvnet_inference_duration_seconds_bucket{le="`+formatFloat(le)+`"}`]
		if v < prev {
			t.Errorf("bucket le=%v holds %v, less than the previous %v", le, v, prev)
		}
		prev = v
	}
	if s := m["lvnet_inference_duration_seconds_sum"]; s < 0.02 || s > 60 {
		t.Errorf("latency sum %v s, want at least the 20 ms of the slow analysis", s)
	}
	if m[`lvnet_inference_duration_seconds_bucket{le="0.05"}`] > 4 {
		t.Errorf("bucket 0.05 above the count")
	}
	wantBytes := float64(2*len(img) + len(pngBytes(t, 3, 3, color.RGBA{A: 255})) + len(img) - 30)
	if m["lvnet_upload_bytes_total"] != wantBytes {
		t.Errorf("upload bytes %v, want %v", m["lvnet_upload_bytes_total"], wantBytes)
	}
}

func TestMetricsFormat(t *testing.T) {
	m := newMetrics()
	m.request(`/a"b\c`+"\n", 200)
	m.analysis(30*time.Millisecond, "fake", 2, "")
	m.analysis(3*time.Second, "", 0, "internal")
	var b bytes.Buffer
	if err := m.write(&b, 1, 2, 3, 4); err != nil {
		t.Fatal(err)
	}
	got := parseMetrics(t, b.Bytes())
	for k, v := range map[string]float64{
		`lvnet_http_requests_total{code="200",path="/a\"b\\c\n"}`: 1,
		`lvnet_inference_duration_seconds_bucket{le="0.05"}`:      1,
		`lvnet_inference_duration_seconds_bucket{le="2.5"}`:       1,
		`lvnet_inference_duration_seconds_bucket{le="5"}`:         2,
		`lvnet_inference_duration_seconds_bucket{le="+Inf"}`:      2,
		`lvnet_inference_duration_seconds_count`:                  2,
		`lvnet_inferences_in_flight`:                              1,
		`lvnet_queue_length`:                                      2,
		`lvnet_requests_in_flight`:                                3,
		`lvnet_faces_analysed_total`:                              2,
		`lvnet_analysis_errors_total{code="internal"}`:            1,
	} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if s := got["lvnet_inference_duration_seconds_sum"]; math.Abs(s-3.03) > 1e-9 {
		t.Errorf("sum %v, want 3.03", s)
	}
	if d := m.meanLatency(); d != 1515*time.Millisecond {
		t.Errorf("mean latency %v, want 1.515s", d)
	}
}

func TestFormatFloat(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{{0, "0"}, {3, "3"}, {0.25, "0.25"}, {math.Inf(1), "+Inf"}, {math.Inf(-1), "-Inf"}, {math.NaN(), "NaN"}, {1e21, "1e+21"}} {
		if got := formatFloat(tc.v); got != tc.want {
			t.Errorf("formatFloat(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
}
