package weights

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Bounds on what unpickling a torch.save pickle may cost. The pickle is
// checked against them (scanPickle) before it is run, so that a hostile
// file fails in bounded memory and time. LVNet's checkpoints are far
// inside them: the golden partial checkpoint (61 tensors of the authors'
// training checkpoint) has a 6.7 KB pickle of 1,929 opcodes, a MARK depth
// of 4, 134 values on the stack, 486 memo stores and 400 KB of estimated
// allocations; the whole checkpoint (about 1,600 tensors with the
// optimizer's state) has some 30 times that, and a stack of about 2,000
// values (pickle adds dict items by the thousand).
const (
	// MaxPickleBytes bounds the size of a pickle (data.pkl) once inflated.
	MaxPickleBytes = 4 << 20
	// maxPickleMarks bounds the number of open MARKs (each costs the
	// unpickler a new stack).
	maxPickleMarks = 1 << 10
	// maxPickleStack bounds the values on the unpickler's stack, all mark
	// levels together.
	maxPickleStack = 1 << 16
	// maxPickleMemo bounds the memo stores (PUT, BINPUT, MEMOIZE, ...).
	maxPickleMemo = 1 << 18
	// maxPickleAlloc bounds the unpickler's allocations as estimated by
	// opCost, garbage included.
	maxPickleAlloc = 64 << 20
)

// Argument layouts of pickle opcodes, for scanPickle.
const (
	argUnknown = iota // not an opcode
	argNone           // no argument
	argFixed          // a fixed number of bytes
	argLine           // one newline-terminated line
	arg2Line          // two newline-terminated lines
	argLen1           // 1-byte length, then that many bytes
	argLen4           // 4-byte little-endian length, then that many bytes
	argLen8           // 8-byte little-endian length, then that many bytes
	argFrame          // 8-byte frame length; the frame's opcodes follow
)

