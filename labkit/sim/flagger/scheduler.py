"""Flagger's controller: the canary informer, per-canary jobs on the analysis interval, and ``advanceCanary``.

Mirrors ``pkg/controller/controller.go``, ``job.go``, ``scheduler.go`` and
``events.go`` of Flagger v1.44 (reference/flagger-and-policies.md §1):

* the operator runs while Flagger's pod is available; its informer sets a new
  Canary's phase to ``Initializing``; every ``-control-loop-interval`` (10s)
  ``scheduleCanaries`` starts a job per Canary (recreated when the analysis
  interval changes), which runs ``advanceCanary`` at once and then on every
  tick of the interval;
* :meth:`Flagger.advance` is one tick, step by step as §1.4 lists them:
  bootstrap (Services, metric providers, primary, apex, mesh router,
  Initialized), revision detection, primary readiness, weights read back
  from the router, the new-revision gate, restart on a changed revision,
  canary readiness, skipAnalysis, rollback hooks, Promoting / Finalising, the
  failed-checks threshold, the first tick's pre-rollout hooks or the
  analysis, then the strategy step (canary weights, blue/green iterations);
* every event is a Kubernetes Event with reason ``Synced`` from component
  ``flagger`` on ``canary/<name>``, a JSON line in Flagger's log, and an
  entry in the canary's history (``history.py``).
"""
from __future__ import annotations

import json
import time

from labkit.sim.flagger import router as routers
from labkit.sim.flagger import webhooks as hooks
from labkit.sim.flagger.deployment import DeploymentController
from labkit.sim.flagger.history import Check, HistoryBook
from labkit.sim.flagger.metrics import Metrics
from labkit.sim.flagger.spec import TOTAL_WEIGHT, CanarySpec

CONTROL_LOOP_INTERVAL = 10.0
#: The informer's reaction time to a Canary change (the work queue's first pass).
INFORMER_LATENCY = 0.01


class Job:
    """``CanaryJob``: ``advanceCanary`` now, then on every tick of the analysis interval, until stopped."""

    def __init__(self, flagger: "Flagger", namespace: str, name: str, interval: float):
        self.flagger, self.namespace, self.name, self.interval = flagger, namespace, name, interval
        self.stopped = False

    def start(self) -> None:
        self.flagger.clock.after(0.0, self._tick)

    def stop(self) -> None:
        self.stopped = True

    def _tick(self) -> None:
        if self.stopped:
            return
        self.flagger.advance(self.namespace, self.name)
        if not self.stopped:
            self.flagger.clock.after(self.interval, self._tick)


