// Command testbuild-command-wrapper is sshd's ForceCommand on the login node:
// it runs one allow-listed command line.
//
// Two ways of sending commands, chosen by --accept (the environment's
// cluster.sshCommands, rendered into sshd's ForceCommand line):
//
//   - certificate-as-command, upstream FirecREST v1's protocol: the client logs
//     in with a short-lived certificate signed by the testbuild CA and sends
//     the certificate text itself as the SSH command; the command to run is
//     the certificate's force-command;
//   - plain: the client sends the command line itself (FirecREST v2, which
//     keeps one connection per user open), logged in with a static key or with
//     a certificate without force-command;
//   - both (the default): either of the two.
//
// Whatever is accepted, a plain command sent over a certificate that has a
// force-command must equal it. Every command a line can run must start with
// an allowed program (check.go). Refusals exit with 118, as upstream's
// wrapper does. Each decision is logged.
//
// The command runs in exactly the environment sshd started the wrapper with,
// byte for byte, as under a shell wrapper (upstream's is bash), with one
// exception: SHLVL, which sshd sets (SetEnv SHLVL=1) only so that the user's
// login shell, bash, starting this wrapper reads no ~/.bashrc; the command
// gets SHLVL as if sshd had set none.
//
// Every SSH command starts this program, so it is kept cheap to start (issue
// 16; docs/benchmarks.md has the figures): a static binary that imports no
// package that reads files or the environment at start. In particular not
// "os": with Go 1.19 (bookworm's) os raises the soft RLIMIT_NOFILE to the hard
// limit at start and nothing puts it back, so every command would inherit a
// limit sshd did not give (from Go 1.21 on, syscall raises it and
// syscall.Exec restores it). Arguments and environment are read from /proc,
// as the kernel keeps them from the exec.
//
// This replaced a Python wrapper (testbuild_command_wrapper.py) and decides
// exactly as it did: strings are handled as Python handled them (pystr.go),
// which the tests check against Python itself.
package main

import (
	"strconv"
	"syscall"
	"time"
)

const refusedStatus = 118

// Set at link time (-ldflags -X) by the unit tests only; the image's build
// leaves the login node's paths.
var (
	allowedFile = "/etc/testbuild-allowed-commands"
	logFile     = "/var/log/testbuild/commands.log"
)

const (
	procEnviron = "/proc/self/environ"
	procCmdline = "/proc/self/cmdline"
	bashPath    = "/bin/bash"
)

// refused is a decision not to run the command; the reason says why.
type refused struct{ reason string }

func (r *refused) Error() string { return r.reason }

func refuse(reason string) error { return &refused{reason} }

func main() {
	syscall.Exit(run())
}

// run decides, logs and execs bash -c COMMAND; it returns only on refusal
// (118) or on a failure the Python wrapper did not catch either (1).
func run() int {
	original, _ := syscall.Getenv("SSH_ORIGINAL_COMMAND")
	authFile, _ := syscall.Getenv("SSH_USER_AUTH")
	how := "key"
	var loginCert *string
	if authFile != "" {
		text, err := readText(authFile)
		if err != nil {
			return failed(err)
		}
		loginCert = loginCertificate(text)
	}
	if loginCert != nil {
		how = "certificate"
	}
	if _, ok := certificateBlob(original); ok {
		how = "certificate-as-command"
	}
	arguments, err := readArguments(procCmdline)
	if err != nil {
		return failed(err)
	}
	command, err := decide(original, loginCert, arguments)
	if r, ok := err.(*refused); ok {
		writeLog("refused ("+r.reason+")", pyPrefix(original, 200), how)
		writeStderr("testbuild: command refused: " + backslashReplace(r.reason) + "\n")
		return refusedStatus
	}
	if err != nil {
		return failed(err)
	}
	writeLog("ok", command, how)
	environment := commandEnvironment(loginEnvironment(procEnviron))
	err = syscall.Exec(bashPath, []string{"bash", "-c", command}, environment)
	return failed(&pathError{bashPath, err})
}

// decide returns the command line to run, a *refused error, or the error of
// a file that cannot be read.
func decide(original string, loginCert *string, arguments []string) (string, error) {
	accept, err := acceptMode(arguments)
	if err != nil {
		return "", err
	}
	command, err := resolveCommand(original, loginCert, accept)
	if err != nil {
		return "", err
	}
	allowed, err := readAllowed(allowedFile)
	if err != nil {
		return "", err
	}
	return command, checkAllowed(command, allowed, 0)
}

// failed reports an error that is not a refusal (a file that cannot be read,
// bash that cannot start) and returns exit status 1, Python's for an
// uncaught exception; nothing is logged, as before.
func failed(err error) int {
	writeStderr("testbuild: " + backslashReplace(err.Error()) + "\n")
	return 1
}

type pathError struct {
	path string
	err  error
}

func (e *pathError) Error() string { return e.path + ": " + e.err.Error() }

// readFile returns a whole file's bytes, through syscall (see the package
// comment on os).
func readFile(path string) ([]byte, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, &pathError{path, err}
	}
	defer syscall.Close(fd)
	var data []byte
	buffer := make([]byte, 64*1024)
	for {
		n, err := syscall.Read(fd, buffer)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &pathError{path, err}
		}
		if n == 0 {
			return data, nil
		}
		data = append(data, buffer[:n]...)
	}
}

// readText reads a file as Python's open(path, encoding="utf-8") does: strict
// UTF-8, with universal newlines (\r\n and \r read as \n).
func readText(path string) (string, error) {
	data, err := readFile(path)
	if err != nil {
		return "", err
	}
	text, ok := universalNewlines(data)
	if !ok {
		return "", &pathError{path, errNotUTF8}
	}
	return text, nil
}

// readAllowed returns the allow-list: one program a line, # starts a comment.
func readAllowed(path string) (map[string]bool, error) {
	text, err := readText(path)
	if err != nil {
		return nil, err
	}
	allowed := map[string]bool{}
	for _, line := range fileLines(text) {
		if program := pyStrip(cutAt(line, '#')); program != "" {
			allowed[program] = true
		}
	}
	return allowed, nil
}

// writeLog appends one decision to the log file:
// TIME user=USER [login=HOW] OUTCOME 'COMMAND' (the command as Python's
// repr()). Bytes that are not UTF-8 in the user or the outcome (a refused
// program's name) are written as \udcXX, as in the command: the Python
// wrapper failed on them (exit 1, no line) instead.
func writeLog(outcome, command, how string) {
	stamp := time.Now().UTC().Format("2006-01-02T15:04:05+00:00") // ISO 8601 in UTC
	user, found := syscall.Getenv("USER")
	if !found {
		user = strconv.Itoa(syscall.Getuid())
	}
	login := ""
	if how != "" {
		login = " login=" + how
	}
	line := stamp + " user=" + backslashReplace(user) + login + " " + backslashReplace(outcome) + " " + pyRepr(command) + "\n"
	fd, err := syscall.Open(logFile, syscall.O_WRONLY|syscall.O_APPEND|syscall.O_CREAT|syscall.O_CLOEXEC, 0o666)
	if err != nil {
		return // logging must never stop a command
	}
	writeAll(fd, line)
	syscall.Close(fd)
}

func writeStderr(text string) {
	writeAll(2, text)
}

func writeAll(fd int, text string) {
	data := []byte(text)
	for len(data) > 0 {
		n, err := syscall.Write(fd, data)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			return
		}
		data = data[n:]
	}
}
