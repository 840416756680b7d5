"""A small shell for ``kubectl exec`` and the flagger-loadtester's webhooks.

The labs run a handful of commands inside containers: ``curl`` (Flagger's
acceptance test ``curl -sd 'test' http://podinfo-canary:9898/token | grep
token``), ``hey`` (the load-test webhook), ``watch -n 1 curl …/status/500``
(Lab 3's faulty-version drill), exec probes (``podcli check http …``,
``wget --spider …``), and plain ``sh -c '…'`` pipelines.  This module runs
exactly that subset on the virtual clock, with pipes, ``&&``/``||``/``;``,
quoting, ``$VAR`` expansion and the common redirections.

What runs long never blocks the caller: ``hey`` and ``watch`` become
background :class:`Job`s scheduled on the container's client context.
Loops (``while``/``for``) and command substitution are refused with a clear
message rather than run wrongly.

Exit codes follow the real tools (curl 6/7/22/28, grep 0/1/2, 127 for a
missing command) because the loadtester's ``bash`` webhooks and exec probes
turn them into success or failure.
"""
from __future__ import annotations

import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field

from .base import LOCAL_HOSTS, go_duration, split_target
from .model import Request, Response, call, transport_error

WATCH_MAX_S = 600.0
"""``watch`` repeats for at most 10 virtual minutes (or until stopped with
``pkill watch`` / ``kill <pid>`` in the same container, or ``App.stop()``)."""

HTTP_REASONS = {
    200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 301: "Moved Permanently",
    302: "Found", 303: "See Other", 304: "Not Modified", 400: "Bad Request", 401: "Unauthorized",
    403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
    415: "Unsupported Media Type", 422: "Unprocessable Entity", 429: "Too Many Requests",
    500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Gateway Timeout",
}


class ShellError(Exception):
    """A script the shell cannot parse or will not run."""


# -- background jobs ---------------------------------------------------------------

class Job:
    """A background activity of one container, visible to ``ps`` and ``kill``."""

    def __init__(self, app, command: str):
        self.app = app
        self.command = command
        self.done = False
        self._callbacks: list = []
        app._next_pid = getattr(app, "_next_pid", 40) + 1
        self.pid = app._next_pid
        app.jobs.append(self)

    def on_done(self, fn) -> None:
        if self.done:
            fn()
        else:
            self._callbacks.append(fn)

    def stop(self) -> None:
        self.finish()

    def finish(self) -> None:
        if self.done:
            return
        self.done = True
        if self in self.app.jobs:
            self.app.jobs.remove(self)
        callbacks, self._callbacks = self._callbacks, []
        for fn in callbacks:
            fn()


def clock_ctx(app, ctx):
    """The context that can schedule: the caller's if it can, else the one the
    container got at start()."""
    if hasattr(ctx, "schedule"):
        return ctx
    return app.bg


# -- requests -----------------------------------------------------------------------

def do_request(app, ctx, url: str, method: str = "GET", headers: dict | None = None,
               body=None) -> tuple[Response, str, str]:
    """One HTTP request from inside ``app``'s container; returns (response, target, path).

    ``localhost`` goes straight to the container's own server (loopback never
    crosses the proxy), everything else through the mesh via ``ctx.call``.
    """
    target, path, _ = split_target(url)
    host, _, port = target.rpartition(":")
    nbytes = len(body.encode() if isinstance(body, str) else body) if isinstance(body, (str, bytes)) else 0
    if host in LOCAL_HOSTS:
        if int(port) not in app.ports:
            return Response(0, 0.1, error="connection refused"), target, path
        hdrs = dict(headers or {})
        req = Request(method, path, target, headers=hdrs or None, body_bytes=nbytes, body=body)
        return app.handle(req, ctx), target, path
    return call(ctx, target, method, path, headers=headers, body=body, body_bytes=nbytes), target, path


def body_text(body) -> str:
    if body is None:
        return ""
    if isinstance(body, str):
        return body
    if isinstance(body, bytes):
        return body.decode("utf-8", "replace")
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


transport_failure = transport_error


# -- tokenizer and parser ---------------------------------------------------------------

_UNSUPPORTED_WORDS = {"while": "loops", "for": "loops", "until": "loops", "if": "conditionals",
                      "case": "conditionals", "function": "functions", "select": "loops"}


def _dollar(s: str, i: int):
    """The ``$…`` starting at ``s[i]`` → (fragment, next index).  Variables stay
    unexpanded fragments ``("$", name, default)`` until the command runs, so
    ``false; echo $?`` and ``export A=1; echo $A`` see the values of the moment."""
    n = len(s)
    if i + 1 >= n:
        return "$", i + 1
    c = s[i + 1]
    if c == "(":
        raise ShellError("command substitution $(…) is not modelled by the embedded mesh")
    if c == "{":
        j = s.find("}", i + 2)
        if j < 0:
            raise ShellError("syntax error: bad substitution")
        name = s[i + 2:j]
        default = None
        if ":-" in name:
            name, default = name.split(":-", 1)
        return ("$", name, default), j + 1
    if c == "?":
        return ("$", "?", None), i + 2
    m = re.match(r"[A-Za-z_][A-Za-z0-9_]*", s[i + 1:])
    if not m:
        return "$", i + 1
    return ("$", m.group(0), None), i + 1 + m.end()


def expand_word(word, env: dict, last: int = 0) -> str:
    """A word's text with its ``$VAR`` fragments replaced (unset → "")."""
    if isinstance(word, str):
        return word
    out = []
    for frag in word:
        if isinstance(frag, str):
            out.append(frag)
        else:
            _, name, default = frag
            val = str(last) if name == "?" else env.get(name, "")
            out.append(val if val or default is None else default)
    return "".join(out)


def words(script: str, env: dict) -> list[str]:
    """The expanded words of a simple command line (operators dropped)."""
    return [expand_word(w, env) for k, w in tokenize(script) if k == "w"]


