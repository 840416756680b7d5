"""flagger-loadtester (ghcr.io/fluxcd/flagger-loadtester, weaveworks/flagger-loadtester).

Flagger calls it from its webhooks (reference/flagger-and-policies.md §1.8;
``pkg/loadtester/server.go``):

* ``POST /`` with the webhook payload ``{name, namespace, phase, metadata}``.
  ``metadata.type`` defaults to ``cmd``: the command is queued and run in the
  background by the task runner (ticking every 100 ms), deduplicated by
  canary + command while it runs, and the call answers **202** at once —
  so ``hey -z 2m -q 10 -c 2 http://podinfo-canary.test:9898/`` keeps
  generating ≈ 20 req/s on the virtual clock after the webhook returned.
  ``type: bash`` runs the command synchronously: **200** when it exits 0,
  otherwise **500** with ``" exit status N <output>"`` — which is how the
  acceptance test ``curl -sd 'test' http://podinfo-canary:9898/token | grep
  token`` passes against podinfo and fails when podinfo is unreachable.
  Missing metadata → 400 ``metadata not found in payload``; an unknown type →
  400 ``unknown task type X``.
* ``/healthz``, ``/metrics``, and the manual gates ``/gate/{approve,halt,check,
  open,close}`` and ``/rollback/{check,open,close}``.

Flags: ``-port`` (default 9090; the kustomization passes ``-port=8080``),
``-timeout`` (default 1h: a task running longer is stopped), ``-log-level``,
``-zap-encoding``.  Logs are zap JSON lines, as ``kubectl logs`` shows them.
"""
from __future__ import annotations

import json

from . import shell
from .base import BASE_TOOLS, App, Spec, go_duration, go_flags
from .model import Response, request_body

FLAGS = {"port": "value", "log-level": "value", "timeout": "value", "zap-replace-globals": "bool",
         "zap-encoding": "value", "version": "bool"}
TOOLS = BASE_TOOLS | {"hey", "ghz", "grpcurl", "helm", "kubectl", "bats"}
TICK_S = 0.1


