"""The kubelet: runs the pods bound to a node, through the phases ``kubectl get pods`` shows.

For each pod: create the sandbox and give it an IP from the node's pod CIDR;
pull images (one at a time per node, like the default serialized pulls, with
a per-node image cache so a second pod of the same image starts faster and
says ``Container image ... already present on machine``); run init
containers to completion; start the containers; and probe readiness on the
probe's own schedule (``initialDelaySeconds``, ``periodSeconds``). A
container without a readiness probe is ready when it starts. A container
whose ``postStart`` hook runs ``linkerd-await`` (Linkerd's default) holds
back the next container until it is ready, which is why a meshed app starts
after its proxy. Deletion is graceful: containers stop, endpoints drop the
pod at once, and the pod disappears a moment later.

HTTP probes (``httpGet``, scheme HTTP) also go over the network once the
container is ready: every ``periodSeconds`` the kubelet sends ``GET <path>``
with ``User-Agent: kube-probe/1.32`` from the node's IP to the pod's IP and
port (:attr:`Kubelet.http_probe`, which the data plane sets, so a meshed pod's
inbound proxy sees, authorizes and counts each probe as Linkerd's does). Their
answers do not change readiness, which the startup model above decides.

All timing comes from the seeded ``kubelet`` random stream, so a run is
repeatable; an app's start-up time can be supplied by the app models
(``startup_hint``) and readiness can be gated by other components
(``readiness_gates``: Linkerd's proxy is not ready before the identity
service issues its certificate).

Native sidecars (an init container with ``restartPolicy: Always``, Kubernetes
>= 1.29 by default; Linkerd 2.20 runs its proxy so) start in init order but
keep running: the next init container starts once the sidecar has *started*
(its ``startupProbe`` passed, or at once without one), they count towards the
pod's readiness and READY column, and they are stopped after the app
containers (a Job's pod completes while they still run).
"""
from __future__ import annotations

import hashlib
import ipaddress
import random
from typing import Callable

from labkit.sim.kube.objects import name_of, namespace_of, rfc3339

SANDBOX_DELAY = (0.3, 0.9)
START_DELAY = 0.1
STOP_DELAY = (0.4, 1.8)
INIT_RUN = (0.4, 1.2)


def go_duration(secs: float) -> str:
    """Go's ``time.Duration`` text at millisecond precision: ``313ms``, ``1.393s``, ``2s``."""
    ms = int(round(secs * 1000))
    if ms < 1000:
        return f"{ms}ms"
    text = f"{ms / 1000:.3f}".rstrip("0").rstrip(".")
    return f"{text}s"


def image_ref(image: str) -> str:
    """Normalise an image name the way containerd reports it (``nginx:alpine`` → ``docker.io/library/nginx:alpine``)."""
    first = image.split("/", 1)[0]
    if "/" not in image:
        return f"docker.io/library/{image}"
    if "." not in first and ":" not in first and first != "localhost":
        return f"docker.io/{image}"
    return image


def image_id(image: str) -> str:
    repo = image_ref(image).split("@", 1)[0]
    last = repo.rsplit("/", 1)
    if ":" in last[-1]:
        repo = repo.rsplit(":", 1)[0]
    return f"{repo}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


