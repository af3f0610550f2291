package main

// The allow-list check: every command a line can run must start with an
// allowed program: each part of a pipeline or list, after VAR=value
// prefixes, redirections and `timeout [options] N`; the line inside
// `bash -c "LINE"` (checked as any line); the command of `find -exec`.
// Command and process substitution are refused, and so is anything the
// check cannot read. Every special character is ASCII, so lines are walked
// byte by byte: the bytes of other characters are kept as they are.

import (
	"errors"
	"strings"
)

const maxDepth = 4 // bash -c "bash -c '...'" nesting

const (
	controlChars = "();|&\n"
	punctuation  = "();<>|&"
	blanks       = " \t\r" // what separates words; a newline separates commands
)

var (
	timeoutOptionsWithValue = setOf("-s", "-k", "--signal", "--kill-after")
	redirections            = setOf(">", ">>", "<", "<<", "<<<", ">&", "<&", "&>", "&>>", ">|", "<>")
	findExec                = setOf("-exec", "-execdir", "-ok", "-okdir")
	// Variables a VAR=value prefix may not set: each makes an allowed program
	// run other code (another binary, a library, a shell's startup file).
	unsafeVariables = setOf(
		"PATH", "ENV", "BASH_ENV", "SHELLOPTS", "BASHOPTS", "IFS", "PS4", "CDPATH",
		"GLOBIGNORE", "BASH_XTRACEFD", "GCONV_PATH", "HOSTALIASES", "LOCPATH", "NLSPATH",
		"TMPDIR", "HOME", "SHELL", "EDITOR", "VISUAL", "PAGER", "TAR_OPTIONS", "RSYNC_RSH",
		"RSYNC_CONNECT_PROG",
	)
	unsafePrefixes = []string{
		"LD_", "BASH_FUNC_", "PYTHON", "PERL", "RUBY", "NODE_", "GIT_", "MALLOC_", "SSH_",
	}
)

func setOf(items ...string) map[string]bool {
	set := make(map[string]bool, len(items))
	for _, item := range items {
		set[item] = true
	}
	return set
}

// scan refuses what bash would expand into running more commands.
//
// It walks the line as bash quotes it: nothing is special inside '...';
// inside "..." and unquoted, `...`, $(...) (and $((...))) run code, and so
// may ${...} beyond a plain ${NAME} (a substring offset is arithmetic, and
// arithmetic runs the command substitutions in a variable's value);
// unquoted, <(...) and >(...) run a command too.
func scan(command string) error {
	quote := "" // "", "'", "\"" or "$'" (ANSI-C)
	for index := 0; index < len(command); index++ {
		char := command[index]
		rest := command[index:]
		switch {
		case quote == "'" || quote == "$'":
			if quote == "$'" && char == '\\' {
				index++
			} else if char == '\'' {
				quote = ""
			}
		case char == '\\':
			index++
		case char == '`':
			return refuse("command substitution (`) is not allowed")
		case strings.HasPrefix(rest, "$("):
			return refuse("command substitution ($() is not allowed")
		case strings.HasPrefix(rest, "${") && !simpleParameter(rest):
			return refuse("parameter expansions other than ${NAME} are not allowed")
		case quote == "\"":
			if char == '"' {
				quote = ""
			}
		case strings.HasPrefix(rest, "<(") || strings.HasPrefix(rest, ">("):
			return refuse("process substitution (" + rest[:2] + ") is not allowed")
		case strings.HasPrefix(rest, "$'"):
			quote = "$'"
			index++
		case char == '\'' || char == '"':
			quote = string(char)
		}
	}
	if quote != "" {
		return refuse("the command cannot be parsed: No closing quotation")
	}
	return nil
}

// simpleParameter tells whether text, starting with ${, starts a plain ${NAME}.
func simpleParameter(text string) bool {
	end := strings.IndexByte(text[2:], '}')
	return end != -1 && isName(text[2:2+end])
}

