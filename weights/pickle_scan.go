package weights

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Argument layouts of pickle opcodes, for scanPickle.
const (
	argNone  = iota // no argument
	argFixed        // a fixed number of bytes
	argLine         // one newline-terminated line
	arg2Line        // two newline-terminated lines
	argLen1         // 1-byte length, then that many bytes
	argLen4         // 4-byte little-endian length, then that many bytes
	argLen8         // 8-byte little-endian length, then that many bytes
	argFrame        // 8-byte frame length; the frame's opcodes follow
)

// pickleOps gives the argument layout (and, for argFixed, the size) of
// every opcode of pickle protocols 0 to 5.
var pickleOps = func() map[byte][2]int {
	m := map[byte][2]int{}
	for _, c := range []byte("(.012NQRabde}l]ost)u\x81\x85\x86\x87\x88\x89\x8f\x90\x91\x92\x93\x94\x97\x98") {
		m[c] = [2]int{argNone}
	}
	for op, n := range map[byte]int{0x80: 1, 'K': 1, 'h': 1, 'q': 1, 0x82: 1, 'M': 2, 0x83: 2,
		'J': 4, 'j': 4, 'r': 4, 0x84: 4, 'G': 8} {
		m[op] = [2]int{argFixed, n}
	}
	for _, c := range "FILPSVgp" {
		m[byte(c)] = [2]int{argLine}
	}
	m['c'], m['i'] = [2]int{arg2Line}, [2]int{arg2Line}
	for _, c := range []byte{'U', 'C', 0x8c, 0x8a} {
		m[c] = [2]int{argLen1}
	}
	for _, c := range []byte{'T', 'B', 'X', 0x8b} {
		m[c] = [2]int{argLen4}
	}
	for _, c := range []byte{0x8d, 0x8e, 0x96} {
		m[c] = [2]int{argLen8}
	}
	m[0x95] = [2]int{argFrame}
	return m
}()

// scanPickle walks the opcodes of a pickle without running them and
// checks that every opcode is known and every argument lies inside the
// data, so that the unpickler never sizes a buffer from a corrupt length.
func scanPickle(p []byte) error {
	for i := 0; i < len(p); {
		op := p[i]
		spec, ok := pickleOps[op]
		if !ok {
			return fmt.Errorf("unknown opcode 0x%02x at byte %d", op, i)
		}
		at := i
		i++
		rest := uint64(len(p) - i)
		need := uint64(0)
		switch spec[0] {
		case argFixed:
			need = uint64(spec[1])
		case argLine, arg2Line:
			lines := 1
			if spec[0] == arg2Line {
				lines = 2
			}
			for ; lines > 0; lines-- {
				nl := bytes.IndexByte(p[i:], '\n')
				if nl < 0 {
					return fmt.Errorf("opcode 0x%02x at byte %d: unterminated line", op, at)
				}
				i += nl + 1
			}
			continue
		case argLen1, argLen4, argLen8, argFrame:
			w := map[int]uint64{argLen1: 1, argLen4: 4, argLen8: 8, argFrame: 8}[spec[0]]
			if rest < w {
				return fmt.Errorf("opcode 0x%02x at byte %d: truncated length", op, at)
			}
			var n uint64
			switch w {
			case 1:
				n = uint64(p[i])
			case 4:
				n = uint64(binary.LittleEndian.Uint32(p[i:]))
			case 8:
				n = binary.LittleEndian.Uint64(p[i:])
			}
			i += int(w)
			rest -= w
			if n > rest {
				return fmt.Errorf("opcode 0x%02x at byte %d: length %d exceeds the %d bytes left", op, at, n, rest)
			}
			if spec[0] != argFrame {
				i += int(n)
			}
			continue
		}
		if need > rest {
			return fmt.Errorf("opcode 0x%02x at byte %d: truncated argument", op, at)
		}
		i += int(need)
		if op == '.' {
			return nil
		}
	}
	return fmt.Errorf("no STOP opcode: truncated pickle")
}