class ContainerRuntime:
    __slots__ = ("name", "image", "spec", "init", "sidecar", "state", "reason", "started_at", "finished_at", "exit_code",
                 "ready", "restarts", "container_id", "app_ready_at", "blocks_next", "last_state", "started",
                 "startup_failures", "probing")

    def __init__(self, spec: dict, init: bool):
        self.name = spec["name"]
        self.image = spec["image"]
        self.spec = spec
        self.sidecar = init and spec.get("restartPolicy") == "Always"
        #: a run-to-completion init container (a native sidecar is an init container that behaves like an app one)
        self.init = init and not self.sidecar
        #: the startup probe passed (``status.started``); containers without one start at once
        self.started = False
        self.startup_failures = 0
        self.probing = 0          # bumped at each start: the HTTP probe loop of an earlier run stops
        self.state = "waiting"
        self.reason = "PodInitializing" if init else "ContainerCreating"
        self.started_at = None
        self.finished_at = None
        self.exit_code = 0
        self.ready = False
        self.restarts = 0
        self.container_id = None
        self.app_ready_at = None
        self.blocks_next = False
        self.last_state: dict = {}

    def status(self) -> dict:
        if self.state == "running":
            state = {"running": {"startedAt": rfc3339(self.started_at)}}
        elif self.state == "terminated":
            state = {"terminated": {"exitCode": self.exit_code, "reason": self.reason,
                                    "startedAt": rfc3339(self.started_at), "finishedAt": rfc3339(self.finished_at),
                                    "containerID": self.container_id}}
        else:
            state = {"waiting": {"reason": self.reason}}
        out = {
            "name": self.name,
            "image": self.image,
            "imageID": image_id(self.image) if self.container_id else "",
            "ready": self.ready,
            "restartCount": self.restarts,
            "started": self.state == "running" and (self.started or not self.spec.get("startupProbe")),
            "state": state,
            "lastState": dict(self.last_state),
        }
        if self.container_id:
            out["containerID"] = self.container_id
        return out


class PodRuntime:
    def __init__(self, pod: dict, node: str):
        self.uid = pod["metadata"]["uid"]
        self.namespace = namespace_of(pod)
        self.name = name_of(pod)
        self.node = node
        self.node_ip: str | None = None  # the kubelet's address, the source of its probes
        self.ip: str | None = None
        spec = pod["spec"]
        self.restart_policy = spec.get("restartPolicy", "Always")
        self.containers = [ContainerRuntime(c, True) for c in spec.get("initContainers") or []]
        self.n_init = len(self.containers)
        self.containers += [ContainerRuntime(c, False) for c in spec.get("containers") or []]
        if self.n_init:
            for c in self.containers[self.n_init:]:
                c.reason = "PodInitializing"
        self.gen = 0
        self.next_to_start = 0
        self.start_time: float | None = None
        self.sandbox = False
        self.terminating = False
        self.conditions: dict[str, tuple[str, float, str | None]] = {}

    @property
    def apps(self) -> list[ContainerRuntime]:
        return self.containers[self.n_init:]

    @property
    def sidecars(self) -> list[ContainerRuntime]:
        """Native sidecars: init containers with ``restartPolicy: Always``."""
        return [c for c in self.containers[:self.n_init] if c.sidecar]

    def init_done(self) -> bool:
        """Every init container completed (run-to-completion ones) or started (native sidecars)."""
        return all((c.sidecar and c.state == "running" and c.started) or
                   (not c.sidecar and c.state == "terminated" and c.exit_code == 0) for c in self.containers[:self.n_init])