// isName tells whether text is a shell variable's name: [A-Za-z_][A-Za-z0-9_]*.
func isName(text string) bool {
	for index := 0; index < len(text); index++ {
		char := text[index]
		letter := char == '_' || (char|0x20 >= 'a' && char|0x20 <= 'z')
		if !letter && (index == 0 || char < '0' || char > '9') {
			return false
		}
	}
	return text != ""
}

// effectiveWords are the words of the program a simple command runs:
// timeout [OPTIONS] N PROGRAM ... counts as PROGRAM ...
func effectiveWords(words []string) []string {
	for len(words) > 0 && words[0] == "timeout" {
		rest := words[1:]
		for len(rest) > 0 && strings.HasPrefix(rest[0], "-") {
			option := rest[0]
			rest = rest[1:]
			if timeoutOptionsWithValue[option] && len(rest) > 0 {
				rest = rest[1:]
			}
		}
		if len(rest) > 0 {
			rest = rest[1:]
		}
		words = rest
	}
	return words
}

// checkAllowed refuses the line unless every command it can run starts with
// an allowed program.
func checkAllowed(command string, allowed map[string]bool, depth int) error {
	if depth > maxDepth {
		return refuse("bash -c is nested too deeply")
	}
	if err := scan(command); err != nil {
		return err
	}
	commands, err := simpleCommands(command)
	if err != nil {
		return refuse("the command cannot be parsed: " + err.Error())
	}
	program := false
	for _, words := range commands {
		program = program || len(words) > 0
	}
	if !program {
		return refuse("no program in the command")
	}
	for _, words := range commands {
		if err := checkSimple(words, allowed, depth); err != nil {
			return err
		}
	}
	return nil
}

func checkSimple(words []string, allowed map[string]bool, depth int) error {
	if len(words) == 0 {
		return refuse("a command without a program (only assignments) is not allowed")
	}
	effective := effectiveWords(words)
	program := ""
	if len(effective) > 0 {
		program = effective[0]
	}
	if program == "bash" && !allowed["bash"] {
		if len(effective) != 3 || effective[1] != "-c" {
			return refuse("'bash' is not an allowed command (bash -c LINE is, LINE being checked)")
		}
		return checkAllowed(effective[2], allowed, depth+1)
	}
	if !allowed[program] {
		shown := program
		if shown == "" {
			shown = words[0]
		}
		return refuse("'" + shown + "' is not an allowed command")
	}
	if program == "find" {
		return checkFind(effective, allowed, depth)
	}
	return nil
}

// checkFind: find -exec/-execdir/-ok/-okdir PROGRAM ... ; runs PROGRAM, which
// must be allowed. The `;` ending it is a separate command to the line's
// parser, so the words after -exec reach here until the end of the simple
// command.
func checkFind(words []string, allowed map[string]bool, depth int) error {
	for index, word := range words {
		if !findExec[word] {
			continue
		}
		executed := words[index+1:]
		for len(executed) > 0 && (executed[len(executed)-1] == "{}" || executed[len(executed)-1] == "+") {
			executed = executed[:len(executed)-1] // the names find appends
		}
		if err := checkSimple(executed, allowed, depth); err != nil {
			return err
		}
	}
	return nil
}

// onlyOf tells whether token is made of chars alone (and is not empty).
func onlyOf(token, chars string) bool {
	for index := 0; index < len(token); index++ {
		if strings.IndexByte(chars, token[index]) < 0 {
			return false
		}
	}
	return token != ""
}

