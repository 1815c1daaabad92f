package main

import (
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/width"
)

// termSafe makes text safe to print on a terminal, in a table or a
// message: control characters (C0, DEL, C1: escape sequences, newlines,
// tabs), Unicode format characters (bidirectional overrides and the like,
// but not the zero-width joiners of emoji), line and paragraph separators
// and bytes that are not UTF-8 are written as Go escapes (\n, \t, \x1b,
// \u202e). Other text, backslashes included, is unchanged.
func termSafe(s string) string {
	if !needsEscape(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case unsafeRune(r) && r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// needsEscape reports whether termSafe changes s.
func needsEscape(s string) bool {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && n <= 1) || unsafeRune(r) {
			return true
		}
		i += n
	}
	return false
}

// unsafeRune reports whether r must not reach a terminal as it is.
func unsafeRune(r rune) bool {
	switch {
	case r == '\u200c' || r == '\u200d': // zero-width (non-)joiner: harmless, part of emoji
		return false
	case unicode.IsControl(r), unicode.Is(unicode.Cf, r), unicode.Is(unicode.Zl, r), unicode.Is(unicode.Zp, r):
		return true
	}
	return false
}

// displayWidth is the number of terminal columns s takes: two for East
// Asian wide and fullwidth characters (CJK, most emoji), none for
// combining marks and zero-width characters, one for the others. s is
// expected to have gone through termSafe.
func displayWidth(s string) int {
	w := 0
	for _, r := range s {
		switch {
		case unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf):
		case r >= 0x1160 && r <= 0x11ff: // Hangul jamo medial vowels and final consonants join the syllable
		default:
			switch width.LookupRune(r).Kind() {
			case width.EastAsianWide, width.EastAsianFullwidth:
				w += 2
			default:
				w++
			}
		}
	}
	return w
}

// writeColumns writes rows of cells as aligned columns, as text/tabwriter
// with padding 2 would, but measuring cells by their display width and
// making them safe first (termSafe): every column but the last is padded
// with spaces to its widest cell plus two.
func writeColumns(w io.Writer, rows [][]string) error {
	var widths []int
	safe := make([][]string, len(rows))
	for i, row := range rows {
		safe[i] = make([]string, len(row))
		for j, c := range row {
			c = termSafe(c)
			safe[i][j] = c
			if j == len(row)-1 {
				continue
			}
			for len(widths) <= j {
				widths = append(widths, 0)
			}
			widths[j] = max(widths[j], displayWidth(c))
		}
	}
	var b strings.Builder
	for _, row := range safe {
		for j, c := range row {
			b.WriteString(c)
			if j < len(row)-1 {
				b.WriteString(strings.Repeat(" ", widths[j]-displayWidth(c)+2))
			}
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}