def tokenize(s: str) -> list[tuple[str, object]]:
    """Words ("w", tuple of fragments) and operators ("op", text) of a POSIX-ish command line."""
    toks: list[tuple[str, object]] = []
    word: list = []
    in_word = quoted = False
    i, n = 0, len(s)

    def flush():
        nonlocal in_word, quoted
        if in_word:
            toks.append(("w", tuple(word)))
        word.clear()
        in_word = quoted = False

    while i < n:
        c = s[i]
        if c in " \t\r":
            flush()
            i += 1
        elif c == "\n":
            flush()
            toks.append(("op", ";"))
            i += 1
        elif c == "#" and not in_word:
            j = s.find("\n", i)
            i = n if j < 0 else j
        elif c == "'":
            j = s.find("'", i + 1)
            if j < 0:
                raise ShellError("syntax error: unterminated quoted string")
            word.append(s[i + 1:j])
            in_word = quoted = True
            i = j + 1
        elif c == '"':
            i += 1
            while True:
                if i >= n:
                    raise ShellError("syntax error: unterminated quoted string")
                d = s[i]
                if d == '"':
                    i += 1
                    break
                if d == "\\" and i + 1 < n and s[i + 1] in '"\\$`':
                    word.append(s[i + 1])
                    i += 2
                elif d == "$":
                    frag, i = _dollar(s, i)
                    word.append(frag)
                elif d == "`":
                    raise ShellError("command substitution `…` is not modelled by the embedded mesh")
                else:
                    word.append(d)
                    i += 1
            in_word = quoted = True
        elif c == "\\":
            if i + 1 < n and s[i + 1] != "\n":
                word.append(s[i + 1])
                in_word = True
            i += 2
        elif c == "$":
            frag, i = _dollar(s, i)
            word.append(frag)
            in_word = True
        elif c == "`":
            raise ShellError("command substitution `…` is not modelled by the embedded mesh")
        elif c in "|&;<>":
            fd = None
            if c == ">" and in_word and not quoted and word in (["1"], ["2"]):
                fd = word[0]
                word.clear()
                in_word = False
            flush()
            two = s[i:i + 2]
            if c == ">":
                if s[i:i + 3] in (">&1", ">&2"):
                    to_fd = s[i + 2]
                    i += 3
                    if fd == "2" and to_fd == "1":
                        toks.append(("op", "2>&1"))
                    elif fd != "2" and to_fd == "2":
                        toks.append(("op", ">&2"))
                    continue                      # 1>&1, 2>&2: no-ops
                op = ">>" if two == ">>" else ">"
                i += len(op)
                toks.append(("op", ("2" + op) if fd == "2" else op))
                continue
            if two in ("||", "&&", ";;"):
                toks.append(("op", two))
                i += 2
            elif two == "&>":
                toks.append(("op", "&>"))
                i += 2
            else:
                toks.append(("op", c))
                i += 1
        else:
            word.append(c)
            in_word = True
            i += 1
    flush()
    return toks


@dataclass
class Cmd:
    argv: list                                    # words (fragment tuples), expanded when run
    redirs: list[tuple[str, object]] = field(default_factory=list)


def parse(tokens: list[tuple[str, str]]) -> list[tuple[str | None, list[Cmd], bool]]:
    """→ [(connector before it: None | "&&" | "||", pipeline, runs in background)]."""
    items: list[tuple[str | None, list[Cmd], bool]] = []
    connector: str | None = None
    pipeline: list[Cmd] = []
    cur = Cmd([])
    i = 0
    while i < len(tokens):
        kind, v = tokens[i]
        if kind == "w":
            cur.argv.append(v)
        elif v in (">", ">>", "<", "2>", "2>>", "&>"):
            if i + 1 >= len(tokens) or tokens[i + 1][0] != "w":
                raise ShellError(f"syntax error: unexpected redirection `{v}'")
            cur.redirs.append((v, tokens[i + 1][1]))
            i += 1
        elif v in ("2>&1", ">&2"):
            cur.redirs.append((v, None))
        elif v == "|":
            if not cur.argv:
                raise ShellError("syntax error: unexpected \"|\"")
            pipeline.append(cur)
            cur = Cmd([])
        elif v in (";", "&", "&&", "||", ";;"):
            if cur.argv or cur.redirs:
                pipeline.append(cur)
                cur = Cmd([])
            if not pipeline:
                if v == ";" and connector is None:
                    i += 1
                    continue
                raise ShellError(f"syntax error: unexpected \"{v}\"")
            items.append((connector, pipeline, v == "&"))
            pipeline = []
            connector = v if v in ("&&", "||") else None
        i += 1
    if cur.argv or cur.redirs:
        pipeline.append(cur)
    if pipeline:
        items.append((connector, pipeline, False))
    elif connector is not None:
        raise ShellError("syntax error: unexpected end of file")
    return items


# -- the shell ------------------------------------------------------------------------------

class Shell:
    """Runs commands inside one container.

    ``background=True`` (webhook tasks, ``watch`` iterations, ``cmd &``) means
    nothing may block: ``hey`` starts its load and returns at once, ``sleep``
    is a no-op.  ``elapsed_s`` sums the latency of the requests made, so a
    caller can tell how long the commands took on the virtual clock.
    """

    def __init__(self, app, ctx, *, background: bool = False):
        self.app = app
        self.ctx = ctx
        self.background = background
        self.env = dict(app.env)
        self.last = 0
        self.elapsed_s = 0.0
        self.started: list[Job] = []

    # -- entry points --------------------------------------------------------------
    def run_script(self, script: str, stdin: str = "") -> tuple[str, int]:
        try:
            items = parse(tokenize(script))
        except ShellError as e:
            return f"sh: {e}\n", 2
        out: list[str] = []
        code = 0
        for connector, pipeline, bg in items:
            if connector == "&&" and code != 0:
                continue
            if connector == "||" and code == 0:
                continue
            if bg and not self.background:
                self.background = True
                try:
                    text, _ = self.run_pipeline(pipeline, stdin)
                finally:
                    self.background = False
                out.append(text)
                code = 0
            else:
                text, code = self.run_pipeline(pipeline, stdin)
                out.append(text)
            self.last = code
            if code >= 1000:          # `exit N`
                code -= 1000
                break
        return "".join(out), code

    def run_pipeline(self, pipeline: list[Cmd], stdin: str) -> tuple[str, int]:
        errs: list[str] = []
        data = stdin
        code = 0
        for cmd in pipeline:
            out, err, code = self.run_cmd(cmd, data)
            data = out
            if err:
                errs.append(err)
        return "".join(errs) + data, code

    def run_cmd(self, cmd: Cmd, stdin: str) -> tuple[str, str, int]:
        argv = [expand_word(w, self.env, self.last) for w in cmd.argv]
        redirs = [(op, None if t is None else expand_word(t, self.env, self.last)) for op, t in cmd.redirs]
        for op, target in redirs:
            if op == "<":
                if target == "/dev/null":
                    stdin = ""
                elif target in self.app.files:
                    stdin = self.app.files[target]
                else:
                    return "", f"sh: can't open '{target}': No such file or directory\n", 1
        local_env: dict[str, str] = {}
        while argv and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", argv[0], re.S):
            k, v = argv.pop(0).split("=", 1)
            local_env[k] = v
        if not argv:
            self.env.update(local_env)
            return "", "", 0
        saved = dict(self.env)
        self.env.update(local_env)
        try:
            out, err, code = self.run_argv(argv, stdin)
        finally:
            self.env = saved
        for op, target in redirs:
            if op == "2>&1":
                out, err = err + out, ""
            elif op == ">&2":
                out, err = "", err + out
            elif op in (">", ">>", "&>"):
                text = out + (err if op == "&>" else "")
                if op == "&>":
                    err = ""
                if target != "/dev/null":
                    prev = self.app.files.get(target, "") if op == ">>" else ""
                    self.app.files[target] = prev + text
                out = ""
            elif op in ("2>", "2>>"):
                if target != "/dev/null":
                    self.app.files[target] = (self.app.files.get(target, "") if op == "2>>" else "") + err
                err = ""
        return out, err, code

    def run_argv(self, argv: list[str], stdin: str = "") -> tuple[str, str, int]:
        name = argv[0]
        base = name.rsplit("/", 1)[-1]
        if base in _UNSUPPORTED_WORDS:
            return "", (f"sh: {_UNSUPPORTED_WORDS[base]} (`{base}`) are not modelled by the embedded "
                        f"mesh; to repeat a command use `watch -n 1 <command>`\n"), 2
        builtin = BUILTINS.get(base)
        if builtin is not None:
            return builtin(self, argv, stdin)
        if base in ("sh", "bash", "ash") and base in self.app.tools:
            return self._sh(argv, stdin)
        if base not in self.app.tools or base not in COMMANDS:
            return "", f"sh: {name}: not found\n", 127
        try:
            return COMMANDS[base](self, argv, stdin)
        except UsageError as e:
            return "", str(e), e.code

    def _sh(self, argv: list[str], stdin: str) -> tuple[str, str, int]:
        args = argv[1:]
        while args and args[0].startswith("-") and args[0] != "-c":
            args = args[1:]                      # -e, -x, -l …: accepted and ignored
        if args and args[0] == "-c":
            if len(args) < 2:
                return "", f"{argv[0]}: -c requires an argument\n", 2
            out, code = self.run_script(args[1], stdin)
            return out, "", code
        if args and args[0] in self.app.files:
            out, code = self.run_script(self.app.files[args[0]], stdin)
            return out, "", code
        if args:
            return "", f"{argv[0]}: can't open '{args[0]}': No such file or directory\n", 2
        out, code = self.run_script(stdin) if stdin else ("", 0)
        return out, "", code

    # -- helpers for commands --------------------------------------------------------
    def request(self, url: str, method: str = "GET", headers: dict | None = None, body=None):
        resp, target, path = do_request(self.app, self.ctx, url, method, headers, body)
        self.elapsed_s += max(resp.latency_ms, 0.0) / 1000.0
        return resp, target, path

    def now(self) -> float:
        return float(getattr(self.ctx, "now", 0.0))

    def blocking_wait(self, seconds: float) -> bool:
        """Advance the virtual clock by ``seconds`` when the context allows it
        (an optional ``ctx.run_for(seconds)``); returns whether it did."""
        run_for = getattr(self.ctx, "run_for", None)
        if self.background or run_for is None:
            return False
        run_for(seconds)
        return True


