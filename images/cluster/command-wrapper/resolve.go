package main

// What to run: the command sent, or a certificate's force-command.

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"unicode/utf8"
)

const certSuffix = "-cert-v01@openssh.com"

var acceptModes = []string{"certificate-as-command", "plain", "both"}

// certificateBlob returns the base64 body of an OpenSSH certificate line:
// the second word when the first is TYPE-cert-v01@openssh.com.
func certificateBlob(text string) (string, bool) {
	first, second, count := pyFirstWords(text)
	if count > 1 && len(first) > len(certSuffix) && strings.HasSuffix(first, certSuffix) {
		return second, true
	}
	return "", false
}

// Fields before the critical options, per certificate type (PROTOCOL.certkeys):
// one string each (the nonce and the public key's parts).
var certFields = map[string]int{
	"ssh-ed25519-cert-v01@openssh.com":         2,
	"ssh-rsa-cert-v01@openssh.com":             3,
	"ssh-dss-cert-v01@openssh.com":             5,
	"ecdsa-sha2-nistp256-cert-v01@openssh.com": 3,
	"ecdsa-sha2-nistp384-cert-v01@openssh.com": 3,
	"ecdsa-sha2-nistp521-cert-v01@openssh.com": 3,
}

var errTruncated = errors.New("truncated")

// sshString reads the length-prefixed string at offset; it returns the string
// and the offset after it.
func sshString(data []byte, offset int) ([]byte, int, error) {
	if offset < 0 || offset+4 > len(data) {
		return nil, 0, errTruncated
	}
	end := offset + 4 + int(binary.BigEndian.Uint32(data[offset:]))
	if end > len(data) {
		return nil, 0, errTruncated
	}
	return data[offset+4 : end], end, nil
}

// forceCommand returns the force-command critical option of a certificate
// line, read from the certificate's wire format (PROTOCOL.certkeys); found is
// false when it has none. sshd has verified the login certificate, and one
// sent as command is only used when it is that same certificate.
func forceCommand(certificate string) (command string, found bool, err error) {
	command, found, ok := readForceCommand(certificate)
	if !ok {
		return "", false, refuse("the certificate sent as command cannot be read")
	}
	return command, found, nil
}

func readForceCommand(certificate string) (command string, found, ok bool) {
	blob, isCertificate := certificateBlob(certificate)
	data, ok := decodeBase64Strict(blob)
	if !ok {
		return "", false, false
	}
	kind, offset, err := sshString(data, 0)
	fields, known := certFields[string(kind)]
	if err != nil || !isCertificate || !known {
		return "", false, false
	}
	for field := 0; field < fields; field++ {
		if _, offset, err = sshString(data, offset); err != nil {
			return "", false, false
		}
	}
	offset += 8 + 4                      // serial, type
	for field := 0; field < 2; field++ { // key id, principals
		if _, offset, err = sshString(data, offset); err != nil {
			return "", false, false
		}
	}
	offset += 8 + 8 // valid after, valid before
	options, _, err := sshString(data, offset)
	if err != nil {
		return "", false, false
	}
	for position := 0; position < len(options); {
		var name, value []byte
		if name, position, err = sshString(options, position); err != nil {
			return "", false, false
		}
		if value, position, err = sshString(options, position); err != nil {
			return "", false, false
		}
		if string(name) == "force-command" {
			text, _, err := sshString(value, 0)
			if err != nil || !utf8.Valid(text) {
				return "", false, false
			}
			return string(text), true, true
		}
	}
	return "", false, true
}

// decodeBase64Strict decodes as Python's binascii.a2b_base64(strict_mode=True):
// ASCII base64 with its padding and nothing else. Go's decoder skips \r and
// \n, which strict mode refuses; both allow nonzero bits after the last
// byte.
func decodeBase64Strict(text string) ([]byte, bool) {
	if strings.ContainsAny(text, "\r\n") || !isASCII(text) {
		return nil, false
	}
	data, err := base64.StdEncoding.DecodeString(text)
	return data, err == nil
}

// loginCertificate returns the certificate used to log in, from sshd's
// ExposeAuthInfo file (nil when the login used a plain key).
func loginCertificate(authInfo string) *string {
	for _, line := range pySplitLines(authInfo) {
		method, rest := line, ""
		if index := strings.IndexByte(line, ' '); index >= 0 {
			method, rest = line[:index], line[index+1:]
		}
		if _, ok := certificateBlob(rest); ok && method == "publickey" {
			certificate := pyStrip(rest)
			return &certificate
		}
	}
	return nil
}

// acceptMode returns the --accept=MODE argument (sshd's ForceCommand line),
// both by default; the last one given counts.
func acceptMode(arguments []string) (string, error) {
	mode := "both"
	for _, argument := range arguments {
		if strings.HasPrefix(argument, "--accept=") {
			mode = argument[len("--accept="):]
		}
	}
	for _, known := range acceptModes {
		if mode == known {
			return mode, nil
		}
	}
	return "", refuse("the login node's wrapper is misconfigured (--accept=" + mode + ")")
}

// resolveCommand returns the command line to run, given what the client sent
// and how it logged in. accept is the environment's cluster.sshCommands:
// certificate-as-command, plain or both.
func resolveCommand(original string, loginCert *string, accept string) (string, error) {
	if sentBlob, sent := certificateBlob(original); sent {
		if accept == "plain" {
			return "", refuse("certificates sent as command are not accepted here (sshCommands: plain)")
		}
		if loginCert != nil {
			if loginBlob, _ := certificateBlob(*loginCert); loginBlob != sentBlob {
				return "", refuse("the certificate sent as command is not the one used to log in")
			}
		}
		command, _, err := forceCommand(original)
		if err != nil {
			return "", err
		}
		if command == "" {
			return "", refuse("the certificate sent as command has no force-command")
		}
		return command, nil
	}
	if loginCert != nil {
		forced, _, err := forceCommand(*loginCert)
		if err != nil {
			return "", err
		}
		if forced != "" {
			if pyStrip(original) != "" && pyStrip(original) != pyStrip(forced) {
				return "", refuse("the command differs from the certificate's force-command")
			}
			return forced, nil
		}
	}
	if pyStrip(original) == "" {
		return "", refuse("no command given: interactive logins are not offered")
	}
	if accept == "certificate-as-command" {
		return "", refuse("plain commands are not accepted here (sshCommands: certificate-as-command):" +
			" send a certificate whose force-command is the command")
	}
	return original, nil
}
