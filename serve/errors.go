package serve

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/lvnet-go/lvnet/detect"
	"github.com/lvnet-go/lvnet/media"
)

// apiError is an error answered to the client as JSON
// {"error": msg, "code": code} with an HTTP status.
type apiError struct {
	status     int
	code       string
	msg        string
	retryAfter int // seconds, for 503
}

func (e *apiError) Error() string { return e.msg }

// badInput is a 400 error.
func badInput(code, msg string) *apiError {
	return &apiError{status: http.StatusBadRequest, code: code, msg: msg}
}

// ErrorBody is the JSON body of every error answer.
type ErrorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// classify maps an analysis error to the answer: bad or unsupported input
// (the errors of package media) is the client's fault (4xx), an analysis
// the analyzer cannot do (detect.ErrNeedsAligned) is 422, running out of
// time is 504, anything else 500. A 500's message does not leak the
// server's details: they go to the log.
func classify(err error) *apiError {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, context.DeadlineExceeded):
		return &apiError{status: http.StatusGatewayTimeout, code: "timeout", msg: "the analysis took longer than the request timeout"}
	case errors.Is(err, context.Canceled):
		// The client went away; the status is for the log and metrics.
		return &apiError{status: 499, code: "canceled", msg: "the request was canceled"}
	case errors.Is(err, detect.ErrNeedsAligned):
		return &apiError{status: http.StatusUnprocessableEntity, code: "needs_aligned", msg: err.Error()}
	case errors.Is(err, media.ErrTooLarge):
		return &apiError{status: http.StatusRequestEntityTooLarge, code: "too_large", msg: err.Error()}
	case errors.Is(err, media.ErrNotImage), errors.Is(err, media.ErrNotVideo):
		return &apiError{status: http.StatusUnsupportedMediaType, code: "unsupported_media", msg: err.Error()}
	case errors.Is(err, media.ErrEmpty):
		return badInput("empty", err.Error())
	case errors.Is(err, media.ErrTruncated):
		return badInput("truncated", err.Error())
	case errors.Is(err, media.ErrCorrupt):
		return badInput("corrupt", err.Error())
	}
	return &apiError{status: http.StatusInternalServerError, code: "internal", msg: "internal error: the analysis failed (the server log has the details)"}
}

// writeError answers e as JSON.
func writeError(w http.ResponseWriter, e *apiError) {
	if e.status == http.StatusServiceUnavailable && e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.retryAfter))
	}
	// 499 (the client went away) reaches nobody but the log and metrics.
	writeJSON(w, e.status, ErrorBody{Error: e.msg, Code: e.code})
}

// writeJSON answers v as JSON (compact, as `lvnet detect --json`) with the
// status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(ErrorBody{Error: "internal error: encoding the answer: " + err.Error(), Code: "internal"})
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