class UsageError(Exception):
    def __init__(self, text: str, code: int = 2):
        super().__init__(text if text.endswith("\n") else text + "\n")
        self.code = code


def run_argv(app, argv: list[str], ctx) -> tuple[str, int]:
    """``kubectl exec <pod> -- argv…``: combined output and exit code."""
    if not argv:
        return "error: you must specify at least one command for the container\n", 1
    if not ({"sh", "ash", "bash"} & app.tools):
        name = argv[0]
        if name.rsplit("/", 1)[-1] not in app.tools:
            return ("OCI runtime exec failed: exec failed: unable to start container process: "
                    f'exec: "{name}": executable file not found in $PATH: unknown\n'), 126
    sh = Shell(app, ctx)
    out, err, code = sh.run_argv(argv)
    return err + out, code


def run_script(app, script: str, ctx, *, background: bool = False) -> tuple[str, int, Shell]:
    """Run ``sh -c script`` in ``app``; returns (output, exit code, the shell)."""
    sh = Shell(app, ctx, background=background)
    out, code = sh.run_script(script)
    return out, code, sh


# -- builtins ----------------------------------------------------------------------------------

def _echo(sh: Shell, argv, stdin):
    args = argv[1:]
    newline = True
    while args and args[0] in ("-n", "-e", "-E", "-ne", "-en"):
        if "n" in args[0]:
            newline = False
        args = args[1:]
    return " ".join(args) + ("\n" if newline else ""), "", 0


def _printf(sh: Shell, argv, stdin):
    if len(argv) < 2:
        return "", "printf: usage: printf format [arguments]\n", 2
    fmt = argv[1].replace("\\n", "\n").replace("\\t", "\t")
    args = argv[2:]
    parts = re.split(r"(%[sd%])", fmt)
    out, k = [], 0
    for p in parts:
        if p in ("%s", "%d"):
            out.append(args[k] if k < len(args) else "")
            k += 1
        elif p == "%%":
            out.append("%")
        else:
            out.append(p)
    return "".join(out), "", 0


def _true(sh, argv, stdin):
    return "", "", 0


def _false(sh, argv, stdin):
    return "", "", 1


def _exit(sh, argv, stdin):
    try:
        code = int(argv[1]) if len(argv) > 1 else sh.last
    except ValueError:
        return "", f"sh: exit: Illegal number: {argv[1]}\n", 2
    return "", "", 1000 + (code & 255)


def _export(sh: Shell, argv, stdin):
    for a in argv[1:]:
        if "=" in a:
            k, v = a.split("=", 1)
            sh.env[k] = v
    return "", "", 0


def _sleep(sh: Shell, argv, stdin):
    """``sleep`` advances the virtual clock only when the caller's context
    offers ``run_for``; otherwise it returns at once (nothing else would run
    while a synchronous exec waits)."""
    total = 0.0
    for a in argv[1:]:
        m = re.fullmatch(r"(\d+(?:\.\d*)?)([smhd]?)", a)
        if not m:
            return "", f"sleep: invalid number '{a}'\n", 1
        total += float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    sh.blocking_wait(total)
    return "", "", 0


def _kill(sh: Shell, argv, stdin):
    """``kill PID``/``kill %N``, ``pkill [-f] NAME``, ``killall NAME``: stop this
    container's background jobs (``watch``, ``hey``)."""
    name = argv[0].rsplit("/", 1)[-1]
    args = [a for a in argv[1:] if not re.fullmatch(r"-(\d+|[A-Z]+|SIG[A-Z]+|s)", a)]
    full = "-f" in args
    args = [a for a in args if a != "-f"]
    if not args:
        return "", f"{name}: usage: {name} {'PID' if name == 'kill' else 'NAME'}\n", 2
    hit = False
    for a in args:
        for job in list(sh.app.jobs):
            if name == "kill":
                ok = a.lstrip("%").isdigit() and (int(a.lstrip("%")) == job.pid or
                                                  (a.startswith("%") and sh.app.jobs.index(job) + 1 == int(a[1:])))
            else:
                words = job.command.split()
                ok = (a in job.command) if full else bool(words) and words[0].rsplit("/", 1)[-1] == a
            if ok:
                job.stop()
                hit = True
    if not hit:
        if name == "kill":
            return "", f"sh: kill: can't kill pid {args[0]}: No such process\n", 1
        return "", "", 1
    return "", "", 0


def _ps(sh: Shell, argv, stdin):
    main = " ".join(getattr(sh.app, "argv", []) or [sh.app.name])
    lines = ["PID   USER     TIME  COMMAND", f"    1 root      0:00 {main}"]
    for job in sh.app.jobs:
        lines.append(f"{job.pid:5d} root      0:00 {job.command}")
    return "\n".join(lines) + "\n", "", 0


BUILTINS = {"echo": _echo, "printf": _printf, "true": _true, ":": _true, "false": _false,
            "exit": _exit, "export": _export, "cd": _true, "set": _true, "sleep": _sleep,
            "kill": _kill, "pkill": _kill, "killall": _kill, "ps": _ps, "jobs": _ps}


