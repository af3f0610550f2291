package main

// Python's str semantics where the wrapper's decisions or messages depend on
// them. The Python wrapper read the environment as Python does: UTF-8 with
// surrogateescape, each byte that is not part of valid UTF-8 becoming one
// code point U+DC80..U+DCFF. Here strings stay bytes; these helpers count,
// classify and print them as Python did.

import (
	"errors"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

var errNotUTF8 = errors.New("not valid UTF-8")

// codePoint is the code point at the start of s and its length in bytes: a
// byte that does not start valid UTF-8 is one code point, its surrogate
// escape (0xDC00 + byte).
func codePoint(s string) (rune, int) {
	r, size := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError && size <= 1 {
		return 0xDC00 + rune(s[0]), 1
	}
	return r, size
}

// pyIsSpace is str.isspace() of one code point: Unicode's White_Space
// property as Python reads it (bidirectional class WS, B or S, or category
// Zs), which also counts the ASCII separators \x1c..\x1f.
func pyIsSpace(r rune) bool {
	switch {
	case r >= 0x09 && r <= 0x0d, r >= 0x1c && r <= 0x20, r == 0x85, r == 0xa0:
		return true
	case r < 0x1680:
		return false
	}
	return r == 0x1680 || (r >= 0x2000 && r <= 0x200a) || r == 0x2028 || r == 0x2029 ||
		r == 0x202f || r == 0x205f || r == 0x3000
}

// pyStrip is str.strip().
func pyStrip(s string) string {
	s = trimLeftSpace(s)
	for s != "" {
		r, size := lastCodePoint(s)
		if !pyIsSpace(r) {
			break
		}
		s = s[:len(s)-size]
	}
	return s
}

func lastCodePoint(s string) (rune, int) {
	r, size := utf8.DecodeLastRuneInString(s)
	if r == utf8.RuneError && size <= 1 {
		return 0xDC00 + rune(s[len(s)-1]), 1
	}
	return r, size
}

// pyFirstWords returns the first two words of str.split() (whitespace-separated),
// and how many of them there are (0, 1 or 2).
func pyFirstWords(s string) (first, second string, count int) {
	words := [2]string{}
	for count < 2 {
		s = trimLeftSpace(s)
		if s == "" {
			break
		}
		end := 0
		for end < len(s) {
			r, size := codePoint(s[end:])
			if pyIsSpace(r) {
				break
			}
			end += size
		}
		words[count], s = s[:end], s[end:]
		count++
	}
	return words[0], words[1], count
}

func trimLeftSpace(s string) string {
	for s != "" {
		r, size := codePoint(s)
		if !pyIsSpace(r) {
			break
		}
		s = s[size:]
	}
	return s
}

// pySplitLines is str.splitlines(): lines end at \n, \r, \r\n, \v, \f,
// \x1c, \x1d, \x1e, \x85, U+2028 and U+2029; no empty last line.
func pySplitLines(s string) []string {
	var lines []string
	start := 0
	for index := 0; index < len(s); {
		r, size := codePoint(s[index:])
		end := index + size
		switch r {
		case '\r':
			if strings.HasPrefix(s[end:], "\n") {
				end++
			}
			fallthrough
		case '\n', '\v', '\f', 0x1c, 0x1d, 0x1e, 0x85, 0x2028, 0x2029:
			lines = append(lines, s[start:index])
			start = end
		}
		index = end
	}
	if start < len(s) {
		lines = append(lines, s[start:])
	}
	return lines
}

// universalNewlines decodes a file's bytes as Python's text mode does by
// default: strict UTF-8, \r\n and \r read as \n. ok is false when the bytes
// are not UTF-8 (Python raised UnicodeDecodeError).
func universalNewlines(data []byte) (text string, ok bool) {
	if !utf8.Valid(data) {
		return "", false
	}
	return strings.ReplaceAll(strings.ReplaceAll(string(data), "\r\n", "\n"), "\r", "\n"), true
}

// fileLines are the lines of iterating over a text file (after
// universalNewlines): each ends at \n, which it keeps.
func fileLines(text string) []string {
	lines := strings.SplitAfter(text, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// cutAt is s up to the first sep, or all of s (s.split(sep)[0]).
func cutAt(s string, sep byte) string {
	if index := strings.IndexByte(s, sep); index >= 0 {
		return s[:index]
	}
	return s
}

// pyPrefix is s[:n]: the first n code points.
func pyPrefix(s string, n int) string {
	index := 0
	for ; n > 0 && index < len(s); n-- {
		_, size := codePoint(s[index:])
		index += size
	}
	return s[:index]
}

// isASCII is str.isascii(); a surrogate escape is not ASCII.
func isASCII(s string) bool {
	for index := 0; index < len(s); index++ {
		if s[index] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// backslashReplace is what Python's sys.stderr (errors="backslashreplace")
// writes for a string: each surrogate escape as \udcXX, the rest as UTF-8.
func backslashReplace(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var out strings.Builder
	for index := 0; index < len(s); {
		r, size := codePoint(s[index:])
		if r >= 0xdc80 && r <= 0xdcff && size == 1 {
			out.WriteString(`\u` + strconv.FormatInt(int64(r), 16))
		} else {
			out.WriteString(s[index : index+size])
		}
		index += size
	}
	return out.String()
}

// pyRepr is repr() of a str: in single quotes unless it holds ' and no ",
// with \\, \t, \n, \r and the quote escaped, and every code point Python
// does not print (controls, format characters, separators other than the
// space, surrogates, unassigned) as \xNN, \uNNNN or \UNNNNNNNN.
func pyRepr(s string) string {
	quote := byte('\'')
	if strings.IndexByte(s, '\'') >= 0 && strings.IndexByte(s, '"') < 0 {
		quote = '"'
	}
	out := []byte{quote}
	for index := 0; index < len(s); {
		r, size := codePoint(s[index:])
		switch {
		case r == rune(quote) || r == '\\':
			out = append(out, '\\', byte(r))
		case r == '\t':
			out = append(out, `\t`...)
		case r == '\n':
			out = append(out, `\n`...)
		case r == '\r':
			out = append(out, `\r`...)
		case r < ' ' || r == 0x7f:
			out = appendEscape(out, `\x`, r, 2)
		case r < 0x7f:
			out = append(out, byte(r))
		case pyIsPrintable(r):
			out = append(out, s[index:index+size]...)
		case r <= 0xff:
			out = appendEscape(out, `\x`, r, 2)
		case r <= 0xffff:
			out = appendEscape(out, `\u`, r, 4)
		default:
			out = appendEscape(out, `\U`, r, 8)
		}
		index += size
	}
	return string(append(out, quote))
}

// pyIsPrintable is str.isprintable() of a non-ASCII code point: letters,
// marks, numbers, punctuation and symbols (Go's and Python's Unicode
// versions can differ on code points assigned in between).
func pyIsPrintable(r rune) bool {
	return unicode.IsPrint(r)
}

func appendEscape(out []byte, prefix string, r rune, digits int) []byte {
	hex := strconv.FormatInt(int64(r), 16)
	out = append(out, prefix...)
	for pad := len(hex); pad < digits; pad++ {
		out = append(out, '0')
	}
	return append(out, hex...)
}