// simpleCommands returns the words of each simple command, without
// assignments and redirections.
//
// Conservative where it differs from bash: `#` starts no comment, and a
// quoted operator (';') separates commands too, so every word bash could run
// as a program is checked. Operators the check does not know are refused. An
// empty list is a command made of assignments alone.
func simpleCommands(command string) ([][]string, error) {
	words, err := splitWords(command)
	if err != nil {
		return nil, err
	}
	commands := [][]string{nil}
	assignments := []bool{false}
	skipNext := false
	for _, token := range splitNewlines(words) {
		last := len(commands) - 1
		name, _, hasEquals := strings.Cut(token, "=")
		switch {
		case skipNext:
			skipNext = false
		case onlyOf(token, controlChars): // ; && || | & |& ;; ( ) newline
			commands = append(commands, nil)
			assignments = append(assignments, false)
		case redirections[token]:
			skipNext = true
		case onlyOf(token, punctuation):
			return nil, errors.New("unsupported operator '" + token + "'")
		case len(commands[last]) == 0 && hasEquals && isName(name):
			if unsafeVariable(name) {
				return nil, errors.New("setting " + name + " is not allowed")
			}
			assignments[last] = true
		default:
			commands[last] = append(commands[last], token)
		}
	}
	if skipNext {
		return nil, errors.New("a redirection without a target")
	}
	var kept [][]string
	for index, words := range commands {
		if len(words) > 0 || assignments[index] {
			kept = append(kept, words)
		}
	}
	return kept, nil
}

func unsafeVariable(name string) bool {
	for _, prefix := range unsafePrefixes {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return unsafeVariables[name]
}

// splitWords returns the line's words and operators, split exactly as
// Python's shlex splits it with posix=True, punctuation_chars=True,
// whitespace_split=True, no commenters and space, tab and carriage return as
// whitespace (the check was written on that lexer).
//
// A run of ();<>|& outside quotes is one operator token; whitespace ends a
// word; single quotes keep everything; double quotes keep everything but a
// backslash before a backslash or a double quote; outside quotes a backslash
// keeps the next character, a newline too. A newline is part of a word (the
// caller splits on it). A word with quotes counts even when empty.
func splitWords(command string) ([]string, error) {
	var words []string
	var word []byte
	state := byte(' ') // ' ' between words, 'a' in a word, 'c' in an operator, or the open quote
	quoted := false
	for index := 0; index < len(command); {
		char := command[index]
		index++
		if state == '\'' || state == '"' {
			switch {
			case char == state:
				state = 'a'
			case char == '\\' && state == '"':
				if index == len(command) {
					return nil, errors.New("No escaped character")
				}
				if next := command[index]; next != '\\' && next != '"' {
					word = append(word, char)
				}
				word = append(word, command[index])
				index++
			default:
				word = append(word, char)
			}
			continue
		}
		isPunctuation := strings.IndexByte(punctuation, char) >= 0
		isBlank := strings.IndexByte(blanks, char) >= 0
		if state == 'c' && isPunctuation {
			word = append(word, char)
			continue
		}
		if state != ' ' && (isBlank || isPunctuation || state == 'c') {
			words = append(words, string(word))
			word, state, quoted = word[:0], ' ', false
		}
		switch {
		case isBlank:
		case isPunctuation:
			word, state = append(word, char), 'c'
		case char == '\'' || char == '"':
			state, quoted = char, true
		case char == '\\':
			if index == len(command) {
				return nil, errors.New("No escaped character")
			}
			word, state = append(word, command[index]), 'a'
			index++
		default:
			word, state = append(word, char), 'a'
		}
	}
	if state == '\'' || state == '"' {
		return nil, errors.New("No closing quotation")
	}
	if state != ' ' && (len(word) > 0 || quoted) {
		words = append(words, string(word))
	}
	return words, nil
}

// splitNewlines returns the tokens with each newline (kept in words by the
// lexer) a separator of its own. A newline inside quotes is split on too:
// that only makes the check stricter.
func splitNewlines(words []string) []string {
	var tokens []string
	for _, token := range words {
		for index, part := range strings.Split(token, "\n") {
			if index > 0 {
				tokens = append(tokens, "\n")
			}
			if part != "" {
				tokens = append(tokens, part)
			}
		}
	}
	return tokens
}