# -- curl ---------------------------------------------------------------------------------------

_CURL_VALUE_SHORT = set("dXHowmAuFebcxTrKEyYzCQ")
_CURL_LONG_VALUE = {"--data": "d", "--data-raw": "d", "--data-binary": "d", "--data-ascii": "d",
                    "--data-urlencode": "d", "--request": "X", "--header": "H", "--output": "o",
                    "--write-out": "w", "--max-time": "m", "--user-agent": "A", "--user": "u",
                    "--form": "F", "--connect-timeout": "connect-timeout", "--retry": "retry",
                    "--retry-delay": "retry-delay", "--json": "json", "--url": "url",
                    "--resolve": "resolve", "--cookie": "b", "--referer": "e", "--proxy": "x"}
_CURL_LONG_FLAG = {"--silent": "s", "--show-error": "S", "--fail": "f", "--fail-with-body": "f",
                   "--location": "L", "--include": "i", "--head": "I", "--verbose": "v",
                   "--insecure": "k", "--get": "G", "--compressed": "", "--no-buffer": "N",
                   "--http2": "", "--http1.1": "", "--http2-prior-knowledge": "", "--raw": ""}


def _curl_args(argv: list[str]):
    opts: dict[str, list[str]] = {}
    flags: set[str] = set()
    urls: list[str] = []
    i = 1
    while i < len(argv):
        a = argv[i]
        if a.startswith("--"):
            name, eq, val = a.partition("=")
            if name in _CURL_LONG_VALUE:
                if not eq:
                    i += 1
                    if i >= len(argv):
                        raise UsageError(f"curl: option {name}: requires parameter\n"
                                         "curl: try 'curl --help' for more information", 2)
                    val = argv[i]
                key = _CURL_LONG_VALUE[name]
                if key == "url":
                    urls.append(val)
                else:
                    opts.setdefault(key, []).append(val)
            elif name in _CURL_LONG_FLAG:
                if _CURL_LONG_FLAG[name]:
                    flags.add(_CURL_LONG_FLAG[name])
            else:
                raise UsageError(f"curl: option {name}: is unknown\ncurl: try 'curl --help' for more information", 2)
        elif a.startswith("-") and len(a) > 1:
            j = 1
            while j < len(a):
                c = a[j]
                if c in _CURL_VALUE_SHORT:
                    val = a[j + 1:]
                    if not val:
                        i += 1
                        if i >= len(argv):
                            raise UsageError(f"curl: option -{c}: requires parameter\n"
                                             "curl: try 'curl --help' for more information", 2)
                        val = argv[i]
                    opts.setdefault(c, []).append(val)
                    break
                flags.add(c)
                j += 1
        else:
            urls.append(a)
        i += 1
    return opts, flags, urls


def _write_out(fmt: str, resp: Response, url: str, size: int) -> str:
    total = resp.latency_ms / 1000.0
    vals = {"http_code": f"{resp.status:03d}" if resp.status >= 100 else "000",
            "response_code": f"{resp.status:03d}" if resp.status >= 100 else "000",
            "time_total": f"{total:.6f}", "time_starttransfer": f"{total:.6f}",
            "time_connect": "0.000300", "size_download": str(size), "url_effective": url,
            "num_redirects": "0", "method": ""}
    out = re.sub(r"%\{([a-z_]+)\}", lambda m: vals.get(m.group(1), ""), fmt)
    return out.replace("\\n", "\n").replace("\\t", "\t").replace("\\r", "\r")


def _curl(sh: Shell, argv, stdin):
    """curl's behaviour that scripts depend on: output, ``-f``/``-s``/``-S``,
    ``-d`` (POST), ``-X``, ``-H``, ``-I``/``-i``, ``-o``, ``-w``, ``-m`` and its
    exit codes (6 unresolved, 7 refused, 18 body cut short, 22 HTTP error with -f, 28 timeout)."""
    opts, flags, urls = _curl_args(argv)
    if not urls:
        return "", "curl: no URL specified!\ncurl: try 'curl --help' or 'curl --manual' for more information\n", 2
    silent = "s" in flags
    show_err = "S" in flags or not silent
    data = opts.get("d") or opts.get("F") or opts.get("json")
    body = "&".join(data) if data else None
    if body is not None and body.startswith("@"):
        fname = body[1:]
        body = stdin if fname == "-" else sh.app.files.get(fname, "")
    headers: dict[str, str] = {}
    for h in opts.get("H", []):
        k, _, v = h.partition(":")
        headers[k.strip()] = v.strip()
    if "json" in opts:
        headers.setdefault("Content-Type", "application/json")
    if "A" in opts:
        headers["User-Agent"] = opts["A"][-1]
    headers.setdefault("User-Agent", "curl/8.5.0")
    method = opts["X"][-1] if "X" in opts else ("HEAD" if "I" in flags else ("POST" if body is not None else "GET"))
    if "G" in flags and body is not None:
        urls = [u + ("&" if "?" in u else "?") + body for u in urls]
        body = None
        method = opts["X"][-1] if "X" in opts else "GET"
    max_time = float(opts["m"][-1]) if "m" in opts else None
    outs: list[str] = []
    errs: list[str] = []
    code = 0
    for url in urls:
        if "://" not in url:
            url = "http://" + url
        resp, target, path = sh.request(url, method, headers, body)
        host, _, port = target.rpartition(":")
        fail = transport_failure(resp)
        if max_time is not None and resp.latency_ms > max_time * 1000:
            code = 28
            if show_err:
                errs.append(f"curl: (28) Operation timed out after {int(max_time * 1000)} milliseconds "
                            "with 0 bytes received\n")
            continue
        if fail is not None:
            if "incomplete body" in fail:
                # the headers came (-w '%{http_code}' prints them), the body stopped short
                code, msg = 18, "transfer closed with outstanding read data remaining"
                if show_err:
                    errs.append(f"curl: ({code}) {msg}\n")
                if "w" in opts:
                    outs.append(_write_out(opts["w"][-1], resp, url, 0))
                continue
            if "resolve" in fail or "no such host" in fail:
                code, msg = 6, f"Could not resolve host: {host}"
            elif "timeout" in fail or "timed out" in fail:
                code, msg = 28, f"Operation timed out after {int(resp.latency_ms)} milliseconds with 0 bytes received"
            elif "reset" in fail:
                code, msg = 56, "Recv failure: Connection reset by peer"
            else:
                code, msg = 7, (f"Failed to connect to {host} port {port} after "
                                f"{max(1, int(resp.latency_ms))} ms: Connection refused")
            if show_err:
                errs.append(f"curl: ({code}) {msg}\n")
            if "w" in opts:
                outs.append(_write_out(opts["w"][-1], Response(0, resp.latency_ms), url, 0))
            continue
        text = body_text(resp.body) if method != "HEAD" else ""
        if "f" in flags and resp.status >= 400:
            code = 22
            if show_err:
                errs.append(f"curl: (22) The requested URL returned error: {resp.status}\n")
            if "w" in opts:
                outs.append(_write_out(opts["w"][-1], resp, url, 0))
            continue
        head = ""
        if "i" in flags or "I" in flags:
            head = f"HTTP/1.1 {resp.status} {HTTP_REASONS.get(resp.status, '')}".rstrip() + "\r\n"
            for k, v in (resp.headers or {}).items():
                head += f"{k}: {v}\r\n"
            head += f"content-length: {resp.length if resp.length else len(text.encode())}\r\n\r\n"
        piece = head + text
        if "o" in opts:
            dest = opts["o"][-1]
            if dest not in ("/dev/null", "-"):
                sh.app.files[dest] = piece
            if dest != "-":
                piece = ""
        outs.append(piece)
        if "w" in opts:
            outs.append(_write_out(opts["w"][-1], resp, url, resp.length or len(text.encode())))
    return "".join(outs), "".join(errs), code