class Flagger:
    """The Flagger operator of one embedded cluster."""

    def __init__(self, mesh, *, provider: str, namespace: str, metrics_server: str,
                 control_loop_interval: float = CONTROL_LOOP_INTERVAL, include_label_prefixes=("app.kubernetes.io",)):
        self.mesh = mesh
        self.cluster = mesh.cluster
        self.api = mesh.cluster.api
        self.clock = mesh.clock
        self.provider = provider
        self.namespace = namespace
        self.metrics_server = metrics_server
        self.control_loop_interval = control_loop_interval
        self.dc = DeploymentController(self.cluster, mesh.rng("flagger"), include_label_prefixes)
        self.metrics = Metrics(self)
        self.history = HistoryBook()
        self.jobs: dict[tuple[str, str], Job] = {}
        self.canaries: dict[tuple[str, str], dict] = {}   # the informer's cache
        self.running = False
        self._generation = 0
        self._tick = None           # the history Tick being recorded
        self._tick_canary = None
        self._log_fallback: list[str] = []
        self._watching_canaries = False
        self.api.watch(self.cluster.types.deployment, self._on_deployment)
        self._watch_canaries()
        self._check_running()

    # -- lifecycle: the operator runs while Flagger's pod is available ------------------------------
    def _on_deployment(self, event, old, new) -> None:
        obj = new or old
        if obj["metadata"].get("namespace") == self.namespace and obj["metadata"].get("name") == "flagger":
            self.clock.after(0.0, self._check_running)

    def _available(self) -> bool:
        deploy = self.api.get(self.cluster.types.deployment, self.namespace, "flagger")
        return deploy is not None and (deploy.get("status") or {}).get("availableReplicas", 0) >= 1

    def _check_running(self) -> None:
        available = self._available()
        if available and not self.running:
            self._start()
        elif not available and self.running:
            self._stop()

    def _start(self) -> None:
        self.running = True
        self._generation += 1
        self.log("info", f"Starting flagger version 1.44.0 revision 15bd6ad555e6c935da55f0ab95977be74c149bd6 "
                         f"mesh provider {self.provider}")
        self.log("info", f"Connected to metrics server {self.metrics_server}")
        self.log("info", "Starting operator")
        rtype = self._canary_type()
        if rtype is not None:
            for obj in self.api.list(rtype):
                self._sync((obj["metadata"]["namespace"], obj["metadata"]["name"]))
        generation = self._generation

        def loop() -> None:
            if generation != self._generation or not self.running:
                return
            self.schedule_canaries()
            self.clock.after(self.control_loop_interval, loop)

        self.clock.after(self.control_loop_interval, loop)

    def _stop(self) -> None:
        self.running = False
        self._generation += 1
        for job in self.jobs.values():
            job.stop()
        self.jobs.clear()

    def reconfigure(self, provider: str, metrics_server: str) -> None:
        """A new install with other flags: Flagger restarts with them (its Deployment rolls)."""
        self.provider, self.metrics_server = provider, metrics_server

    # -- the informer -------------------------------------------------------------------------------------
    def _canary_type(self):
        return self.cluster.discovery.by_key("flagger.app", "Canary")

    def _watch_canaries(self) -> None:
        rtype = self._canary_type()
        if rtype is None or self._watching_canaries:
            return
        self._watching_canaries = True
        self.api.watch(rtype, self._on_canary)

    def _on_canary(self, event, old, new) -> None:
        if not self.running:
            return
        if new is None:
            self.canaries.pop((old["metadata"]["namespace"], old["metadata"]["name"]), None)
            return
        key = (new["metadata"]["namespace"], new["metadata"]["name"])
        if event == "ADDED" or (old or {}).get("spec") != new.get("spec"):
            self.clock.after(INFORMER_LATENCY, lambda: self._sync(key))

    def _sync(self, key) -> None:
        """``syncHandler``: cache the Canary; a new one gets phase Initializing."""
        obj = self.dc.canary(*key)
        if obj is None:
            return
        cd = CanarySpec(obj)
        if not cd.status.get("conditions"):
            cd = self.dc.set_phase_initializing(cd)
        self.canaries[key] = cd.obj

    def schedule_canaries(self) -> None:
        """``scheduleCanaries``: a job per cached Canary; a changed interval recreates it; gone ones stop."""
        for key in sorted(self.canaries):
            live = self.dc.canary(*key)
            if live is None:
                continue
            self.canaries[key] = live
            interval = CanarySpec(live).interval()
            job = self.jobs.get(key)
            if job is None or job.interval != interval:
                if job is not None:
                    job.stop()
                job = self.jobs[key] = Job(self, key[0], key[1], interval)
                job.start()
        for key in [k for k in self.jobs if k not in self.canaries or self.dc.canary(*k) is None]:
            self.jobs.pop(key).stop()
            self.canaries.pop(key, None)

    # -- events and logs ------------------------------------------------------------------------------------
    def _pod(self):
        try:
            pods = self.mesh.dataplane.find_pods("deploy/flagger", self.namespace)
        except Exception:
            return None
        return pods[0] if pods else None

    def client_context(self):
        """The context requests from Flagger's pod go out with (webhooks)."""
        pod = self._pod()
        return pod.ctx if pod is not None else None

    def log(self, level: str, msg: str, canary: str | None = None) -> None:
        millis = int(round(self.clock.t * 1000))  # zap's ISO 8601 encoder: milliseconds, rounded once
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(millis // 1000))
        entry = {"level": level, "ts": f"{stamp}.{millis % 1000:03d}Z",
                 "caller": "controller/events.go:33" if canary else "flagger/main.go:166", "msg": msg}
        if canary:
            entry["canary"] = canary
        line = json.dumps(entry, separators=(",", ":"))
        pod = self._pod()
        (pod.log_lines if pod is not None else self._log_fallback).append(line)

    def _event(self, cd: CanarySpec, type_: str, level: str, message: str) -> None:
        obj = self.dc.canary(cd.namespace, cd.name) or cd.obj
        self.cluster.record_event(obj, type_, "Synced", message, source="flagger")
        self.log(level, message, f"{cd.name}.{cd.namespace}")
        self.history.of(cd.namespace, cd.name).event(self.clock.t, type_, message)

    def info(self, cd: CanarySpec, message: str) -> None:
        self._event(cd, "Normal", "info", message)

    def warn(self, cd: CanarySpec, message: str) -> None:
        self._event(cd, "Warning", "info", message)

    def error(self, cd: CanarySpec, message: str) -> None:
        self._event(cd, "Warning", "error", message)

    def record_check(self, check: Check) -> None:
        if self._tick is not None:
            self._tick.checks.append(check)

    # -- one tick -----------------------------------------------------------------------------------------------
    def advance(self, namespace: str, name: str) -> None:
        """``advanceCanary`` for one canary, recorded in its history."""
        obj = self.dc.canary(namespace, name)
        if obj is None:
            self.log("error", f"Canary {name}.{namespace} not found", f"{name}.{namespace}")
            return
        cd = CanarySpec(obj)
        record = self.history.of(namespace, name)
        self._tick = record.begin(self.clock.t, cd.phase)
        try:
            self._advance(cd)
        finally:
            tick, self._tick = self._tick, None
            after = self.dc.canary(namespace, name)
            if after is not None:
                now = CanarySpec(after)
                tick.phase = now.phase
                tick.status_weight = now.status_weight
                tick.failed_checks = now.failed_checks
                tick.iterations = now.status_iterations
                try:
                    _, weight, _, err = routers.mesh_router(self.cluster, now.provider or self.provider).get_routes(now)
                    tick.weight = weight if err is None else 0
                except ValueError:
                    tick.weight = 0

    def _advance(self, cd: CanarySpec) -> None:
        if cd.suspended:
            self.info(cd, "skipping canary run as object is suspended")
            return
        provider = cd.provider or self.provider
        dc = self.dc
        label, value, err = dc.get_metadata(cd)
        if err:
            self.warn(cd, err)
            return
        kube = routers.KubernetesRouter(self.cluster, label, value)
        err = kube.initialize(cd)
        if err:
            self.warn(cd, err)
            return
        if not cd.skip_analysis() and cd.phase in ("", "Initializing"):
            err = self.metrics.check_providers(cd)
            if err:
                self.error(cd, f"Error checking metric providers: {err}")
        try:
            mesh = routers.mesh_router(self.cluster, provider)
        except ValueError as exc:
            self.warn(cd, str(exc))
            return
        retriable, err = dc.initialize(cd)
        if err:
            self.warn(cd, err)
            if not retriable:
                self.rollback(cd, mesh)
            return
        if cd.autoscaler:
            err = dc.reconcile_primary_hpa(cd, init=True)
            if err:
                self.warn(cd, err)
                return
        err = kube.reconcile(cd)
        if err:
            self.warn(cd, err)
            return
        if cd.phase in ("", "Initializing"):
            err = dc.scale_to_zero(cd)
            if err:
                self.warn(cd, f"scaling down canary {cd.target_kind} {cd.target}.{cd.namespace} failed: {err}")
                return
        err = mesh.reconcile(cd)
        if err:
            self.warn(cd, err)
            return
        cd = self._set_phase_initialized(cd)
        if not self._should_advance(cd):
            return
        max_weight = cd.max_weight()
        if not cd.skip_analysis():
            retriable, err = dc.is_primary_ready(cd)
            if err:
                self.warn(cd, err)
                if not retriable:
                    if cd.phase in ("Promoting", "Finalising"):
                        self._handle_failed_promotion(cd, mesh, err)
                    else:
                        self.rollback(cd, mesh)
                return
        primary_weight, canary_weight, mirrored, err = mesh.get_routes(cd)
        if err:
            self.warn(cd, err)
            return
        if not self._check_canary_status(cd):
            return
        if cd.phase in ("Progressing", "WaitingPromotion") and \
                (dc.has_target_changed(cd) or dc.have_dependencies_changed(cd)):
            self.info(cd, f"New revision detected! Restarting analysis for {cd.target}.{cd.namespace}")
            err = mesh.set_routes(cd, TOTAL_WEIGHT, 0)
            if err:
                self.warn(cd, err)
                return
            dc.sync_status(cd, "Progressing", 0, 0, 0)
            return
        retriable, ready_err = dc.is_canary_ready(cd)
        if ready_err and retriable:
            self.warn(cd, ready_err)
            return
        if self._should_skip_analysis(cd, mesh, ready_err, retriable):
            return
        if cd.phase in ("Progressing", "Waiting", "WaitingPromotion"):
            if hooks.run_rollback_hooks(self, cd, cd.phase):
                self.warn(cd, f"Rolling back {cd.name}.{cd.namespace} manual webhook invoked")
                self.rollback(cd, mesh)
                return
        if cd.phase == "Promoting":
            if cd.autoscaler:
                err = dc.reconcile_primary_hpa(cd, init=False)
                if err:
                    self.warn(cd, err)
                    return
            self._promotion_traffic_shift(cd, mesh, canary_weight, primary_weight)
            return
        if cd.phase == "Finalising":
            err = dc.scale_to_zero(cd)
            if err:
                self.warn(cd, err)
                return
            cd = dc.set_status_phase(cd, "Succeeded")
            hooks.run_post_rollout_hooks(self, cd, "Succeeded")
            self.info(cd, f"Promotion completed! Scaling down {cd.target}.{cd.namespace}")
            return
        if cd.phase in ("Progressing", "WaitingPromotion") and (not retriable or cd.failed_checks >= cd.threshold()):
            if not retriable:
                self.warn(cd, f"Rolling back {cd.name}.{cd.namespace} progress deadline exceeded {ready_err}")
            self.rollback(cd, mesh)
            return
        if canary_weight == 0 and cd.status_iterations == 0 and not (cd.mirror and mirrored):
            self.info(cd, f"Starting canary analysis for {cd.target}.{cd.namespace}")
            if not hooks.run_pre_rollout_hooks(self, cd):
                dc.set_status_failed_checks(cd, cd.failed_checks + 1)
                return
        elif not self._run_analysis(cd):
            dc.set_status_failed_checks(cd, cd.failed_checks + 1)
            return
        strategy = cd.strategy()
        if strategy == "ab":
            self.warn(cd, "A/B testing (analysis.match) is not modelled by the embedded mesh")
            return
        if strategy == "bluegreen":
            self._run_blue_green(cd, mesh)
            return
        if cd.next_step_weight(canary_weight) > 0:
            if not mirrored and cd.phase not in ("Promoting", "WaitingPromotion", "Finalising"):
                if not hooks.run_confirm_traffic_increase_hooks(self, cd):
                    return
            self._run_canary(cd, mesh, canary_weight, primary_weight, max_weight)

    # -- the steps --------------------------------------------------------------------------------------------
    def _set_phase_initialized(self, cd: CanarySpec) -> CanarySpec:
        if cd.phase in ("", "Initializing"):
            cd = self.dc.sync_status(cd, "Initialized")
            self.info(cd, f"Initialization done! {cd.name}.{cd.namespace}")
        return cd

    def _should_advance(self, cd: CanarySpec) -> bool:
        if cd.phase in ("Progressing", "Waiting", "WaitingPromotion", "Promoting", "Finalising"):
            return True
        if cd.phase == "Failed":
            # keep lastAppliedSpec in sync: the failed revision is not analysed again (reference §1.3)
            self.dc.sync_status(cd, "Failed", cd.status_weight, cd.failed_checks, cd.status_iterations)
        return self.dc.has_target_changed(cd) or self.dc.have_dependencies_changed(cd)

    def _check_canary_status(self, cd: CanarySpec) -> bool:
        """``checkCanaryStatus``: carry on mid-analysis; a new revision scales the canary up and ends the tick."""
        if cd.phase in ("Progressing", "WaitingPromotion", "Promoting", "Finalising"):
            return True
        if not hooks.run_confirm_rollout_hooks(self, cd):
            return False
        self.info(cd, f"New revision detected! Scaling up {cd.target}.{cd.namespace}")
        err = self.dc.scale_from_zero(cd)
        if err:
            self.error(cd, err)
            return False
        self.dc.sync_status(cd, "Progressing")
        return False

    def _should_skip_analysis(self, cd: CanarySpec, mesh, err, retriable: bool) -> bool:
        if not cd.skip_analysis():
            return False
        if not retriable:
            self.warn(cd, f"Rolling back {cd.name}.{cd.namespace} progress deadline exceeded {err}")
            self.rollback(cd, mesh)
            return True
        e = mesh.set_routes(cd, TOTAL_WEIGHT, 0)
        if e:
            self.warn(cd, e)
            return True
        self.info(cd, f"Copying {cd.target}.{cd.namespace} template spec to {cd.primary}.{cd.namespace}")
        e = self.dc.promote(cd)
        if e:
            self.warn(cd, e)
            return True
        e = self.dc.scale_to_zero(cd)
        if e:
            self.warn(cd, e)
            return True
        cd = self.dc.set_status_phase(cd, "Succeeded")
        hooks.run_post_rollout_hooks(self, cd, "Succeeded")
        self.info(cd, f"Promotion completed! Canary analysis was skipped for {cd.target}.{cd.namespace}")
        return True

    def _run_analysis(self, cd: CanarySpec) -> bool:
        """``runAnalysis``: rollout hooks, built-in metrics and inline queries, then MetricTemplates."""
        return (hooks.run_rollout_hooks(self, cd) and self.metrics.run_builtin(cd)
                and self.metrics.run_templates(cd))

    def _run_canary(self, cd: CanarySpec, mesh, canary_weight: int, primary_weight: int, max_weight: int) -> None:
        if canary_weight < max_weight:
            step = cd.next_step_weight(canary_weight)
            primary_weight = max(primary_weight - step, 0)
            canary_weight = min(canary_weight + step, TOTAL_WEIGHT)
            err = mesh.set_routes(cd, primary_weight, canary_weight)
            if err:
                self.warn(cd, err)
                return
            self.dc.set_status_weight(cd, canary_weight)
            self.info(cd, f"Advance {cd.name}.{cd.namespace} canary weight {canary_weight}")
            return
        if not hooks.run_confirm_promotion_hooks(self, cd):
            return
        self._start_promotion(cd)

    def _start_promotion(self, cd: CanarySpec) -> None:
        """The analysis passed: copy the canary's template onto the primary, then phase Promoting."""
        self.info(cd, f"Copying {cd.target}.{cd.namespace} template spec to {cd.primary}.{cd.namespace}")
        err = self.dc.promote(cd)
        if err:
            self.warn(cd, err)
            return
        self.dc.set_status_phase(cd, "Promoting")

    def _run_blue_green(self, cd: CanarySpec, mesh) -> None:
        done = cd.status_iterations
        if cd.iterations > done:
            self.dc.set_status_iterations(cd, done + 1)
            self.info(cd, f"Advance {cd.name}.{cd.namespace} canary iteration {done + 1}/{cd.iterations}")
            return
        if not hooks.run_confirm_promotion_hooks(self, cd):
            return
        if cd.iterations == done:
            self.info(cd, "Routing all traffic to canary")
            err = mesh.set_routes(cd, 0, TOTAL_WEIGHT)
            if err:
                self.warn(cd, err)
                return
            self.dc.set_status_iterations(cd, done + 1)
            return
        self._start_promotion(cd)

    def _promotion_traffic_shift(self, cd: CanarySpec, mesh, canary_weight: int, primary_weight: int) -> None:
        step = cd.step_weight_promotion
        if step == 0:
            self.info(cd, "Routing all traffic to primary")
            err = mesh.set_routes(cd, TOTAL_WEIGHT, 0)
            if err:
                self.warn(cd, err)
                return
            self.dc.set_status_phase(cd, "Finalising")
            return
        if canary_weight > 0:
            primary_weight = min(primary_weight + step, TOTAL_WEIGHT)
            canary_weight = max(canary_weight - step, 0)
            err = mesh.set_routes(cd, primary_weight, canary_weight)
            if err:
                self.warn(cd, err)
                return
            self.info(cd, f"Advance {cd.name}.{cd.namespace} primary weight {primary_weight}")
            if primary_weight == TOTAL_WEIGHT:
                self.dc.set_status_phase(cd, "Finalising")
            else:
                self.dc.set_status_weight(cd, canary_weight)

    def rollback(self, cd: CanarySpec, mesh) -> None:
        """``rollback``: all traffic to the primary, the canary scaled to zero, phase Failed."""
        if cd.failed_checks >= cd.threshold():
            self.warn(cd, f"Rolling back {cd.name}.{cd.namespace} failed checks threshold reached {cd.failed_checks}")
        err = mesh.set_routes(cd, TOTAL_WEIGHT, 0)
        if err:
            self.warn(cd, err)
            return
        self.warn(cd, f"Canary failed! Scaling down {cd.name}.{cd.namespace}")
        err = self.dc.scale_to_zero(cd)
        if err:
            self.warn(cd, err)
            return
        cd = self.dc.sync_status(cd, "Failed", 0, 0, 0)
        hooks.run_post_rollout_hooks(self, cd, "Failed")

    def _handle_failed_promotion(self, cd: CanarySpec, mesh, err: str) -> None:
        """``handleFailedPromotion`` (new in v1.44): the primary cannot roll, so the canary keeps the traffic."""
        self.warn(cd, f"Promotion of {cd.target}.{cd.namespace} failed, primary not ready: {err}")
        e = mesh.set_routes(cd, 0, TOTAL_WEIGHT)
        if e:
            self.warn(cd, e)
            return
        cd = self.dc.sync_status(cd, "Failed", TOTAL_WEIGHT, cd.failed_checks, cd.status_iterations)
        hooks.run_post_rollout_hooks(self, cd, "Failed")
