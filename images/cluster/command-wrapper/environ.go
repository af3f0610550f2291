package main

// The wrapper's arguments and the environment it hands on, as the kernel
// keeps them from the exec (/proc/self): see the package comment on os.

import (
	"bytes"
	"errors"
	"strings"
	"syscall"
)

// readArguments returns the arguments after the program's name.
func readArguments(cmdline string) ([]string, error) {
	data, err := readFile(cmdline)
	if err != nil {
		return nil, err
	}
	if len(data) == 0 {
		return nil, errors.New(cmdline + ": empty")
	}
	arguments := strings.Split(string(bytes.TrimSuffix(data, []byte{0})), "\x00")
	return arguments[1:], nil
}

// parseEnviron returns the NAME=value entries of a NUL-separated environment
// block, in order, the first of a name winning (as for getenv()); entries
// without a name or without = are dropped.
func parseEnviron(block []byte) []string {
	var entries []string
	seen := map[string]bool{}
	for _, entry := range strings.Split(string(block), "\x00") {
		name, _, hasEquals := strings.Cut(entry, "=")
		if name != "" && hasEquals && !seen[name] {
			seen[name] = true
			entries = append(entries, entry)
		}
	}
	return entries
}

// loginEnvironment returns the environment sshd started this process with,
// byte for byte; without /proc, the one Go's runtime copied at start.
func loginEnvironment(procEnviron string) []string {
	block, err := readFile(procEnviron)
	if err != nil {
		block = []byte(strings.Join(syscall.Environ(), "\x00"))
	}
	return parseEnviron(block)
}

// commandEnvironment is the environment to hand on: sshd's, with SHLVL as if
// sshd had set none. sshd sets SHLVL=1 (SetEnv) only so that the login shell
// starting this wrapper is not a top-level shell, which would read
// ~/.bashrc; that shell raised it to 2. The command's bash gets 1, as it
// would without the SetEnv.
func commandEnvironment(environment []string) []string {
	handed := make([]string, len(environment))
	for index, entry := range environment {
		if entry == "SHLVL=2" {
			entry = "SHLVL=1"
		}
		handed[index] = entry
	}
	return handed
}