class Kubelet:
    """One kubelet model for all nodes (each pod's work is keyed by its node)."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.api = cluster.api
        self.clock = cluster.clock
        self.rng = random.Random(f"{cluster.seed}:kubelet")
        self._cid_rng = random.Random(f"{cluster.seed}:containerid")
        self.pods: dict[str, PodRuntime] = {}
        self.images: dict[str, set[str]] = {}          # node → cached images
        self.pull_free: dict[str, float] = {}          # node → when its image puller is free
        self.pulling: dict[str, set[str]] = {}         # node → images being pulled now
        self.ips: dict[str, dict[str, str]] = {}       # node → {ip: pod uid}
        #: container name → predicate(pod) that must also hold for the container to report ready.
        self.readiness_gates: dict[str, Callable[[dict], bool]] = {}
        #: Sidecar containers that never exit on their own (a Job's pod keeps running while they do).
        self.long_running: set[str] = set()
        #: image → seconds from container start until the app answers its readiness probe (None: default).
        self.startup_hint: Callable[[str], float | None] = lambda image: None
        #: (image, container spec) → seconds a run-to-completion container runs (Jobs).
        self.run_hint: Callable[[str, dict], float | None] = lambda image, spec: None
        #: (pod, port, path, source IP) → the HTTP status the probe got, or None (nothing answered); set by the
        #: data plane, which carries the probe through the pod's proxy. None: probes are not sent over the network.
        self.http_probe: Callable[[dict, int, str, str], int | None] | None = None
        #: Containers whose own HTTP probes need no network model (Linkerd's proxy answers its admin port itself).
        self.local_probes: set[str] = set()
        self._probe_rng = random.Random(f"{cluster.seed}:prober")  # its own stream: other timings stay put
        self.pod_type = cluster.types.pod
        self.api.watch(self.pod_type, self._on_pod)

    # -- watch ------------------------------------------------------------------------------------
    def _on_pod(self, event: str, old: dict | None, new: dict | None) -> None:
        if new is None:
            return
        uid = new["metadata"]["uid"]
        node = new["spec"].get("nodeName")
        runtime = self.pods.get(uid)
        if runtime is None and node and not new["metadata"].get("deletionTimestamp"):
            if (new.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                return
            runtime = self.pods[uid] = PodRuntime(new, node)
            delay = self.rng.uniform(*SANDBOX_DELAY)
            gen = runtime.gen
            self.clock.after(delay, lambda: self._sandbox(runtime, gen))
        elif new["metadata"].get("deletionTimestamp") and runtime is not None and not runtime.terminating:
            self._terminate(runtime, new)

    # -- helpers ------------------------------------------------------------------------------------
    def _pod(self, rt: PodRuntime) -> dict | None:
        pod = self.api.get(self.pod_type, rt.namespace, rt.name)
        if pod is None or pod["metadata"]["uid"] != rt.uid:
            return None
        return pod

    def _alive(self, rt: PodRuntime, gen: int) -> dict | None:
        if rt.gen != gen:
            return None
        return self._pod(rt)

    def _event(self, rt: PodRuntime, type_: str, reason: str, message: str) -> None:
        pod = self._pod(rt)
        if pod is not None:
            self.cluster.recorder.record(pod, type_, reason, message, source="kubelet", host=rt.node)

    def _set_condition(self, rt: PodRuntime, ctype: str, status: bool, reason: str | None = None) -> None:
        value = "True" if status else "False"
        current = rt.conditions.get(ctype)
        if current is None or current[0] != value or current[2] != reason:
            rt.conditions[ctype] = (value, self.clock.t, reason)

    def publish(self, rt: PodRuntime) -> None:
        """Write the pod's status from the runtime state (one API write)."""
        pod = self._pod(rt)
        if pod is None:
            return
        apps = rt.apps
        sidecars = rt.sidecars
        all_ready = bool(apps) and all(c.ready for c in apps) and all(c.ready for c in sidecars)
        done = bool(apps) and all(c.state == "terminated" for c in apps)
        if done and all(c.exit_code == 0 for c in apps):
            phase = "Succeeded"
        elif done:
            phase = "Failed"
        elif any(c.state in ("running", "terminated") for c in apps) and rt.init_done():
            phase = "Running"
        else:
            phase = "Pending"
        if rt.sandbox:
            self._set_condition(rt, "PodReadyToStartContainers", not done)
        init_done = rt.init_done()
        self._set_condition(rt, "Initialized", init_done, None if init_done else "ContainersNotInitialized")
        reason = None if all_ready else ("PodCompleted" if phase == "Succeeded" else "ContainersNotReady")
        self._set_condition(rt, "Ready", all_ready, reason)
        self._set_condition(rt, "ContainersReady", all_ready, reason)
        old_status = pod.get("status") or {}
        scheduled = [c for c in old_status.get("conditions") or [] if c.get("type") == "PodScheduled"]
        conditions = []
        for ctype in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady"):
            if ctype in rt.conditions:
                value, when, why = rt.conditions[ctype]
                cond = {"type": ctype, "status": value, "lastProbeTime": None, "lastTransitionTime": rfc3339(when)}
                if why and value == "False":
                    cond["reason"] = why
                    if why == "ContainersNotReady":
                        waiting = [c.name for c in sidecars + apps if not c.ready]
                        cond["message"] = f"containers with unready status: [{' '.join(waiting)}]"
                    elif why == "ContainersNotInitialized":
                        waiting = [c.name for c in rt.containers[:rt.n_init]
                                   if not (c.state == "terminated" or (c.sidecar and c.started))]
                        cond["message"] = f"containers with incomplete status: [{' '.join(waiting)}]"
                conditions.append(cond)
        conditions += scheduled
        node_ip = self.cluster.node_ip(rt.node)
        status = {
            "phase": phase,
            "conditions": conditions,
            "hostIP": node_ip,
            "hostIPs": [{"ip": node_ip}],
            "qosClass": old_status.get("qosClass", "BestEffort"),
        }
        if rt.ip:
            status["podIP"] = rt.ip
            status["podIPs"] = [{"ip": rt.ip}]
        if rt.start_time is not None:
            status["startTime"] = rfc3339(rt.start_time)
        if rt.n_init:
            status["initContainerStatuses"] = [c.status() for c in rt.containers[:rt.n_init]]
        status["containerStatuses"] = [c.status() for c in apps]
        self.api.update_status(self.pod_type, pod, status)

    # -- lifecycle ----------------------------------------------------------------------------------
    def _sandbox(self, rt: PodRuntime, gen: int) -> None:
        if self._alive(rt, gen) is None:
            return
        rt.ip = self._allocate_ip(rt)
        rt.start_time = self.clock.t
        rt.sandbox = True
        self.publish(rt)
        self._next(rt, gen, 0)

    def _allocate_ip(self, rt: PodRuntime) -> str:
        cidr = ipaddress.ip_network(self.cluster.node_pod_cidr(rt.node))
        used = self.ips.setdefault(rt.node, {})
        for offset in range(2, cidr.num_addresses - 1):
            ip = str(cidr.network_address + offset)
            if ip not in used:
                used[ip] = rt.uid
                return ip
        raise RuntimeError(f"node {rt.node} ran out of pod IPs")

    def _next(self, rt: PodRuntime, gen: int, i: int) -> None:
        """Start container ``i`` — once: a container that restarts does not start the ones after it again."""
        if i >= len(rt.containers) or i < rt.next_to_start or self._alive(rt, gen) is None:
            return
        rt.next_to_start = i + 1
        if i == rt.n_init and rt.n_init:
            for app in rt.apps:
                if app.state == "waiting":
                    app.reason = "ContainerCreating"
            self.publish(rt)
        self._pull(rt, gen, i, lambda: self._create(rt, gen, i))

    def _pull(self, rt: PodRuntime, gen: int, i: int, then: Callable[[], None]) -> None:
        c = rt.containers[i]
        cache = self.images.setdefault(rt.node, set())
        policy = c.spec.get("imagePullPolicy", "IfNotPresent")
        if c.image in cache and policy != "Always":
            self._event(rt, "Normal", "Pulled", f'Container image "{c.image}" already present on machine')
            self.clock.after(0.05, then)
            return
        start = max(self.clock.t, self.pull_free.get(rt.node, 0.0))
        pulling = self.pulling.setdefault(rt.node, set())
        if c.image in cache or c.image in pulling:
            duration = self.rng.uniform(0.25, 0.8)  # Always: a registry round trip, layers cached
            size = self._image_size(c.image)
        else:
            size = self._image_size(c.image)
            duration = 0.3 + size / (self.rng.uniform(25, 60) * 1e6)
        self.pull_free[rt.node] = start + duration
        pulling.add(c.image)

        def begin():
            if self._alive(rt, gen) is None:
                return
            self._event(rt, "Normal", "Pulling", f'Pulling image "{c.image}"')

        def end():
            cache.add(c.image)
            pulling.discard(c.image)
            if self._alive(rt, gen) is None:
                return
            waited = self.clock.t - requested
            self._event(rt, "Normal", "Pulled",
                        f'Successfully pulled image "{c.image}" in {go_duration(duration)} '
                        f"({go_duration(waited)} including waiting). Image size: {size} bytes.")
            then()

        requested = self.clock.t
        self.clock.at(start, begin)
        self.clock.at(start + duration, end)

    def _image_size(self, image: str) -> int:
        r = random.Random(f"{self.cluster.seed}:image:{image}")
        return r.randrange(8_000_000, 180_000_000)

    def _create(self, rt: PodRuntime, gen: int, i: int) -> None:
        if self._alive(rt, gen) is None:
            return
        c = rt.containers[i]
        c.started, c.startup_failures = False, 0
        c.container_id = "containerd://" + "%064x" % self._cid_rng.getrandbits(256)
        self._event(rt, "Normal", "Created", f"Created container: {c.name}")
        self.clock.after(START_DELAY, lambda: self._start(rt, gen, i))

    def _start(self, rt: PodRuntime, gen: int, i: int) -> None:
        if self._alive(rt, gen) is None:
            return
        c = rt.containers[i]
        c.state, c.reason, c.started_at = "running", "", self.clock.t
        self._event(rt, "Normal", "Started", f"Started container {c.name}")
        if c.init:
            self.publish(rt)
            run = self.run_hint(c.image, c.spec)
            run = self.rng.uniform(*INIT_RUN) if run is None else run
            self.clock.after(run, lambda: self._finish_init(rt, gen, i))
            return
        hint = self.startup_hint(c.image)
        c.app_ready_at = self.clock.t + (self.rng.uniform(1.0, 3.0) if hint is None else hint)
        post_start = ((c.spec.get("lifecycle") or {}).get("postStart") or {}).get("exec") or {}
        c.blocks_next = any("linkerd-await" in str(part) for part in post_start.get("command") or [])
        startup = c.spec.get("startupProbe")
        if startup:
            # the kubelet starts the next init container only once a native sidecar's startup probe passed
            c.blocks_next = c.blocks_next or c.sidecar
            delay = max(0, startup.get("initialDelaySeconds", 0)) + self.rng.uniform(0.0, 0.2)
            self.clock.after(delay, lambda: self._startup_probe(rt, gen, i))
            self.publish(rt)
        else:
            c.started = True
            self._readiness(rt, gen, i)
        if rt.restart_policy != "Always" and c.name not in self.long_running and not c.sidecar:
            run = self.run_hint(c.image, c.spec)
            run = self.rng.uniform(8.0, 20.0) if run is None else run
            self.clock.after(run, lambda: self._exit(rt, gen, i, 0))
        if not c.blocks_next:
            self._next(rt, gen, i + 1)

    def _readiness(self, rt: PodRuntime, gen: int, i: int) -> None:
        """Readiness probing begins (after the startup probe, when there is one)."""
        c = rt.containers[i]
        probe = c.spec.get("readinessProbe")
        if probe:
            delay = max(0, probe.get("initialDelaySeconds", 0)) + self.rng.uniform(0.0, 0.5)
            self.clock.after(delay, lambda: self._probe(rt, gen, i))
            self.publish(rt)
        else:
            self._became_ready(rt, gen, i)

    def _startup_probe(self, rt: PodRuntime, gen: int, i: int) -> None:
        """``startupProbe``: until it passes the container is not started and readiness is not probed.

        Linkerd's proxy probes ``/ready`` here, so its start waits for identity like its readiness does.
        """
        pod = self._alive(rt, gen)
        c = rt.containers[i]
        if pod is None or c.state != "running" or c.started:
            return
        gate = self.readiness_gates.get(c.name)
        if self.clock.t >= (c.app_ready_at or 0) and (gate is None or gate(pod)):
            c.started = True
            self.publish(rt)
            if c.blocks_next and c.sidecar:
                c.blocks_next = False
                self._next(rt, gen, i + 1)
            self._readiness(rt, gen, i)
            return
        probe = c.spec["startupProbe"]
        self._event(rt, "Warning", "Unhealthy", "Startup probe failed: " + self._probe_error(rt, c, gated=gate is not None, key="startupProbe"))
        c.startup_failures += 1
        if c.startup_failures >= probe.get("failureThreshold", 3):
            # the kubelet gives up on this start: it kills the container, which restarts (always, for a sidecar)
            self._event(rt, "Normal", "Killing", f"Container {c.name} failed startup probe, will be restarted")
            c.state, c.ready, c.exit_code, c.finished_at, c.reason = "terminated", False, 137, self.clock.t, "Error"
            if c.sidecar or rt.restart_policy != "Never":
                self._restart_later(rt, gen, i)
            self.publish(rt)
            return
        self.clock.after(probe.get("periodSeconds", 10), lambda: self._startup_probe(rt, gen, i))

    def _finish_init(self, rt: PodRuntime, gen: int, i: int) -> None:
        if self._alive(rt, gen) is None:
            return
        c = rt.containers[i]
        c.state, c.reason, c.exit_code, c.finished_at = "terminated", "Completed", 0, self.clock.t
        self.publish(rt)
        self._next(rt, gen, i + 1)

    def _probe(self, rt: PodRuntime, gen: int, i: int) -> None:
        pod = self._alive(rt, gen)
        c = rt.containers[i]
        if pod is None or c.state != "running" or c.ready:
            return
        gate = self.readiness_gates.get(c.name)
        ok = self.clock.t >= (c.app_ready_at or 0) and (gate is None or gate(pod))
        if ok:
            self._became_ready(rt, gen, i)
            return
        self._event(rt, "Warning", "Unhealthy", "Readiness probe failed: " + self._probe_error(rt, c, gated=gate is not None))
        period = c.spec["readinessProbe"].get("periodSeconds", 10)
        self.clock.after(period, lambda: self._probe(rt, gen, i))

    def _probe_error(self, rt: PodRuntime, c: ContainerRuntime, gated: bool, key: str = "readinessProbe") -> str:
        probe = c.spec[key]
        if gated and self.clock.t >= (c.app_ready_at or 0):
            return "HTTP probe failed with statuscode: 503"
        for key in ("httpGet", "tcpSocket"):
            if key in probe:
                port = probe[key].get("port")
                if isinstance(port, str) and not port.isdigit():
                    port = next((p.get("containerPort") for p in c.spec.get("ports") or [] if p.get("name") == port), port)
                if key == "httpGet":
                    return (f'Get "http://{rt.ip}:{port}{probe[key].get("path", "/")}": dial tcp {rt.ip}:{port}: '
                            "connect: connection refused")
                return f"dial tcp {rt.ip}:{port}: connect: connection refused"
        if "exec" in probe:
            return "command failed: exit status 1"
        return "connection refused"

    def _became_ready(self, rt: PodRuntime, gen: int, i: int) -> None:
        c = rt.containers[i]
        c.ready = True
        self.publish(rt)
        self._start_http_probes(rt, gen, i)
        if c.blocks_next:
            c.blocks_next = False
            self._next(rt, gen, i + 1)

    # -- HTTP probes over the network ----------------------------------------------------------------
    def _start_http_probes(self, rt: PodRuntime, gen: int, i: int) -> None:
        """Send the container's HTTP liveness and readiness probes on their schedules while it runs."""
        c = rt.containers[i]
        c.probing += 1
        run = c.probing
        if c.name in self.local_probes:
            return
        for key in ("livenessProbe", "readinessProbe"):
            probe = c.spec.get(key) or {}
            get = probe.get("httpGet")
            if not get or str(get.get("scheme") or "HTTP").upper() != "HTTP":
                continue  # exec and TCP probes never reach the proxy as HTTP; HTTPS is opaque TLS to it
            period = max(1, int(probe.get("periodSeconds", 10) or 10))
            # the first one a random part of a period in (the prober's start jitter)
            self.clock.after(self._probe_rng.uniform(0.0, period),
                             lambda get=get, period=period: self._http_probe(rt, gen, i, run, get, period))

    def _http_probe(self, rt: PodRuntime, gen: int, i: int, run: int, get: dict, period: int) -> None:
        pod = self._alive(rt, gen)
        c = rt.containers[i]
        if pod is None or c.state != "running" or c.probing != run or rt.terminating:
            return
        port = get.get("port")
        if isinstance(port, str) and not port.isdigit():
            port = next((p.get("containerPort") for p in c.spec.get("ports") or [] if p.get("name") == port), None)
        if port is not None and self.http_probe is not None and rt.ip:
            if rt.node_ip is None:
                rt.node_ip = self.cluster.node_ip(rt.node)
            self.http_probe(pod, int(port), str(get.get("path") or "/"), rt.node_ip)
        self.clock.after(period, lambda: self._http_probe(rt, gen, i, run, get, period))

    def _exit(self, rt: PodRuntime, gen: int, i: int, code: int) -> None:
        if self._alive(rt, gen) is None:
            return
        c = rt.containers[i]
        if c.state != "running":
            return
        c.state, c.ready, c.exit_code, c.finished_at = "terminated", False, code, self.clock.t
        c.reason = "Completed" if code == 0 else "Error"
        if code != 0 and rt.restart_policy in ("Always", "OnFailure"):
            self._restart_later(rt, gen, i)
        elif all(a.state == "terminated" for a in rt.apps):
            for sidecar in rt.sidecars:  # the app is done: the kubelet stops the native sidecars
                if sidecar.state == "running":
                    sidecar.state, sidecar.ready, sidecar.exit_code, sidecar.finished_at = "terminated", False, 0, self.clock.t
                    sidecar.reason = "Completed"
        self.publish(rt)

    def _restart_later(self, rt: PodRuntime, gen: int, i: int) -> None:
        c = rt.containers[i]
        c.last_state = {"terminated": {"exitCode": c.exit_code, "reason": c.reason,
                                       "startedAt": rfc3339(c.started_at), "finishedAt": rfc3339(self.clock.t),
                                       "containerID": c.container_id}}
        backoff = 0.0 if c.restarts == 0 else min(300.0, 10.0 * 2 ** (c.restarts - 1))
        c.restarts += 1
        if backoff:
            c.state, c.reason = "waiting", "CrashLoopBackOff"
            self._event(rt, "Warning", "BackOff", f"Back-off restarting failed container {c.name} in pod {rt.name}_{rt.namespace}({rt.uid})")
        self.clock.after(backoff + 0.2, lambda: self._create(rt, gen, i))

    def kill_container(self, pod: dict, container: str, *, exit_code: int = 137, reason: str = "Error") -> None:
        """Make a running container exit (a crash, an OOM kill); the restart policy decides what follows."""
        rt = self.pods.get(pod["metadata"]["uid"])
        if rt is None or rt.terminating:
            return
        for i, c in enumerate(rt.containers):
            if c.name == container and c.state == "running":
                c.state, c.ready, c.exit_code, c.finished_at, c.reason = "terminated", False, exit_code, self.clock.t, reason
                if rt.restart_policy == "Always" or (rt.restart_policy == "OnFailure" and exit_code):
                    self._restart_later(rt, rt.gen, i)
                self.publish(rt)
                return
        raise ValueError(f"pod {rt.name} has no running container {container!r}")

    # -- termination ------------------------------------------------------------------------------
    def _terminate(self, rt: PodRuntime, pod: dict) -> None:
        rt.terminating = True
        rt.gen += 1
        for c in rt.apps + rt.sidecars[::-1]:  # native sidecars stop after the app, in reverse order
            if c.state == "running":
                self.cluster.recorder.record(pod, "Normal", "Killing", f"Stopping container {c.name}",
                                           source="kubelet", host=rt.node)
            c.ready = False
        self.publish(rt)
        grace = (pod.get("metadata") or {}).get("deletionGracePeriodSeconds", 30)
        delay = min(float(grace), self.rng.uniform(*STOP_DELAY))
        self.clock.after(delay, lambda: self._gone(rt))

    def _gone(self, rt: PodRuntime) -> None:
        self.pods.pop(rt.uid, None)
        if rt.ip:
            self.ips.get(rt.node, {}).pop(rt.ip, None)
        pod = self._pod(rt)
        if pod is not None:
            self.api.remove(self.pod_type, rt.namespace, rt.name)

    def runtime(self, pod: dict) -> PodRuntime | None:
        return self.pods.get(pod["metadata"]["uid"])