# -- wget (busybox) and podcli ---------------------------------------------------------------

def _wget(sh: Shell, argv, stdin):
    quiet = spider = False
    out_file = None
    headers: dict[str, str] = {}
    post = None
    urls = []
    i = 1
    while i < len(argv):
        a = argv[i]
        if a in ("-q", "--quiet"):
            quiet = True
        elif a == "--spider":
            spider = True
        elif a in ("-qO-", "-qO", "-O-"):
            quiet = quiet or a.startswith("-q")
            out_file = "-" if a.endswith("-") else None
            if a == "-qO":
                i += 1
                out_file = argv[i] if i < len(argv) else "-"
        elif a in ("-O", "--output-document"):
            i += 1
            out_file = argv[i] if i < len(argv) else "-"
        elif a.startswith("-O") or a.startswith("--output-document="):
            out_file = a.split("=", 1)[1] if "=" in a else a[2:]
        elif a in ("-T", "--timeout", "-t", "--tries", "-U", "--user-agent", "-Y"):
            i += 1
        elif a.startswith(("--timeout=", "--tries=", "--user-agent=", "-T", "-t")) and not a.startswith("-t-"):
            pass
        elif a.startswith("--header="):
            k, _, v = a.split("=", 1)[1].partition(":")
            headers[k.strip()] = v.strip()
        elif a.startswith("--post-data="):
            post = a.split("=", 1)[1]
        elif a in ("-S", "--server-response", "-s", "--no-check-certificate"):
            pass
        elif a.startswith("-"):
            return "", f"wget: unrecognized option '{a}'\n", 1
        else:
            urls.append(a)
        i += 1
    if not urls:
        return "", "BusyBox v1.36.1 multi-call binary.\n\nUsage: wget [-cqS] [--spider] [-O FILE] URL...\n", 1
    out, err = [], []
    for url in urls:
        if "://" not in url:
            url = "http://" + url
        method = "HEAD" if spider else ("POST" if post is not None else "GET")
        resp, target, path = sh.request(url, method, headers, post)
        host = target.rpartition(":")[0]
        if not quiet:
            err.append(f"Connecting to {target} ({target})\n")
        fail = transport_failure(resp)
        if fail is not None:
            what = "bad address" if ("resolve" in fail or "no such host" in fail) else "Connection refused"
            err.append(f"wget: can't connect to remote host: {what}\n" if what != "bad address"
                       else f"wget: bad address '{host}'\n")
            return "".join(out), "".join(err), 1
        if resp.status >= 400:
            err.append(f"wget: server returned error: HTTP/1.1 {resp.status} {HTTP_REASONS.get(resp.status, '')}\n")
            return "".join(out), "".join(err), 1
        if spider:
            if not quiet:
                err.append("remote file exists\n")
            continue
        text = body_text(resp.body)
        dest = out_file or (path.split("?")[0].rstrip("/").rsplit("/", 1)[-1] or "index.html")
        if dest == "-":
            out.append(text)
        else:
            sh.app.files[dest] = text
            if not quiet:
                err.append(f"saving to '{dest}'\n'{dest}' saved\n")
    return "".join(out), "".join(err), 0


def _podcli(sh: Shell, argv, stdin):
    """podinfo's ``podcli check http <addr>`` (its exec probes): exit 0 on 2xx."""
    args = [a for a in argv[1:] if not a.startswith("--")]
    if len(args) < 3 or args[0] != "check":
        return "", "Usage:\n  podcli check [command]\n", 1
    kind, addr = args[1], args[2]
    if kind not in ("http", "tcp", "grpc"):
        return "", f'Error: unknown command "{kind}" for "podcli check"\n', 1
    url = addr if "://" in addr else "http://" + addr
    resp, target, path = sh.request(url, "GET")
    ts = sh.now()
    if transport_failure(resp) is None and 200 <= resp.status < 300:
        return json.dumps({"level": "info", "ts": ts, "msg": "check succeed", "address": url}) + "\n", "", 0
    status = resp.status if resp.status >= 100 else "connection refused"
    return "", json.dumps({"level": "info", "ts": ts, "msg": "check failed", "address": url,
                           "status": status}) + "\n", 1


# -- text tools ----------------------------------------------------------------------------------

_POSIX_CLASSES = {"[:digit:]": "0-9", "[:alpha:]": "a-zA-Z", "[:alnum:]": "a-zA-Z0-9",
                  "[:space:]": r"\s", "[:upper:]": "A-Z", "[:lower:]": "a-z", "[:xdigit:]": "0-9A-Fa-f",
                  "[:punct:]": r"!-/:-@\[-`{-~"}