class LoadTester(App):
    READY_AFTER = 0.5
    tools = TOOLS

    def __init__(self, spec: Spec, tag: str):
        super().__init__(spec)
        self.version = tag.lstrip("v")
        self.name = f"flagger-loadtester:{tag}"
        self.argv = spec.argv(["./loadtester"])
        self.port = "9090"
        self.timeout_s = 3600.0
        try:
            flags, _ = go_flags(self.argv[1:], FLAGS)
            self.port = flags.get("port", self.port)
            if "timeout" in flags:
                self.timeout_s = go_duration(flags["timeout"])
        except ValueError as e:
            if self.failure is None:
                self.failure = str(e)
        self.listen(self.port)
        self.todo: dict[str, tuple[str, str, bool]] = {}     # hash → (canary, command, logCmdOutput)
        self.running: set[str] = set()
        self.total_execs = 0
        self.gates: dict[str, bool] = {}
        self._tick_pending = False

    # -- logging like zap's JSON encoder --------------------------------------------------------
    def zlog(self, level: str, msg: str, canary: str | None = None, ctx=None) -> None:
        ctx = ctx or self.bg
        if ctx is None:
            return
        entry = {"level": level, "ts": round(float(ctx.now), 3), "msg": msg}
        if canary:
            entry["canary"] = canary
        ctx.log(json.dumps(entry))

    def start(self, ctx) -> None:
        super().start(ctx)
        self.zlog("info", f"Starting load tester v{self.version} API on port {self.port}")

    # -- HTTP API ---------------------------------------------------------------------------------------------
    def handle(self, req, ctx):
        path = req.path.split("?", 1)[0]
        if path == "/healthz":
            return Response(200, 0.3, 2, body="OK")
        if path == "/metrics":
            text = f"# TYPE flagger_loadtester_total_execs counter\nflagger_loadtester_total_execs {self.total_execs}\n"
            return Response(200, 0.6, len(text), body=text)
        if path == "/gate/approve":
            return Response(200, 0.3, 2, body="OK")
        if path == "/gate/halt":
            return Response(403, 0.3, 9, body="Forbidden")
        if path.startswith("/gate/") or path.startswith("/rollback/"):
            return self._gate(path, req, ctx)
        return self._webhook(req, ctx)

    @staticmethod
    def _payload(req) -> dict | None:
        body = request_body(req)
        if isinstance(body, dict):
            return body
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        if isinstance(body, str):
            try:
                obj = json.loads(body)
            except ValueError:
                return None
            return obj if isinstance(obj, dict) else None
        return None

    def _gate(self, path: str, req, ctx) -> Response:
        payload = self._payload(req)
        if payload is None:
            self.zlog("error", "decoding the request body failed", ctx=ctx)
            return Response(400, 0.3, 0)
        kind, _, op = path.strip("/").partition("/")
        name = f"{payload.get('name', '')}.{payload.get('namespace', '')}"
        key = ("rollback." if kind == "rollback" else "") + name
        if op == "check":
            ok = self.gates.get(key, False)
            what = "rollback" if kind == "rollback" else "gate"
            self.zlog("info", f"{key} {what} check: approved {str(ok).lower()}", ctx=ctx)
            return Response(200, 0.4, 8, body="Approved") if ok else Response(403, 0.4, 9, body="Forbidden")
        if op in ("open", "close"):
            self.gates[key] = op == "open"
            self.zlog("info", f"{key} {'rollback' if kind == 'rollback' else 'gate'} "
                              f"{'opened' if op == 'open' else 'closed'}", ctx=ctx)
            return Response(202, 0.4, 0)
        return Response(404, 0.3, 19, body="404 page not found\n")

    def _webhook(self, req, ctx) -> Response:
        payload = self._payload(req)
        if payload is None:
            self.zlog("error", "decoding the request body failed", ctx=ctx)
            return Response(400, 0.4, 0)
        metadata = payload.get("metadata") or {}
        if not metadata:
            return Response(400, 0.4, 29, body="metadata not found in payload")
        canary = f"{payload.get('name', '')}.{payload.get('namespace', '')}"
        typ = metadata.get("type", "cmd")
        command = metadata.get("cmd")
        if typ == "bash":
            return self._bash(canary, command or "", ctx)
        if typ in ("helm", "helmv3", "concord", "ngrinder"):
            text = f"{typ} tasks are not modelled by the embedded mesh"
            return Response(500, 0.5, len(text), body=text)
        if typ != "cmd":
            text = f"unknown task type {typ}"
            return Response(400, 0.4, len(text), body=text)
        if command is None:
            text = "cmd not found in metadata"
            return Response(400, 0.4, len(text), body=text)
        log_output = str(metadata.get("logCmdOutput", "")).lower() in ("true", "1", "t")
        self.todo[canary + "\x00" + command] = (canary, command, log_output)
        self._schedule_tick()
        return Response(202, 0.5, 0)

    def _bash(self, canary: str, command: str, ctx) -> Response:
        """A blocking task: the webhook's answer is the command's exit status."""
        self.zlog("info", f"bats command {command}", canary, ctx=ctx)
        out, code, sh = shell.run_script(self, command, ctx, background=True)
        ms = 2.0 + sh.elapsed_s * 1000.0
        if code != 0:
            self.zlog("error", f"command failed {command} exit status {code} {out}", canary, ctx=ctx)
            text = f" exit status {code} {out}"
            return Response(500, ms, len(text), body=text)
        if out:
            self.log(out.rstrip("\n"))
        self.zlog("info", f"command finished {command}", canary, ctx=ctx)
        return Response(200, ms, 0)

    # -- the task runner ---------------------------------------------------------------------------------------
    def _schedule_tick(self) -> None:
        if self._tick_pending or self.bg is None:
            if self.bg is None:
                self._run_all()          # no clock yet: run in place
            return
        self._tick_pending = True
        self.bg.schedule(TICK_S, self._run_all)

    def _run_all(self) -> None:
        self._tick_pending = False
        if self.stopped:
            return
        todo, self.todo = self.todo, {}
        for key, (canary, command, log_output) in todo.items():
            if key in self.running:
                self.zlog("info", f"command skipped {command} is already running", canary)
                continue
            self.running.add(key)
            self.total_execs += 1
            self.zlog("info", f"command starting {command}", canary)
            self._run_task(key, canary, command, log_output)

    def _run_task(self, key: str, canary: str, command: str, log_output: bool) -> None:
        ctx = self.bg
        out, code, sh = shell.run_script(self, command, ctx, background=True)
        jobs = [j for j in sh.started if not j.done]
        remaining = [len(jobs)]
        timed_out = [False]

        def finished() -> None:
            self.running.discard(key)
            if timed_out[0]:
                self.zlog("error", f"command failed {command} signal: killed context deadline exceeded", canary)
            elif code != 0:
                self.zlog("error", f"command failed {command} exit status {code} {out}", canary)
            else:
                if log_output and out:
                    self.zlog("info", out, canary)
                self.zlog("info", f"command finished {command}", canary)

        if not jobs or ctx is None:
            finished()
            return

        def one_done() -> None:
            remaining[0] -= 1
            if remaining[0] == 0:
                finished()
        for job in jobs:
            job.on_done(one_done)

        def deadline() -> None:          # -timeout: the task's context is cancelled
            if any(not job.done for job in jobs):
                timed_out[0] = True
                for job in jobs:
                    job.stop()
        ctx.schedule(self.timeout_s, deadline)


def build(spec: Spec, tag: str) -> App:
    return LoadTester(spec, tag)
