package main

// The wrapper decides as Python did: these tests compare it with what
// Python's shlex, str and binascii decide, through vectors that
// testdata/vectors.py prints (run here with $PYTHON, else python3).

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"sync"
	"testing"
)

type stringVector struct {
	Hex              string   `json:"hex"`
	Repr             string   `json:"repr"`
	Strip            string   `json:"strip"`
	Lines            []string `json:"lines"`
	Words            []string `json:"words"`
	BackslashReplace string   `json:"backslashreplace"`
}

type vectorSet struct {
	Split        [][2]json.RawMessage `json:"split"`
	Spaces       []rune               `json:"spaces"`
	Strings      []stringVector       `json:"strings"`
	Certificates [][2]*string         `json:"certificates"`
	Base64       [][2]*string         `json:"base64"`
}

var (
	vectorsOnce sync.Once
	vectors     vectorSet
	vectorsErr  error
)

func pythonVectors(t *testing.T) *vectorSet {
	t.Helper()
	vectorsOnce.Do(func() {
		python := os.Getenv("PYTHON") // the Python unit test's interpreter
		if python == "" {
			python = "python3"
		}
		output, err := exec.Command(python, "testdata/vectors.py").Output()
		if err != nil {
			if exit, ok := err.(*exec.ExitError); ok {
				err = fmt.Errorf("%w\n%s", err, exit.Stderr)
			}
			vectorsErr = err
			return
		}
		vectorsErr = json.Unmarshal(output, &vectors)
	})
	if vectorsErr != nil {
		t.Fatalf("the test vectors need Python 3.11 or newer ($PYTHON, or python3 on PATH): %v", vectorsErr)
	}
	return &vectors
}

func unhex(t *testing.T, text string) string {
	t.Helper()
	data, err := hex.DecodeString(text)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// Every line of up to 4 characters that matter to the lexer, 3000 random
// longer lines and the edge cases split as with shlex, errors included.
func TestLinesSplitAsShlexSplitsThem(t *testing.T) {
	for _, vector := range pythonVectors(t).Split {
		var line string
		if err := json.Unmarshal(vector[0], &line); err != nil {
			t.Fatal(err)
		}
		var expected interface{}
		if err := json.Unmarshal(vector[1], &expected); err != nil {
			t.Fatal(err)
		}
		var got interface{}
		words, err := splitWords(line)
		if err != nil {
			got = err.Error()
		} else {
			list := []interface{}{}
			for _, word := range words {
				list = append(list, word)
			}
			got = list
		}
		if !reflect.DeepEqual(got, expected) {
			t.Errorf("%q: split into %q, shlex %q", line, got, expected)
		}
	}
}

func TestWhitespaceIsPythonsIsspace(t *testing.T) {
	spaces := map[rune]bool{}
	for _, space := range pythonVectors(t).Spaces {
		spaces[space] = true
	}
	for code := rune(0); code <= 0x10ffff; code++ {
		if pyIsSpace(code) != spaces[code] {
			t.Errorf("U+%04X: isspace %v, Python %v", code, pyIsSpace(code), spaces[code])
		}
	}
}

// repr (the log), strip, splitlines, split and stderr's backslashreplace.
func TestStringsAreReadAndPrintedAsPythonDid(t *testing.T) {
	for _, vector := range pythonVectors(t).Strings {
		text := unhex(t, vector.Hex)
		if got := pyRepr(text); got != vector.Repr {
			t.Errorf("repr(%q) = %s, Python %s", text, got, vector.Repr)
		}
		if got := pyStrip(text); got != unhex(t, vector.Strip) {
			t.Errorf("strip(%q) = %q, Python %q", text, got, unhex(t, vector.Strip))
		}
		lines := []string{}
		for _, line := range vector.Lines {
			lines = append(lines, unhex(t, line))
		}
		if got := pySplitLines(text); !reflect.DeepEqual(append([]string{}, got...), lines) {
			t.Errorf("splitlines(%q) = %q, Python %q", text, got, lines)
		}
		first, second, count := pyFirstWords(text)
		words := []string{first, second}[:count]
		expected := []string{}
		for _, word := range vector.Words {
			expected = append(expected, unhex(t, word))
		}
		if !reflect.DeepEqual(append([]string{}, words...), expected) {
			t.Errorf("split(%q)[:2] = %q, Python %q", text, words, expected)
		}
		if got := backslashReplace(text); got != unhex(t, vector.BackslashReplace) {
			t.Errorf("backslashreplace(%q) = %q, Python %q", text, got, unhex(t, vector.BackslashReplace))
		}
	}
}

func TestCertificateLinesAreRecognisedAsTheRegexDid(t *testing.T) {
	for _, vector := range pythonVectors(t).Certificates {
		blob, ok := certificateBlob(*vector[0])
		if ok != (vector[1] != nil) || (ok && blob != *vector[1]) {
			t.Errorf("%q: blob %q (%v), expected %v", *vector[0], blob, ok, vector[1])
		}
	}
}

func TestBase64IsDecodedAsPythonsStrictMode(t *testing.T) {
	for _, vector := range pythonVectors(t).Base64 {
		data, ok := decodeBase64Strict(*vector[0])
		if ok != (vector[1] != nil) || (ok && hex.EncodeToString(data) != *vector[1]) {
			t.Errorf("%q: decoded %x (%v), Python %v", *vector[0], data, ok, vector[1])
		}
	}
	// Python 3.11 (bookworm) took padding after a whole quad, 3.13 (trixie) refuses it.
	if _, ok := decodeBase64Strict("AAAA="); ok {
		t.Error("AAAA= decoded")
	}
}
