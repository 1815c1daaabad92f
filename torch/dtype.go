package torch

import (
	"fmt"
	"strconv"
	"strings"
)

// DType is a tensor element type; the values are libtorch's ScalarType codes.
type DType int

// Element types.
const (
	Uint8    DType = 0
	Int8     DType = 1
	Int16    DType = 2
	Int32    DType = 3
	Int64    DType = 4
	Float16  DType = 5
	Float32  DType = 6
	Float64  DType = 7
	Bool     DType = 11
	BFloat16 DType = 15
	Invalid  DType = -1
)

var dtypeNames = map[DType]string{
	Uint8: "uint8", Int8: "int8", Int16: "int16", Int32: "int32", Int64: "int64",
	Float16: "float16", Float32: "float32", Float64: "float64", Bool: "bool", BFloat16: "bfloat16",
}

func (d DType) String() string {
	if n, ok := dtypeNames[d]; ok {
		return n
	}
	return "dtype(" + strconv.Itoa(int(d)) + ")"
}

// ParseDType reads a name such as "float32" or "bf16".
func ParseDType(s string) (DType, error) {
	switch strings.ToLower(s) {
	case "bf16":
		return BFloat16, nil
	case "fp16", "half":
		return Float16, nil
	case "fp32", "float":
		return Float32, nil
	case "fp64", "double":
		return Float64, nil
	}
	for d, n := range dtypeNames {
		if n == strings.ToLower(s) {
			return d, nil
		}
	}
	return Invalid, fmt.Errorf("unknown dtype %q", s)
}

// DeviceType is CPU or CUDA.
type DeviceType int

// Device types.
const (
	DeviceCPU  DeviceType = 0
	DeviceCUDA DeviceType = 1
)

// Device is where a tensor lives.
type Device struct {
	Type  DeviceType
	Index int
}

// CPU is the host.
var CPU = Device{Type: DeviceCPU}

// CUDA returns the n-th CUDA device.
func CUDA(n int) Device { return Device{Type: DeviceCUDA, Index: n} }

func (d Device) String() string {
	if d.Type == DeviceCUDA {
		return "cuda:" + strconv.Itoa(d.Index)
	}
	return "cpu"
}

// ParseDevice reads "cpu", "cuda" or "cuda:N".
func ParseDevice(s string) (Device, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	switch {
	case s == "" || s == "cpu":
		return CPU, nil
	case s == "cuda" || s == "gpu":
		return CUDA(0), nil
	case strings.HasPrefix(s, "cuda:"):
		n, err := strconv.Atoi(s[5:])
		if err != nil || n < 0 {
			return CPU, fmt.Errorf("bad device %q: want cpu or cuda:N", s)
		}
		return CUDA(n), nil
	}
	return CPU, fmt.Errorf("bad device %q: want cpu or cuda:N", s)
}