def posix_regex(pattern: str, extended: bool) -> str:
    """A POSIX basic/extended regular expression in Python's syntax."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "[":
            j = i + 1
            if j < n and pattern[j] == "^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                if pattern[j] == "[" and j + 1 < n and pattern[j + 1] == ":":
                    k = pattern.find(":]", j + 2)
                    j = k + 2 if k >= 0 else j + 1
                else:
                    j += 1
            body = pattern[i + 1:j]
            for cls, rep in _POSIX_CLASSES.items():
                body = body.replace(cls, rep)
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = j + 1
        elif c == "\\" and i + 1 < n:
            d = pattern[i + 1]
            if not extended and d in "+?|(){}":
                out.append(d)
            else:
                out.append("\\" + d)
            i += 2
        elif not extended and c in "+?|(){}":
            out.append("\\" + c)
            i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _grep(sh: Shell, argv, stdin):
    name = argv[0].rsplit("/", 1)[-1]
    #: busybox grep's switches this shell honours (``-s``, ``-h``, ``-H`` are accepted and change nothing here).
    flags = {"q": "quiet", "s": None, "i": "ignore", "v": "invert", "c": "count", "E": "extended",
             "F": "fixed", "o": "only", "w": "words", "x": "whole", "n": "number", "h": None, "H": None}
    opt = {attr: False for attr in flags.values() if attr}
    opt["extended"] = name == "egrep"
    patterns: list[str] = []
    files: list[str] = []
    args = argv[1:]
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            files.extend(args[i + 1:])
            break
        if a.startswith("--"):
            long = {"--quiet": "q", "--silent": "q", "--ignore-case": "i", "--invert-match": "v",
                    "--count": "c", "--extended-regexp": "E", "--fixed-strings": "F", "--only-matching": "o",
                    "--word-regexp": "w", "--line-regexp": "x", "--line-number": "n"}.get(a)
            if long is None:
                if a.startswith("--regexp="):
                    patterns.append(a.split("=", 1)[1])
                    i += 1
                    continue
                return "", f"grep: unrecognized option: {a}\n", 2
            a = "-" + long
        if a.startswith("-") and len(a) > 1:
            for j, c in enumerate(a[1:], 1):
                if c == "e":
                    rest = a[j + 1:]
                    if not rest:
                        i += 1
                        rest = args[i] if i < len(args) else ""
                    patterns.append(rest)
                    break
                if c not in flags:
                    return "", f"grep: unrecognized option: {c}\n", 2
                if flags[c]:
                    opt[flags[c]] = True
        elif not patterns:
            patterns.append(a)
        else:
            files.append(a)
        i += 1
    if not patterns:
        return "", "Usage: grep [-HhnlLoqvsrRiwFE] { PATTERN | -e PATTERN... } [FILE]...\n", 2
    try:
        parts = [re.escape(p) if opt["fixed"] else posix_regex(p, opt["extended"]) for p in patterns]
        rx = "|".join(f"(?:{p})" for p in parts)
        if opt["words"]:
            rx = rf"\b(?:{rx})\b"
        if opt["whole"]:
            rx = rf"^(?:{rx})$"
        regex = re.compile(rx, re.I if opt["ignore"] else 0)
    except re.error as e:
        return "", f"grep: bad regex '{patterns[0]}': {e}\n", 2
    texts = []
    if files:
        for f in files:
            if f == "-":
                texts.append(stdin)
            elif f in sh.app.files:
                texts.append(sh.app.files[f])
            else:
                return "", f"grep: {f}: No such file or directory\n", 2
    else:
        texts.append(stdin)
    out: list[str] = []
    hits = 0
    for text in texts:
        for n, line in enumerate(text.splitlines(), 1):
            m = regex.search(line)
            if bool(m) == opt["invert"]:
                continue
            hits += 1
            if opt["quiet"] or opt["count"]:
                continue
            prefix = f"{n}:" if opt["number"] else ""
            if opt["only"] and not opt["invert"]:
                out.extend(prefix + mm.group(0) + "\n" for mm in regex.finditer(line))
            else:
                out.append(prefix + line + "\n")
    if opt["count"]:
        out = [f"{hits}\n"]
    return ("" if opt["quiet"] else "".join(out)), "", (0 if hits else 1)


def _cat(sh: Shell, argv, stdin):
    files = [a for a in argv[1:] if not a.startswith("-") or a == "-"]
    if not files:
        return stdin, "", 0
    out = []
    for f in files:
        if f == "-":
            out.append(stdin)
        elif f in sh.app.files:
            out.append(sh.app.files[f])
        else:
            return "".join(out), f"cat: can't open '{f}': No such file or directory\n", 1
    return "".join(out), "", 0


def _head_tail(sh: Shell, argv, stdin):
    name = argv[0].rsplit("/", 1)[-1]
    n = 10
    files = []
    args = argv[1:]
    i = 0
    while i < len(args):
        a = args[i]
        if a == "-n" and i + 1 < len(args):
            n = int(args[i + 1].lstrip("+-") or 10)
            i += 1
        elif re.fullmatch(r"-n?\d+", a):
            n = int(a.lstrip("-n"))
        else:
            files.append(a)
        i += 1
    text = "".join(sh.app.files.get(f, "") for f in files) if files else stdin
    lines = text.splitlines(keepends=True)
    picked = lines[:n] if name == "head" else (lines[-n:] if n else [])
    return "".join(picked), "", 0


def _wc(sh: Shell, argv, stdin):
    flags = "".join(a[1:] for a in argv[1:] if a.startswith("-"))
    lines, words, chars = stdin.count("\n"), len(stdin.split()), len(stdin.encode())
    if flags == "l":
        return f"{lines}\n", "", 0
    if flags == "w":
        return f"{words}\n", "", 0
    if flags in ("c", "m"):
        return f"{chars}\n", "", 0
    return f"{lines:7d} {words:7d} {chars:7d}\n", "", 0


def _seq(sh: Shell, argv, stdin):
    try:
        nums = [int(a) for a in argv[1:]]
    except ValueError:
        return "", f"seq: invalid number '{argv[-1]}'\n", 1
    if len(nums) == 1:
        lo, step, hi = 1, 1, nums[0]
    elif len(nums) == 2:
        lo, step, hi = nums[0], 1, nums[1]
    elif len(nums) == 3:
        lo, step, hi = nums
    else:
        return "", "Usage: seq [-w] [-s SEP] [FIRST [INC]] LAST\n", 1
    return "".join(f"{k}\n" for k in range(lo, hi + (1 if step > 0 else -1), step)), "", 0


def _hostname(sh: Shell, argv, stdin):
    return sh.env.get("HOSTNAME", sh.app.spec.hostname) + "\n", "", 0


def _env(sh: Shell, argv, stdin):
    if len(argv) > 1 and argv[0].endswith("printenv"):
        vals = [sh.env[a] for a in argv[1:] if a in sh.env]
        return "".join(v + "\n" for v in vals), "", (0 if len(vals) == len(argv) - 1 else 1)
    return "".join(f"{k}={v}\n" for k, v in sorted(sh.env.items())), "", 0


def _date(sh: Shell, argv, stdin):
    t = time.gmtime(sh.now())
    return time.strftime("%a %b %e %H:%M:%S UTC %Y", t) + "\n", "", 0


def _ls(sh: Shell, argv, stdin):
    return "".join(f + "\n" for f in sorted(sh.app.files)), "", 0


def _jq_path(expr: str) -> list:
    """``.a.b[0]``, ``.[]``, ``.["k"]`` → steps (str key | int index | "[]" iterate)."""
    expr = expr.strip()
    if expr in (".", ""):
        return []
    if not expr.startswith("."):
        raise ValueError(f"jq: error: {expr}/0 is not defined")
    steps: list = []
    for m in re.finditer(r'\.?\[\]|\.?\[(-?\d+)\]|\.?\["([^"]*)"\]|\.([A-Za-z_][A-Za-z0-9_]*)|\.$', expr):
        if m.group(0).endswith("[]"):
            steps.append("[]")
        elif m.group(1) is not None:
            steps.append(int(m.group(1)))
        elif m.group(2) is not None:
            steps.append(m.group(2))
        elif m.group(3) is not None:
            steps.append(m.group(3))
    return steps


def _jq_eval(value, steps) -> list:
    outs = [value]
    for st in steps:
        nxt = []
        for v in outs:
            if st == "[]":
                if isinstance(v, list):
                    nxt.extend(v)
                elif isinstance(v, dict):
                    nxt.extend(v.values())
                else:
                    raise ValueError(f"Cannot iterate over {_jq_type(v)}")
            elif isinstance(st, int):
                if v is None:
                    nxt.append(None)
                elif isinstance(v, list):
                    nxt.append(v[st] if -len(v) <= st < len(v) else None)
                else:
                    raise ValueError(f"Cannot index {_jq_type(v)} with number")
            else:
                if v is None:
                    nxt.append(None)
                elif isinstance(v, dict):
                    nxt.append(v.get(st))
                else:
                    raise ValueError(f'Cannot index {_jq_type(v)} with "{st}"')
        outs = nxt
    return outs


def _jq_type(v) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean"}
    return names.get(type(v), "number" if v is not None else "null")


def _jq(sh: Shell, argv, stdin):
    """The jq subset used to pick fields: ``.``, ``.a.b``, ``.[0]``, ``.[]``, ``|``, ``-r``, ``-c``."""
    raw = compact = False
    filt = None
    for a in argv[1:]:
        if a.startswith("-") and len(a) > 1 and filt is None:
            raw = raw or "r" in a
            compact = compact or "c" in a
        elif filt is None:
            filt = a
    filt = filt or "."
    dec = json.JSONDecoder()
    values, pos = [], 0
    text = stdin.strip()
    while pos < len(text):
        try:
            v, end = dec.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            return "", f"jq: error (at <stdin>:{e.lineno}): Cannot parse input: {e.msg}\n", 2
        values.append(v)
        pos = end
        while pos < len(text) and text[pos].isspace():
            pos += 1
    out = []
    try:
        stages = [_jq_path(p) for p in filt.split("|")]
        for v in values:
            results = [v]
            for steps in stages:
                results = [r for x in results for r in _jq_eval(x, steps)]
            for r in results:
                if raw and isinstance(r, str):
                    out.append(r + "\n")
                elif compact:
                    out.append(json.dumps(r, separators=(",", ":"), ensure_ascii=False) + "\n")
                else:
                    out.append(json.dumps(r, indent=2, ensure_ascii=False) + "\n")
    except ValueError as e:
        msg = str(e)
        return "".join(out), (msg if msg.startswith("jq:") else f"jq: error (at <stdin>:0): {msg}") + "\n", 5
    return "".join(out), "", 0


# -- hey -----------------------------------------------------------------------------------------

_HEY_SPEC = {"n": "value", "c": "value", "q": "value", "z": "value", "m": "value", "H": "value",
             "t": "value", "A": "value", "d": "value", "D": "value", "T": "value", "a": "value",
             "x": "value", "host": "value", "o": "value", "cpus": "value", "h2": "bool",
             "disable-compression": "bool", "disable-keepalive": "bool", "disable-redirects": "bool"}

HEY_USAGE = "Usage: hey [options...] <url>\n"


def _hey(sh: Shell, argv, stdin):
    """``hey``: c workers, each at most q requests/s, for -z or until -n are done.

    Requests go out on the virtual clock through the mesh.  In the background
    (webhook tasks) or when the context cannot advance the clock, the load
    runs as a Job and the summary goes to the container log; with a context
    offering ``run_for`` the call blocks like the real one and prints it.
    """
    headers: dict[str, str] = {}
    args = argv[1:]
    opts: dict[str, str] = {}
    rest: list[str] = []
    i = 0
    while i < len(args):           # Go's flag package, but -H may repeat
        a = args[i]
        if a.startswith("-") and len(a) > 1:
            name, eq, val = a.lstrip("-").partition("=")
            kind = _HEY_SPEC.get(name)
            if kind is None:
                raise UsageError(f"flag provided but not defined: -{name}\n" + HEY_USAGE, 2)
            if kind == "value" and not eq:
                i += 1
                if i >= len(args):
                    raise UsageError(f"flag needs an argument: -{name}\n" + HEY_USAGE, 2)
                val = args[i]
            if name == "H":
                k, _, v = val.partition(":")
                headers[k.strip()] = v.strip()
            else:
                opts[name] = val if kind == "value" else "true"
        else:
            rest = args[i:]
            break
        i += 1
    if len(rest) != 1:
        raise UsageError(HEY_USAGE, 1)
    try:
        n = int(opts.get("n", "200"))
        c = int(opts.get("c", "50"))
        q = float(opts.get("q", "0"))
        z = go_duration(opts["z"]) if "z" in opts else 0.0
        timeout = float(opts.get("t", "20"))
    except ValueError as e:
        raise UsageError(f"{e}\n" + HEY_USAGE, 1)
    if c <= 0 or (z <= 0 and n <= 0):
        raise UsageError("-n and -c cannot be smaller than 1.\n" + HEY_USAGE, 1)
    if z <= 0 and n < c:
        raise UsageError("-n cannot be less than -c.\n" + HEY_USAGE, 1)
    if "T" in opts:
        headers["Content-Type"] = opts["T"]
    if "host" in opts:
        headers["Host"] = opts["host"]
    clock = clock_ctx(sh.app, sh.ctx)
    if clock is None:
        return "", "hey: the embedded mesh cannot run load before the container has started\n", 1
    job = HeyJob(sh.app, clock, " ".join(argv), rest[0], n=n, c=c, q=q, z=z,
                 method=opts.get("m", "GET"), headers=headers, body=opts.get("d"), timeout=timeout,
                 log_summary=sh.background or getattr(sh.ctx, "run_for", None) is None)
    sh.started.append(job)
    job.begin()
    if sh.background:
        return "", "", 0
    if sh.blocking_wait(0.0):
        waited = 0.0
        step = max(z, 1.0)
        while not job.done and waited < 3600:
            sh.blocking_wait(step)
            waited += step
            step = 1.0
        return job.summary(), "", 0
    return (f"hey: {job.describe()} started on the virtual clock (pid {job.pid}); it runs in the "
            f"background and writes its summary to the container log\n"), "", 0


class HeyJob(Job):
    """The load of one ``hey`` run, request by request on the virtual clock."""

    def __init__(self, app, ctx, command: str, url: str, *, n: int, c: int, q: float, z: float,
                 method: str, headers: dict, body, timeout: float, log_summary: bool):
        super().__init__(app, command)
        self.ctx = ctx
        self.url = url if "://" in url else "http://" + url
        self.n, self.c, self.q, self.z = n, c, q, z
        self.method, self.headers, self.body = method, headers or None, body
        self.timeout_ms = timeout * 1000.0 if timeout > 0 else float("inf")
        self.log_summary = log_summary
        self.interval = 1.0 / q if q > 0 else 0.0
        self.latencies: list[float] = []
        self.codes: Counter = Counter()
        self.errors: Counter = Counter()
        self.bytes = 0
        self.t0 = 0.0
        self.t_end: float | None = None
        self.active = 0
        self.total_s = 0.0

    def describe(self) -> str:
        load = f"{self.c} workers" + (f" at {self.q:g} req/s each" if self.q else "")
        span = f"for {self.z:g}s" if self.z else f"for {self.n} requests"
        return f"{load} {span} to {self.url}"

    def begin(self) -> None:
        self.t0 = float(self.ctx.now)
        self.t_end = self.t0 + self.z if self.z else None
        self.active = self.c
        per_worker = self.n // self.c
        for _ in range(self.c):
            remaining = -1 if self.z else per_worker
            self.ctx.schedule(self.interval, self._worker(remaining))

    def _worker(self, remaining: int):
        """One worker: with -q it waits for its ticker (first tick one interval
        after the start, then every interval on a fixed grid), else it sends
        back to back; a response slower than the interval delays the next one."""
        tick = 0

        def step():
            nonlocal remaining, tick
            if self.done:
                return
            if remaining == 0 or (self.t_end is not None and self.ctx.now > self.t_end + 1e-6):
                self._worker_done()
                return
            tick += 1
            resp, _, _ = do_request(self.app, self.ctx, self.url, self.method, self.headers, self.body)
            lat = resp.latency_ms
            if transport_failure(resp) is not None:
                self.errors[f'{self.method.title()} "{self.url}": {transport_failure(resp)}'] += 1
            elif lat > self.timeout_ms:
                lat = self.timeout_ms
                self.errors[f'{self.method.title()} "{self.url}": context deadline exceeded '
                            f'(Client.Timeout exceeded while awaiting headers)'] += 1
            else:
                self.codes[resp.status] += 1
                self.latencies.append(lat)
                self.bytes += resp.length
            if remaining > 0:
                remaining -= 1
            delay = lat / 1000.0
            if self.interval:
                until_tick = self.t0 + (tick + 1) * self.interval - float(self.ctx.now)
                delay = max(delay, until_tick)
            self.ctx.schedule(max(delay, 0.0005 if not self.interval else 0.0), step)
        return step

    def _worker_done(self) -> None:
        self.active -= 1
        if self.active == 0:
            self.total_s = float(self.ctx.now) - self.t0
            if self.log_summary:
                for line in self.summary().rstrip("\n").split("\n"):
                    self.ctx.log(line)
            self.finish()

    def summary(self) -> str:
        """hey's report: summary, histogram, latency distribution, status codes, errors."""
        lat = sorted(x / 1000.0 for x in self.latencies)
        total = self.total_s or (float(self.ctx.now) - self.t0)
        count = len(lat) + sum(self.errors.values())
        lines = ["", "Summary:", f"  Total:\t{total:.4f} secs"]
        if lat:
            avg = sum(lat) / len(lat)
            lines += [f"  Slowest:\t{lat[-1]:.4f} secs", f"  Fastest:\t{lat[0]:.4f} secs",
                      f"  Average:\t{avg:.4f} secs"]
        lines.append(f"  Requests/sec:\t{(count / total) if total > 0 else 0:.4f}")
        lines.append("  ")
        if lat:
            lines += [f"  Total data:\t{self.bytes} bytes",
                      f"  Size/request:\t{self.bytes // max(1, len(lat))} bytes", "",
                      "Response time histogram:"]
            lo, hi = lat[0], lat[-1]
            width = (hi - lo) / 10 or 1e-9
            buckets = [lo + width * k for k in range(1, 11)]
            counts = [0] * 10
            for x in lat:
                counts[min(9, int((x - lo) / width))] += 1
            top = max(counts) or 1
            lines.append(f"  {lo:.3f} [{0 if lo else 0}]\t|")
            for b, k in zip(buckets, counts):
                lines.append(f"  {b:.3f} [{k}]\t|" + "■" * round(40 * k / top))
            lines += ["", "", "Latency distribution:"]
            for p in (10, 25, 50, 75, 90, 95, 99):
                at = lat[min(len(lat) - 1, int(len(lat) * p / 100))]
                lines.append(f"  {p}% in {at:.4f} secs")
        lines += ["", "Status code distribution:"]
        for code in sorted(self.codes):
            lines.append(f"  [{code}]\t{self.codes[code]} responses")
        if self.errors:
            lines += ["", "Error distribution:"]
            for msg, k in self.errors.most_common():
                lines.append(f"  [{k}]\t{msg}")
        return "\n".join(lines) + "\n\n"


