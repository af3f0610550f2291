package main

import (
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// The login node's allow-list (cluster/allowed-commands, the file the
// harness copies to /etc/testbuild-allowed-commands).
func loginNodeAllowed(t *testing.T) map[string]bool {
	t.Helper()
	allowed, err := readAllowed("../../../cluster/allowed-commands")
	if err != nil {
		t.Fatal(err)
	}
	return allowed
}

func TestAllowedCommandLines(t *testing.T) {
	allowed := loginNodeAllowed(t)
	for _, command := range []string{
		"ls -la /home/test1",
		"ID=af516f55 timeout 5 ls -l --quoting-style=c /home",
		"F7TID=abc timeout -s KILL 10 sha256sum -- '/home/test1/a b'",
		"SLURM_TIME_FORMAT=standard sacct --jobs=1 --format=jobid,state",
		"sbatch --chdir=/home/test1 -- /home/test1/job.sh",
		"cat /home/test1/res.txt 2>&1 | sha1sum",
		"mkdir -p /home/test1/a && cp a b",
		"echo '$(not a substitution)'",
		"curl -s -X PUT -T file 'http://minio:9000/bucket/key?X-Amz-Signature=abc&b=1'",
		// FirecREST v2's lines
		"SLURM_TIME_FORMAT='%s' squeue --noheader --format='%i|%T'",
		"base64 -d > '/home/test1/a b'",
		"cd /home/test1 && timeout 5 ls -l",
		"ls > /home/test1/out 2>&1 < /dev/null",
		"> /home/test1/empty ls",
		"timeout 5 dd if='/home/test1/f' bs=1048576 skip=2 count=1",
		"sacctmgr show user 'test1' format=defaultaccount -n",
		"sacctmgr show assoc user='test1' format=account -n",
		"srun --overlap --jobid=4 hostname",
		"find /home/test1 -name '*.txt' -exec sha1sum {} +",
		"timeout 5 bash -c \"cd /home/test1; timeout 5 find . -type f -regex '.*\\.txt'" +
			" -print0 | tar -czvf '/home/test1/o.tar.gz' --null --files-from - \"",
		"bash -c 'ls -l \"/home/test1/a b\"'",
		"bash -c \"bash -c 'id -un'\"",
		"echo ${HOME}",
		// reservations (rsvmgmt, run through sudo by the tool itself)
		"ID=abc timeout 30 rsvmgmt -a testbuild 1 part01 2030-01-01T10:00 2030-01-01T11:00 'r1'",
	} {
		if err := checkAllowed(command, allowed, 0); err != nil {
			t.Errorf("%q refused: %v", command, err)
		}
	}
}

func TestRefusedCommandLines(t *testing.T) {
	allowed := loginNodeAllowed(t)
	for _, test := range []struct{ command, reason string }{
		{"bash -i", "'bash' is not an allowed command"},
		{"ls; python3 -c 1", "'python3' is not an allowed command"},
		{"ls | sh", "'sh' is not an allowed command"},
		{"ls && vi x", "'vi' is not an allowed command"},
		{"timeout 5 bash", "'bash' is not an allowed command"},
		{"timeout -k 1 5 sh -c id", "'sh' is not an allowed command"},
		{"ID=x python3", "'python3' is not an allowed command"},
		{"echo $(id)", "command substitution ($() is not allowed"},
		{"echo \"`id`\"", "command substitution (`) is not allowed"},
		{"ls 'unterminated", "cannot be parsed"},
		{"ID=x", "no program in the command"},
		// process substitution runs a command of its own
		{"cat <(uname -a)", "process substitution (<() is not allowed"},
		{"ls > >(uname)", "process substitution (>() is not allowed"},
		// the line inside bash -c is checked as any line, at any depth
		{"bash -c \"uname\"", "'uname' is not an allowed command"},
		{"timeout 5 bash -c 'ls; uname'", "'uname' is not an allowed command"},
		{"bash -c \"ls && bash -c 'uname -a'\"", "'uname' is not an allowed command"},
		{"bash -c 'echo $(uname)'", "command substitution ($() is not allowed"},
		{"bash script.sh", "'bash' is not an allowed command"},
		{"bash -c ls extra", "'bash' is not an allowed command"},
		{"bash -c 'bash -c \"bash -c \\\"bash -c \\\\\\\"bash -c ls\\\\\\\"\\\"\"'", "nested too deeply"},
		// whatever bash would run, the check sees
		{"echo \"'\" $(uname) \"'\"", "command substitution ($() is not allowed"},
		{"ls\nuname", "'uname' is not an allowed command"},
		{"ls a#; uname", "'uname' is not an allowed command"},
		{"ls;(uname)", "'uname' is not an allowed command"},
		{"ls > out;uname", "'uname' is not an allowed command"},
		{"cd /tmp && uname", "'uname' is not an allowed command"},
		{"ls >", "a redirection without a target"},
		{"ls <<<< x", "unsupported operator '<<<<'"},
		// prefixes that make an allowed program run other code
		{"PATH=/home/test1/bin ls", "setting PATH is not allowed"},
		{"LD_PRELOAD=/home/test1/x.so timeout 5 ls", "setting LD_PRELOAD is not allowed"},
		{"ID=1 BASH_ENV=/home/test1/x ls", "setting BASH_ENV is not allowed"},
		// arithmetic runs the substitutions in a variable's value
		{"x='a[$(uname)]'; echo ${y:x}", "parameter expansions other than ${NAME}"},
		{"x=1; ls", "only assignments"},
		{"find . -exec uname \\;", "'uname' is not an allowed command"},
		{"find . -execdir bash -c uname {} +", "'uname' is not an allowed command"},
		{"find . -exec bash {} -c ls ;", "'bash' is not an allowed command"},
		{"find . -exec {} ;", "without a program"},
		// reservations: only through rsvmgmt, never sudo or its helper
		{"sudo /usr/local/sbin/rsvmgmt-priv -l", "'sudo' is not an allowed command"},
		{"/usr/local/sbin/rsvmgmt-priv -l", "'/usr/local/sbin/rsvmgmt-priv' is not an allowed command"},
	} {
		err := checkAllowed(test.command, allowed, 0)
		if _, isRefusal := err.(*refused); !isRefusal || !strings.Contains(err.Error(), test.reason) {
			t.Errorf("%q: %v, expected a refusal saying %q", test.command, err, test.reason)
		}
	}
}

func TestAllowListFileHasTheCommandsFirecrestNeeds(t *testing.T) {
	allowed := loginNodeAllowed(t)
	for _, program := range []string{
		"cat", "ls", "sbatch", "squeue", "sacct", "scancel", "curl", "rsync", "sha1sum",
		"dd", "find", "sacctmgr", "cd", // FirecREST v2
		"rsvmgmt",
	} {
		if !allowed[program] {
			t.Errorf("%s is not allowed", program)
		}
	}
	if allowed["bash"] || allowed["sh"] || allowed["sudo"] {
		t.Error("a shell or sudo is allowed")
	}
}

// The checks replaced regular expressions: they must decide as those did.
var (
	oldAssignment      = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)=`)
	oldUnsafeVariables = regexp.MustCompile(
		`^(PATH|ENV|BASH_ENV|SHELLOPTS|BASHOPTS|IFS|PS4|CDPATH|GLOBIGNORE|BASH_XTRACEFD` +
			`|GCONV_PATH|HOSTALIASES|LOCPATH|NLSPATH|TMPDIR|HOME|SHELL|EDITOR|VISUAL|PAGER` +
			`|TAR_OPTIONS|RSYNC_RSH|RSYNC_CONNECT_PROG|LD_.*|BASH_FUNC_.*|PYTHON.*|PERL.*` +
			`|RUBY.*|NODE_.*|GIT_.*|MALLOC_.*|SSH_.*)$`)
	oldSimpleParameter = regexp.MustCompile(`^\$\{[A-Za-z_][A-Za-z0-9_]*\}`)
	names              = []string{
		"A", "_", "a1", "ID", "F7TID", "1A", "A-B", "é", "Aé", "", "SLURM_TIME_FORMAT",
		"PATH", "PATHX", "XPATH", "LD_PRELOAD", "LD_", "LD", "PYTHON", "PYTHONPATH", "SSH_AUTH_SOCK",
		"SSH", "BASH_FUNC_f%%", "GIT_DIR", "NODE_OPTIONS", "MALLOC_CHECK_", "PERL5LIB", "RUBYOPT",
		"HOME", "HOMEDIR", "IFS", "PS4", "TMPDIR", "SHELLOPTS",
	}
)

func TestAssignmentsAreToldAndCheckedAsTheRegexesDid(t *testing.T) {
	for _, name := range names {
		line := name + "=x ls"
		commands, err := simpleCommands(line)
		switch {
		case !oldAssignment.MatchString(name + "=x"):
			if err != nil || !reflect.DeepEqual(commands, [][]string{{name + "=x", "ls"}}) {
				t.Errorf("%q: %q, %v", line, commands, err)
			}
		case oldUnsafeVariables.MatchString(name):
			if err == nil || err.Error() != "setting "+name+" is not allowed" {
				t.Errorf("%q: %q, %v", line, commands, err)
			}
		default:
			if err != nil || !reflect.DeepEqual(commands, [][]string{{"ls"}}) {
				t.Errorf("%q: %q, %v", line, commands, err)
			}
		}
	}
}

func TestParameterExpansionsAreToldAsTheRegexDid(t *testing.T) {
	for _, name := range append(names, "A}", "A:-x", "#A", "A[1]", "!A") {
		for _, line := range []string{
			"echo ${" + name + "}", "echo ${" + name, "echo ${" + name + "} ${A:x}",
		} {
			refused := scan(line) != nil
			simple := true
			for _, start := range regexp.MustCompile(`\$\{`).FindAllStringIndex(line, -1) {
				simple = simple && oldSimpleParameter.MatchString(line[start[0]:])
			}
			if refused != !simple {
				t.Errorf("%q: refused %v, the regex %v", line, refused, !simple)
			}
		}
	}
}
