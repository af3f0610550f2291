package main

import (
	"encoding/base64"
	"encoding/binary"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// certificateLine is an ssh-ed25519 certificate line as ssh-keygen writes it,
// with a force-command when command is not nil. The wrapper reads it without
// checking the signature (sshd did), so key and signature are placeholders;
// the Python unit tests send certificates the testbuild CA signed.
func certificateLine(command *string, nonce string) string {
	var blob []byte
	putString := func(data []byte, value []byte) []byte {
		data = binary.BigEndian.AppendUint32(data, uint32(len(value)))
		return append(data, value...)
	}
	kind := "ssh-ed25519-cert-v01@openssh.com"
	blob = putString(blob, []byte(kind))
	blob = putString(blob, []byte(nonce))
	blob = putString(blob, make([]byte, 32)) // public key
	blob = binary.BigEndian.AppendUint64(blob, 1)
	blob = binary.BigEndian.AppendUint32(blob, 1) // user certificate
	blob = putString(blob, []byte("test1"))
	blob = putString(blob, putString(nil, []byte("test1")))
	blob = binary.BigEndian.AppendUint64(blob, 0)
	blob = binary.BigEndian.AppendUint64(blob, ^uint64(0))
	var options []byte
	if command != nil {
		options = putString(options, []byte("force-command"))
		options = putString(options, putString(nil, []byte(*command)))
	}
	options = putString(options, []byte("source-address"))
	options = putString(options, putString(nil, []byte("0.0.0.0/0")))
	blob = putString(blob, options)
	blob = putString(blob, nil) // extensions
	return kind + " " + base64.StdEncoding.EncodeToString(blob) + " test1"
}

func text(s string) *string { return &s }

func TestForceCommandIsReadFromTheCertificate(t *testing.T) {
	command, found, err := forceCommand(certificateLine(text("a 'b' \"c\""), "n"))
	if command != "a 'b' \"c\"" || !found || err != nil {
		t.Errorf("%q %v %v", command, found, err)
	}
	if _, found, err := forceCommand(certificateLine(nil, "n")); found || err != nil {
		t.Errorf("%v %v", found, err)
	}
	for _, line := range []string{
		"ssh-ed25519-cert-v01@openssh.com AAAAnotbase64!",
		"ssh-ed25519-cert-v01@openssh.com AAAA",
		strings.Replace(certificateLine(text("ls"), "n"), "ssh-ed25519-cert", "ssh-xyz-cert", 1)[:60],
		"ls",
	} {
		if _, _, err := forceCommand(line); err == nil || err.Error() != "the certificate sent as command cannot be read" {
			t.Errorf("%q: %v", line, err)
		}
	}
}

func TestAcceptedCommandModels(t *testing.T) {
	forced := certificateLine(text("id -un"), "1")
	free := certificateLine(nil, "2")
	for _, model := range []struct {
		accept                                 string
		v1, plainOverKey, plainOverCertificate bool
	}{
		{"both", true, true, true},
		{"certificate-as-command", true, false, false},
		{"plain", false, true, true},
	} {
		for _, test := range []struct {
			accepted bool
			sent     string
			login    *string
			expected string
		}{
			{model.v1, forced, &forced, "id -un"}, // v1: the certificate text as the command
			{model.plainOverKey, "sinfo", nil, "sinfo"},
			{model.plainOverCertificate, "sinfo", &free, "sinfo"},
		} {
			command, err := resolveCommand(test.sent, test.login, model.accept)
			if test.accepted && (err != nil || command != test.expected) {
				t.Errorf("%s, %.30q: %q %v", model.accept, test.sent, command, err)
			}
			if !test.accepted && (err == nil || !strings.Contains(err.Error(), "not accepted here")) {
				t.Errorf("%s, %.30q: %q %v", model.accept, test.sent, command, err)
			}
		}
		// a certificate's force-command binds in every model
		if command, err := resolveCommand("id -un", &forced, model.accept); command != "id -un" || err != nil {
			t.Errorf("%s: %q %v", model.accept, command, err)
		}
		if _, err := resolveCommand("sinfo", &forced, model.accept); err == nil || !strings.Contains(err.Error(), "differs") {
			t.Errorf("%s: %v", model.accept, err)
		}
	}
}

func TestResolvedCommands(t *testing.T) {
	runs := certificateLine(text("ID=t1 timeout 5 ls -a /home"), "1")
	login, other := certificateLine(text("ls"), "2"), certificateLine(text("cat /etc/shadow"), "3")
	squeue, free := certificateLine(text("squeue"), "4"), certificateLine(nil, "5")
	for _, test := range []struct {
		sent     string
		login    *string
		expected string // the command, or the refusal's reason
	}{
		{runs, &runs, "ID=t1 timeout 5 ls -a /home"},
		{other, &login, "the certificate sent as command is not the one used to log in"},
		{"squeue", &squeue, "squeue"},
		{"", &squeue, "squeue"},
		{" squeue\t", &squeue, "squeue"},
		{"scancel 1", &squeue, "the command differs from the certificate's force-command"},
		{free, &free, "the certificate sent as command has no force-command"},
		{"sinfo", nil, "sinfo"},
		{"  ", nil, "no command given: interactive logins are not offered"},
	} {
		command, err := resolveCommand(test.sent, test.login, "both")
		if err != nil {
			command = err.Error()
		}
		if command != test.expected {
			t.Errorf("%.40q: %q, expected %q", test.sent, command, test.expected)
		}
	}
}

func TestLoginCertificateIsReadFromExposeAuthInfo(t *testing.T) {
	line := "ssh-ed25519-cert-v01@openssh.com AAAAC3Nz test"
	if got := loginCertificate("password\npublickey " + line + "\n"); got == nil || *got != line {
		t.Errorf("%v", got)
	}
	if got := loginCertificate("publickey ssh-ed25519 AAAAC3Nz\n"); got != nil {
		t.Errorf("%q", *got)
	}
}

func TestAcceptModeIsTheLastArgument(t *testing.T) {
	for _, test := range []struct {
		arguments []string
		expected  string
	}{
		{nil, "both"},
		{[]string{"--accept=plain"}, "plain"},
		{[]string{"--accept=plain", "--accept=certificate-as-command"}, "certificate-as-command"},
		{[]string{"--accept=anything"}, "the login node's wrapper is misconfigured (--accept=anything)"},
	} {
		mode, err := acceptMode(test.arguments)
		if err != nil {
			mode = err.Error()
		}
		if mode != test.expected {
			t.Errorf("%q: %q", test.arguments, mode)
		}
	}
}

func TestParseEnvironKeepsBytesAndTheFirstOfAName(t *testing.T) {
	block := []byte("A=1\x00B=caf\xe9\x00A=2\x00no-equals\x00=x\x00EMPTY=\x00")
	if got := parseEnviron(block); !reflect.DeepEqual(got, []string{"A=1", "B=caf\xe9", "EMPTY="}) {
		t.Errorf("%q", got)
	}
}

func TestLoginEnvironmentFallsBackToTheRuntimesWithoutProc(t *testing.T) {
	t.Setenv("WRAPPER_TEST", "x")
	got := loginEnvironment(filepath.Join(t.TempDir(), "missing"))
	found := false
	for _, entry := range got {
		found = found || entry == "WRAPPER_TEST=x"
	}
	if !found {
		t.Errorf("%q", got)
	}
}

func TestTheCommandGetsShlvlAsIfSshdSetNone(t *testing.T) {
	got := commandEnvironment([]string{"A=1", "SHLVL=2"})
	if !reflect.DeepEqual(got, []string{"A=1", "SHLVL=1"}) {
		t.Errorf("%q", got)
	}
	if got := commandEnvironment([]string{"SHLVL=3"}); got[0] != "SHLVL=3" {
		t.Errorf("%q", got)
	}
}