# -- watch ---------------------------------------------------------------------------------------

def _watch(sh: Shell, argv, stdin):
    """``watch [-n SECS] [-t] COMMAND…``: run now, then every SECS in the background.

    The first screen is returned; the repetitions continue as a Job for
    ``WATCH_MAX_S`` virtual seconds unless stopped (``pkill watch``,
    ``kill <pid>``, or the container stopping).
    """
    args = argv[1:]
    interval = 2.0
    title = True
    while args and args[0].startswith("-") and len(args[0]) > 1:
        a = args.pop(0)
        if a in ("-n", "--interval"):
            if not args:
                raise UsageError("watch: option requires an argument -- 'n'", 1)
            interval = float(args.pop(0))
        elif a.startswith("-n") and len(a) > 2:
            interval = float(a[2:])
        elif a.startswith("--interval="):
            interval = float(a.split("=", 1)[1])
        elif a in ("-t", "--no-title"):
            title = False
        elif a in ("-d", "--differences", "-x", "--exec", "-e", "--errexit", "-b", "--beep", "-c", "--color"):
            pass
        else:
            raise UsageError(f"watch: invalid option -- '{a.lstrip('-')}'", 1)
    if not args:
        raise UsageError("Usage: watch [-n SEC] [-t] PROG ARGS", 1)
    interval = max(interval, 0.1)
    command = " ".join(args)
    clock = clock_ctx(sh.app, sh.ctx)
    first = Shell(sh.app, sh.ctx, background=True)
    out, _ = first.run_script(command)
    header = ""
    if title:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(sh.now()))
        header = f"Every {interval:.1f}s: {command}    {sh.env.get('HOSTNAME', '')}: {stamp}\n\n"
    if clock is None:
        return header + out, "", 0
    job = WatchJob(sh.app, clock, " ".join(argv), command, interval, first.elapsed_s, out)
    sh.started.append(job)
    note = (f"\n[watch runs in the background (pid {job.pid}) every {interval:g}s for up to "
            f"{WATCH_MAX_S / 60:g} virtual minutes; stop it with `pkill watch`]\n")
    return header + out + note, "", 0