// pickleOps gives the argument layout (and, for argFixed, the size) of
// every opcode of pickle protocols 0 to 5.
var pickleOps = func() (m [256][2]int) {
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

// stackEffect says what an opcode does to the unpickler's stack: it pops
// pop values (toMark: every value down to the topmost MARK, and the MARK),
// then needs keep more values below them, which it leaves in place, then
// pushes push values.
type stackEffect struct {
	pop, keep, push int
	toMark          bool
}

// pickleEffects gives the stack effect of every opcode (as in Python's
// pickletools); MARK ('(') and POP ('0') are handled apart.
var pickleEffects = func() (m [256]stackEffect) {
	// Opcodes that push one new value.
	for _, c := range []byte("FIJKLMNPSTUVXBCGcghj}])\x82\x83\x84\x88\x89\x8a\x8b\x8c\x8d\x8e\x8f\x96\x97") {
		m[c] = stackEffect{push: 1}
	}
	// Opcodes that build one value from the values above the topmost MARK.
	for _, c := range []byte("dilot\x91") {
		m[c] = stackEffect{toMark: true, push: 1}
	}
	// Opcodes that add the values above the topmost MARK to the container
	// below it.
	for _, c := range []byte("eu\x90") {
		m[c] = stackEffect{toMark: true, keep: 1}
	}
	m['1'] = stackEffect{toMark: true}            // POP_MARK
	m['2'] = stackEffect{keep: 1, push: 1}        // DUP
	m['.'] = stackEffect{pop: 1}                  // STOP
	m['Q'] = stackEffect{pop: 1, push: 1}         // BINPERSID
	m[0x98] = stackEffect{pop: 1, push: 1}        // READONLY_BUFFER
	m[0x85] = stackEffect{pop: 1, push: 1}        // TUPLE1
	m['R'] = stackEffect{pop: 2, push: 1}         // REDUCE
	m[0x81] = stackEffect{pop: 2, push: 1}        // NEWOBJ
	m[0x86] = stackEffect{pop: 2, push: 1}        // TUPLE2
	m[0x93] = stackEffect{pop: 2, push: 1}        // STACK_GLOBAL
	m[0x87] = stackEffect{pop: 3, push: 1}        // TUPLE3
	m[0x92] = stackEffect{pop: 3, push: 1}        // NEWOBJ_EX
	m['a'] = stackEffect{pop: 1, keep: 1}         // APPEND
	m['b'] = stackEffect{pop: 1, keep: 1}         // BUILD
	m['s'] = stackEffect{pop: 2, keep: 1}         // SETITEM
	for _, c := range []byte("pqr\x94\x80\x95") { // PUT, BINPUT, LONG_BINPUT, MEMOIZE; PROTO, FRAME
		m[c] = stackEffect{}
	}
	return m
}()

// opCost estimates what running an opcode allocates, in bytes, in the
// unpickler (gopickle) and when its values are converted (converter),
// given the size of its argument and the number of values it takes from
// above a MARK. The estimates err on the high side: on pickles made of one
// pattern repeated up to maxPickleAlloc (weights/bomb_test.go), the
// allocations measured stay below them.
func opCost(op byte, arg, marked int) int64 {
	a, k := int64(arg), int64(marked)
	switch op {
	case '(': // a new stack of capacity 16, and the meta stack's growth
		return 384
	case ']', '}', 0x8f: // empty list or dict (capacity 4), set (a map), and converting them
		return 384
	case ')': // an empty tuple, and converting it
		return 256
	case 0x85, 0x86, 0x87: // small tuples, and converting them
		return 256 + 16*int64(op-0x84)
	case 'e', 'l', 't', 0x91: // tuples, lists, frozensets of the marked values, appending them
		return 192 + 112*k
	case 'u', 'd': // dict items: an OrderedDict entry, a list element and a map slot each
		return 192 + 128*k
	case 0x90: // set items
		return 192 + 96*k
	case 'a': // list growth, amortised
		return 64
	case 's':
		return 256
	case 'p', 'q', 'r', 0x94: // a memo slot
		return 96
	case 'R', 0x81, 0x92, 'b', 'Q', 'i', 'o', 'c', 0x93: // calls, globals, persistent ids
		return 256 + 2*a
	case 0x95: // the frame's buffer
		return 64 + a
	}
	// Values: the argument is read into a buffer, then copied into the
	// value (strings, bytes, numbers); one stack slot, amortised.
	return 96 + 2*a
}

// maxIntDigits bounds the digits of a decimal integer (opcodes INT and
// LONG), as Python does: converting longer ones takes quadratic time.
const maxIntDigits = 4300

// scanPickle walks the opcodes of a pickle without running them and checks
// that every opcode is known, every argument lies inside the data, and that
// running it stays within the bounds above: the depth of MARKs, the values
// on the stack, the memo stores and the estimated allocations. So the
// unpickler never sizes a buffer from a corrupt length and a hostile pickle
// cannot make it use much memory.
func scanPickle(p []byte) error {
	_, err := scanPickleStats(p)
	return err
}

// pickleStats are the peaks scanPickleStats found.
type pickleStats struct {
	ops, marks, stack, memo int
	alloc                   int64
}

// scanPickleStats is scanPickle, also returning the peak MARK depth, stack
// size, memo stores and the estimated allocations.
func scanPickleStats(p []byte) (st pickleStats, err error) {
	if len(p) > MaxPickleBytes {
		return st, fmt.Errorf("the pickle has %d bytes, more than the %d a checkpoint needs", len(p), MaxPickleBytes)
	}
	levels := []int{0} // values on the stack per MARK level, innermost last
	total, memo := 0, 0
	var alloc int64
	defer func() {
		st.memo, st.alloc = memo, alloc
	}()
	for i := 0; i < len(p); {
		op := p[i]
		st.ops++
		spec := pickleOps[op]
		if spec[0] == argUnknown {
			return st, fmt.Errorf("unknown opcode 0x%02x at byte %d", op, i)
		}
		at := i
		i++
		rest := uint64(len(p) - i)
		arg := 0
		switch spec[0] {
		case argFixed:
			if uint64(spec[1]) > rest {
				return st, fmt.Errorf("opcode 0x%02x at byte %d: truncated argument", op, at)
			}
			arg = spec[1]
			i += arg
		case argLine, arg2Line:
			lines := 1
			if spec[0] == arg2Line {
				lines = 2
			}
			for ; lines > 0; lines-- {
				nl := bytes.IndexByte(p[i:], '\n')
				if nl < 0 {
					return st, fmt.Errorf("opcode 0x%02x at byte %d: unterminated line", op, at)
				}
				if (op == 'I' || op == 'L') && nl > maxIntDigits+2 {
					return st, fmt.Errorf("opcode 0x%02x at byte %d: an integer of %d digits (at most %d)", op, at, nl, maxIntDigits)
				}
				i += nl + 1
				arg += nl + 1
			}
		case argLen1, argLen4, argLen8, argFrame:
			w := uint64(8)
			switch spec[0] {
			case argLen1:
				w = 1
			case argLen4:
				w = 4
			}
			if rest < w {
				return st, fmt.Errorf("opcode 0x%02x at byte %d: truncated length", op, at)
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
				return st, fmt.Errorf("opcode 0x%02x at byte %d: length %d exceeds the %d bytes left", op, at, n, rest)
			}
			arg = int(n)
			if spec[0] != argFrame {
				i += int(n)
			}
		}

		// The opcode's effect on the stack, the memo and the allocations.
		marked := 0
		switch op {
		case '(':
			if len(levels) > maxPickleMarks {
				return st, fmt.Errorf("opcode MARK at byte %d: more than %d nested marks", at, maxPickleMarks)
			}
			levels = append(levels, 0)
			st.marks = max(st.marks, len(levels)-1)
		case '0': // POP: the top value, or the topmost MARK when none is above it
			switch top := len(levels) - 1; {
			case levels[top] > 0:
				levels[top]--
				total--
			case top > 0:
				levels = levels[:top]
			default:
				return st, fmt.Errorf("opcode POP at byte %d: the stack is empty", at)
			}
		default:
			e := pickleEffects[op]
			top := len(levels) - 1
			if e.toMark {
				if top == 0 {
					return st, fmt.Errorf("opcode 0x%02x at byte %d: no MARK on the stack", op, at)
				}
				marked = levels[top]
				total -= marked
				levels = levels[:top]
				top--
			}
			if levels[top] < e.pop+e.keep {
				return st, fmt.Errorf("opcode 0x%02x at byte %d: stack underflow", op, at)
			}
			levels[top] += e.push - e.pop
			total += e.push - e.pop
			st.stack = max(st.stack, total)
			if total > maxPickleStack {
				return st, fmt.Errorf("opcode 0x%02x at byte %d: more than %d values on the stack", op, at, maxPickleStack)
			}
			if op == 'p' || op == 'q' || op == 'r' || op == 0x94 {
				if memo++; memo > maxPickleMemo {
					return st, fmt.Errorf("opcode 0x%02x at byte %d: more than %d memo entries", op, at, maxPickleMemo)
				}
			}
		}
		if alloc += opCost(op, arg, marked); alloc > maxPickleAlloc {
			return st, fmt.Errorf("opcode 0x%02x at byte %d: unpickling would allocate more than %d MiB", op, at, maxPickleAlloc>>20)
		}
		if op == '.' {
			return st, nil
		}
	}
	return st, fmt.Errorf("no STOP opcode: truncated pickle")
}