class WatchJob(Job):
    def __init__(self, app, ctx, command: str, script: str, interval: float, first_elapsed: float,
                 first_output: str):
        super().__init__(app, command)
        self.ctx = ctx
        self.script = script
        self.interval = interval
        self.t_end = float(ctx.now) + WATCH_MAX_S
        self.last_output = first_output
        self.runs = 1
        ctx.schedule(interval + first_elapsed, self._tick)

    def _tick(self) -> None:
        if self.done or self.app.stopped:
            self.finish()
            return
        if self.ctx.now >= self.t_end:
            self.finish()
            return
        sh = Shell(self.app, self.ctx, background=True)
        self.last_output, _ = sh.run_script(self.script)
        self.runs += 1
        self.ctx.schedule(self.interval + sh.elapsed_s, self._tick)


def _tshark(sh: Shell, argv, stdin):
    capture = getattr(sh.app, "capture", None)
    if callable(capture):
        return capture(argv, sh.ctx), "", 0
    return "Capturing on 'any'\n", "", 0


COMMANDS = {
    "curl": _curl, "wget": _wget, "hey": _hey, "watch": _watch, "grep": _grep, "egrep": _grep,
    "cat": _cat, "head": _head_tail, "tail": _head_tail, "wc": _wc, "seq": _seq, "jq": _jq,
    "hostname": _hostname, "env": _env, "printenv": _env, "date": _date, "ls": _ls,
    "podcli": _podcli, "tshark": _tshark,
}
