"""Every "your turn" check accepts the task done and rejects plausible wrong answers, saying what is wrong.

Each test builds the lab's state on a fresh embedded mesh with the same calls
the lab makes, then gives the check a wrong answer a learner could well write
(a typo, the right setting in the wrong place, swapped weights, a percentage
where a fraction is asked…) and then the right one.
"""
from __future__ import annotations

import pytest

import labkit
from conftest import meshed_app, podinfo_under_flagger
from labkit import steps, tasks
from labkit.errors import ApplyError


def problems(mesh, key, answer=None) -> list[str]:
    return tasks.check(mesh, key, answer).problems


def joined(mesh, key, answer=None) -> str:
    return " | ".join(problems(mesh, key, answer))


@pytest.fixture(autouse=True)
def fresh_task_memory():
    """Remembered answers and passes belong to one kernel; each test is one."""
    tasks._answers.clear()
    tasks._passed.clear()


# -- Lab 0 --------------------------------------------------------------------------------------------------

HELLO = """
apiVersion: apps/v1
kind: Deployment
metadata: {{name: hello, namespace: {ns}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: hello}}}}
  template:
    metadata: {{labels: {{app: hello}}}}
    spec:
      containers: [{{name: nginx, image: "nginx:1.27", ports: [{{containerPort: 80}}]}}]
"""


def test_lab0_tasks_reject_a_typo_a_wrong_namespace_and_a_selector_that_matches_nothing():
    mesh = labkit.connect()
    mesh.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "sandbx"}}])
    assert "there is no namespace sandbox (there is sandbx: a typo?)" in joined(mesh, "0.1")
    mesh.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "sandbox"}}])
    assert problems(mesh, "0.1") == []

    mesh.apply(HELLO.format(ns="default", replicas=2))
    assert "deployment hello is in namespace default, not sandbox" in joined(mesh, "0.2")
    mesh.apply(HELLO.format(ns="sandbox", replicas=1))
    assert "spec.replicas is 1; the task asks for 2" in joined(mesh, "0.2")
    mesh.apply(HELLO.format(ns="sandbox", replicas=2))
    assert "replicas are ready so far" in joined(mesh, "0.2")  # just applied: the pods are starting
    mesh.wait("30s")
    assert problems(mesh, "0.2") == []

    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "hello", "namespace": "sandbox"},
               "spec": {"selector": {"app": "helo"}, "ports": [{"port": 80}]}}
    mesh.apply([service])
    assert "its selector {'app': 'helo'} matches none of hello's pods" in joined(mesh, "0.3")
    service["spec"]["selector"] = {"app": "hello"}
    mesh.apply([service])
    mesh.wait("5s")
    assert problems(mesh, "0.3") == []


# -- Lab 1 --------------------------------------------------------------------------------------------------

def test_lab1_tasks_tell_a_label_from_an_annotation_and_know_linkerds_policies():
    mesh = labkit.connect()
    mesh.install_gateway_api()
    mesh.install_linkerd(viz=False)
    mesh.wait_for(lambda m: m.check().ok, timeout="5m")
    assert "viz is not installed" in joined(mesh, "1.1")
    mesh.install_linkerd(viz=True)
    assert problems(mesh, "1.1")  # applied, not ready yet
    mesh.wait_for(lambda m: m.check().ok and m.check().extensions, timeout="5m")
    assert problems(mesh, "1.1") == []

    mesh.apply([{"apiVersion": "v1", "kind": "Namespace",
                 "metadata": {"name": "labs", "labels": {"linkerd.io/inject": "enabled"}}}])
    assert "linkerd.io/inject is a label on namespace labs; the injector reads the annotation" in joined(mesh, "1.2")
    mesh.patch("namespace", "labs", {"metadata": {"annotations": {"linkerd.io/inject": "enable"}}})
    assert "the injector meshes pods only for 'enabled'" in joined(mesh, "1.2")
    mesh.patch("namespace", "labs", {"metadata": {"annotations": {"linkerd.io/inject": "enabled"}}})
    assert problems(mesh, "1.2") == []

    key = "config.linkerd.io/default-inbound-policy"
    mesh.patch("namespace", "labs", {"metadata": {"annotations": {key: "authenticated"}}})
    assert "'authenticated' is not a policy Linkerd knows" in joined(mesh, "1.3")
    mesh.patch("namespace", "labs", {"metadata": {"annotations": {key: "cluster-authenticated"}}})
    assert "is a valid policy, but not the one asked for" in joined(mesh, "1.3")
    mesh.patch("namespace", "labs", {"metadata": {"annotations": {key: "all-authenticated"}}})
    assert problems(mesh, "1.3") == []


# -- Labs 2 and 4: the books app --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def books():
    """Lab 2 up to the retries: the books app meshed, profiles applied, pods restarted, two minutes of traffic."""
    mesh = meshed_app("booksapp", namespace="booksapp", wait="1m")
    for svc in ("webapp", "authors", "books"):
        mesh.apply([mesh.profile(svc, "booksapp", open_api=f"booksapp/openapi/{svc}.swagger")])
    steps.rollout_restart(mesh, ("authors", "books", "traffic", "webapp"), "booksapp")
    steps.wait_rolled_out(mesh, ("authors", "books", "traffic", "webapp"), "booksapp")
    mesh.wait("2m")
    return mesh


def test_retry_task_a_misspelt_field_is_refused_by_the_api_server_and_the_wrong_route_is_caught(books):
    head, get = "HEAD /authors/{id}.json", "GET /authors/{id}.json"
    sp = books.get("sp", "authors.booksapp.svc.cluster.local", "booksapp")
    try:
        with pytest.raises(ApplyError, match=r'strict decoding error: unknown field "spec\.routes\[\d+\]\.isRetriable"'):
            steps.edit_route(books, "authors", "booksapp", head, isRetriable=True)
        assert "isRetryable" in joined(books, "2.1"), "nothing was applied: the task is still to do"
        steps.edit_route(books, "authors", "booksapp", get, isRetryable=True)
        assert f"isRetryable is set on {get}, not on {head}" in joined(books, "2.1")
        steps.edit_route(books, "authors", "booksapp", get, isRetryable=None)
        steps.edit_route(books, "authors", "booksapp", head, isRetryable=True)
        assert problems(books, "2.1") == []
    finally:
        sp["metadata"].pop("resourceVersion", None)
        books.apply([sp])


def test_timeout_task_measures_the_route_and_rejects_too_short_and_too_long(books):
    put = "PUT /books/{id}.json"
    steps.edit_route(books, "books", "booksapp", put, timeout="25ms")
    text = joined(books, "2.2")
    assert "books takes about" in text and "a 25ms timeout still cuts off most updates" in text
    steps.edit_route(books, "books", "booksapp", put, timeout="10s")
    assert "never protect webapp" in joined(books, "2.2")
    steps.edit_route(books, "books", "booksapp", put, timeout="90ms")
    assert problems(books, "2.2") == []


class ProfileOnly:
    """A cluster that has one ServiceProfile and no metrics: what a real API server accepts that the embedded
    mesh's validation refuses (the ServiceProfile CRD does not check a timeout's syntax; Linkerd's controller does)."""

    def __init__(self, profile):
        self.profile = profile

    def get(self, kind, name, namespace=None):
        return self.profile

    def query(self, promql, time=None):
        import pandas as pd

        return pd.DataFrame({"value": []})


def test_timeout_task_names_a_timeout_that_is_not_a_duration():
    sp = {"spec": {"routes": [{"name": "PUT /books/{id}.json", "timeout": "ninety"}]}}
    assert "'ninety' is not a duration Linkerd reads" in joined(ProfileOnly(sp), "2.2")


def test_retry_budget_task_wants_it_on_the_profile_with_all_three_fields(books):
    sp = books.get("sp", "authors.booksapp.svc.cluster.local", "booksapp")
    original = sp["spec"].get("retryBudget")
    with pytest.raises(ApplyError, match=r'unknown field "spec\.routes\[\d+\]\.retryBudget"'):
        steps.edit_route(books, "authors", "booksapp", "HEAD /authors/{id}.json",
                         retryBudget={"retryRatio": 0.1, "minRetriesPerSecond": 1, "ttl": "10s"})
    sp = books.get("sp", "authors.booksapp.svc.cluster.local", "booksapp")
    sp["spec"]["retryBudget"] = {"retryRatio": 0.5, "minRetriesPerSecond": 10, "ttl": "10s"}
    books.apply([sp])
    text = joined(books, "2.3")
    assert "retryRatio 0.5 allows 50% extra load" in text
    assert "minRetriesPerSecond 10 lets 10 retries a second through" in text
    sp["spec"]["retryBudget"] = {"retryRatio": 0.1, "minRetriesPerSecond": 1, "ttl": "10s"}
    books.apply([sp])
    assert problems(books, "2.3") == []
    sp["spec"]["retryBudget"] = original
    books.apply([sp])


SPLIT = """
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {{name: {name}, namespace: booksapp}}
spec:
  parentRefs: [{parent}]
  rules:
  - backendRefs:
    - {{name: books, port: 7002, weight: {books}}}
    - {{name: error-injector, port: 7002, weight: {errors}}}
"""
PARENT = "{group: core, kind: Service, name: books, port: 7002}"


@pytest.fixture(scope="module")
def injected(books):
    books.apply("booksapp/failure-injection/error-injector.yml")
    steps.wait_rolled_out(books, "error-injector", "booksapp")
    return books


def test_split_task_rejects_a_gateway_parent_swapped_weights_and_another_name(injected):
    mesh = injected
    try:
        mesh.apply(SPLIT.format(name="error-split", parent="{name: books, port: 7002}", books=90, errors=10))
        # the CRD defaults a parentRef's kind to Gateway (group policy.linkerd.io), as on a cluster
        assert "the parentRef to books names a Gateway (kind defaults to Gateway when left out)" in joined(mesh, "4.1")
        mesh.apply(SPLIT.format(name="error-split", parent=PARENT, books=10, errors=90))
        assert "error-injector gets 90% of the traffic; the task asks for 10% (are the weights swapped?)" in \
            joined(mesh, "4.1")
        steps.delete_route(mesh, "error-split", "booksapp")
        mesh.apply(SPLIT.format(name="books-split", parent=PARENT, books=90, errors=10))
        assert "is named books-split; the task (and the rest of the lab) calls it error-split" in joined(mesh, "4.1")
        steps.delete_route(mesh, "books-split", "booksapp")
        mesh.apply(SPLIT.format(name="error-split", parent=PARENT, books=90, errors=10))
        assert problems(mesh, "4.1") == []
    finally:
        for name in ("error-split", "books-split"):
            steps.delete_route(mesh, name, "booksapp")


GOOD_QUERY = ('sum(rate(response_total{namespace="booksapp", deployment="webapp", direction="outbound", '
              'dst_service="books", classification="success"}[1m])) / sum(rate(response_total{namespace="booksapp", '
              'deployment="webapp", direction="outbound", dst_service="books"}[1m]))')


def test_query_task_runs_the_learners_promql_and_compares_it_with_the_mesh(injected):
    mesh = injected
    mesh.apply(SPLIT.format(name="error-split", parent=PARENT, books=90, errors=10))
    steps.rollout_restart(mesh, "webapp", "booksapp")  # its proxies read the route once the profile is gone
    mesh.delete("sp/books.booksapp.svc.cluster.local", "booksapp")
    steps.wait_rolled_out(mesh, "webapp", "booksapp")
    mesh.wait("2m")
    try:
        assert "no answer given yet" in joined(mesh, "4.2", "")
        assert "the query does not run" in joined(mesh, "4.2", "sum(rate(response_total[1m])")
        assert "that is a percentage; the task asks for a fraction" in joined(mesh, "4.2", f"100 * ({GOOD_QUERY})")
        raw = ('rate(response_total{namespace="booksapp", deployment="webapp", direction="outbound", '
               'dst_service="books"}[1m])')
        assert "series; webapp's success to books is one number: sum() them" in joined(mesh, "4.2", raw)
        inbound = GOOD_QUERY.replace('direction="outbound", dst_service="books"', 'direction="inbound"')
        assert "but webapp's success to books is" in joined(mesh, "4.2", inbound)
        assert problems(mesh, "4.2", GOOD_QUERY) == []
        # the answer is remembered for the lab's self-check
        assert problems(mesh, "4.2") == []
    finally:
        steps.delete_route(mesh, "error-split", "booksapp")


# -- Lab 5: emojivoto ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def emojivoto():
    mesh = meshed_app("emojivoto", namespace="emojivoto", wait="1m")
    steps.wait_rolled_out(mesh, ("emoji", "voting", "web", "vote-bot"), "emojivoto")
    mesh.wait("2m")
    return mesh


def test_voting_query_task_wants_the_inbound_side(emojivoto):
    good = ('sum(rate(response_total{namespace="emojivoto", deployment="voting", direction="inbound", '
            'classification="success"}[1m])) / sum(rate(response_total{namespace="emojivoto", deployment="voting", '
            'direction="inbound"}[1m]))')
    assert problems(emojivoto, "5.1", good) == []
    everything = good.replace('deployment="voting", ', "")
    assert "but voting's inbound success is" in joined(emojivoto, "5.1", everything)


def test_log_level_task_wants_the_pod_template_and_a_real_level(emojivoto):
    key = "config.linkerd.io/proxy-log-level"
    emojivoto.patch("deploy", "voting", {"metadata": {"annotations": {key: "debug"}}}, namespace="emojivoto")
    assert "is on the Deployment's own metadata; the injector reads the pod template's" in joined(emojivoto, "5.2")
    template = {"spec": {"template": {"metadata": {"annotations": {key: "verbose"}}}}}
    emojivoto.patch("deploy", "voting", template, namespace="emojivoto")
    assert "'verbose' is not a log level the proxy knows" in joined(emojivoto, "5.2")
    template["spec"]["template"]["metadata"]["annotations"][key] = "debug"
    emojivoto.patch("deploy", "voting", template, namespace="emojivoto")
    steps.wait_rolled_out(emojivoto, "voting", "emojivoto")
    assert problems(emojivoto, "5.2") == []


def test_uninject_task_keeps_vote_bot_running_and_everyone_else_meshed(emojivoto):
    assert "still runs linkerd-proxy" in joined(emojivoto, "5.3")
    emojivoto.uninject("deploy", namespace="emojivoto", name="vote-bot")
    steps.wait_rolled_out(emojivoto, "vote-bot", "emojivoto")
    assert problems(emojivoto, "5.3") == []
    emojivoto.uninject("deploy", namespace="emojivoto", name="web")
    steps.wait_rolled_out(emojivoto, "web", "emojivoto")
    assert "web lost its proxy too: only vote-bot leaves the mesh" in joined(emojivoto, "5.3")


# -- Lab 3: a MetricTemplate of the learner's own -----------------------------------------------------------

TEMPLATE = """
apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata: {{name: error-percentage, namespace: test}}
spec:
  provider: {{type: prometheus, address: "http://prometheus.linkerd-viz:9090"}}
  query: |
    {query}
"""
SUCCESS = ('sum(rate(response_total{{namespace="{{{{ namespace }}}}", deployment=~"{{{{ target }}}}", '
           'direction="inbound"{extra}}}[{{{{ interval }}}}]))')


def template(query: str) -> str:
    return TEMPLATE.format(query=query)


@pytest.fixture(scope="module")
def released():
    """Lab 3 after one promoted release: podinfo's canary has had traffic, and no response failed."""
    import labkit.canary as canary

    mesh = labkit.connect()
    steps.linkerd_ready(mesh)
    podinfo_under_flagger(mesh)
    steps.wait_canary_phase(mesh, "podinfo", "test", "Initialized")
    mesh.set_image("podinfo", "podinfod=ghcr.io/stefanprodan/podinfo:6.0.1", namespace="test")
    steps.wait_canary_phase(mesh, "podinfo", "test", "Progressing")
    canary.watch(mesh, "podinfo", "test", timeout="30m", out=lambda text: None)
    return mesh


def test_metric_template_task_catches_no_data_while_nothing_fails_and_a_field_flagger_lacks(released):
    mesh = released
    failures = SUCCESS.format(extra=', classification="failure"')
    everything = SUCCESS.format(extra="")
    mesh.apply(template(f"100 * {failures} / {everything}"))
    assert "returns no data" in joined(mesh, "3.1") and "sums to nothing, not 0" in joined(mesh, "3.1")
    successes = SUCCESS.format(extra=', classification="success"')
    mesh.apply(template(f"100 - 100 * {successes} / {everything}").replace("{{ interval }}", "{{ intervl }}"))
    assert 'Flagger could not render the query: template: error-percentage:1: function "intervl" not defined' \
        in joined(mesh, "3.1")
    mesh.apply(template(f"100 - 100 * {successes} / {everything}"))
    assert problems(mesh, "3.1") == []


def test_gate_task_wants_a_percentage_threshold_on_the_template(released):
    mesh = released
    metrics = mesh.canary("podinfo", "test")["spec"]["analysis"]["metrics"]

    def gate(**metric):
        mesh.patch("canary", "podinfo", {"spec": {"analysis": {"metrics": metrics + [
            {"name": "errors", "templateRef": {"name": "error-percentage", "namespace": "test"}, **metric}]}}},
            namespace="test")

    gate(thresholdRange={"max": 0.05}, interval="1m")
    assert "thresholdRange.max 0.05 is a percentage here" in joined(mesh, "3.2")
    gate(threshold=5, interval="1m")
    assert "the metric has no thresholdRange.max" in joined(mesh, "3.2")
    gate(thresholdRange={"max": 5}, interval="30s")
    assert "the metric's interval is '30s'; the task asks for 1m" in joined(mesh, "3.2")
    gate(thresholdRange={"max": 5}, interval="1m")
    assert problems(mesh, "3.2") == []


def test_release_task_sees_through_editing_the_primary(released):
    mesh = released
    mesh.set_image("podinfo-primary", "podinfod=ghcr.io/stefanprodan/podinfo:6.0.5", namespace="test")
    assert joined(mesh, "3.3").startswith("podinfo-primary was edited directly")


# -- the registry -------------------------------------------------------------------------------------------

def test_every_task_has_a_solution_file_hints_and_a_command(root):
    for t in tasks.TASKS.values():
        assert (root / "notebooks" / t.solution_file).is_file(), t.key
        assert t.hints and t.command, t.key
    assert {lab: len(tasks.of_lab(lab)) >= 3 for lab in range(6)} == {lab: True for lab in range(6)}


def test_an_unknown_task_names_the_labs_tasks():
    with pytest.raises(KeyError, match=r"no task '2.9'; the tasks are: 2.1, 2.2, 2.3"):
        tasks.get("2.9")


def test_hints_come_one_at_a_time_and_the_last_points_at_the_answer():
    tasks._hints_given.clear()
    first, second, third = tasks.hint("0.2"), tasks.hint("0.2"), tasks.hint("0.2")
    assert first.startswith("Hint 1/3 for 0.2") and second.startswith("Hint 2/3")
    assert third.startswith("Hint 3/3") and "solutions/00-t2.py" in third


def test_lab0_self_check_wants_the_kubernetes_linkerd_2_20_supports():
    import pandas as pd

    from labkit import selfcheck

    class OldCluster:
        backend = "kube"

        def nodes(self):
            return pd.DataFrame({"NAME": ["a", "b"], "STATUS": ["Ready", "Ready"], "VERSION": ["v1.30.4", "v1.31.0"]})

        def get(self, kind, name, namespace=None):
            raise labkit.NotFoundError(f"{kind} {name} not found")

    report = str(selfcheck.lab0(OldCluster()))
    assert "× Kubernetes 1.31 or newer  (too old for Linkerd: v1.30.4)" in report


def test_the_2_20_retry_task_catches_a_route_that_leaves_other_requests_unmatched():
    mesh = meshed_app("booksapp", namespace="booksapp", wait="1m")
    head_only = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                 "metadata": {"name": "authors-head", "namespace": "booksapp",
                              "annotations": {"retry.linkerd.io/http": "5xx", "retry.linkerd.io/limit": "three"}},
                 "spec": {"parentRefs": [{"group": "core", "kind": "Service", "name": "authors", "port": 7001}],
                          "rules": [{"matches": [{"method": "HEAD"}]}]}}
    mesh.apply([head_only])
    assert "refuse every request no route matches (404): webapp's GET calls to authors now fail" in joined(mesh, "2.4")
    rest = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "authors-rest", "namespace": "booksapp"},
            "spec": {"parentRefs": [{"group": "core", "kind": "Service", "name": "authors", "port": 7001}],
                     "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}]}]}}
    mesh.apply([rest])
    assert "retry.linkerd.io/limit 'three' is not a whole number" in joined(mesh, "2.4")
    head_only["metadata"]["annotations"]["retry.linkerd.io/limit"] = "3"
    mesh.apply([head_only])
    mesh.wait("2m")
    assert problems(mesh, "2.4") == []


def test_cleanup_task_wants_the_injector_gone_too_and_webapp_recovered(injected):
    mesh = injected
    mesh.install_smi()
    mesh.apply("booksapp/failure-injection/split-smi.yml")
    assert "trafficsplit/error-split is still there" in joined(mesh, "4.3")
    mesh.delete("trafficsplit/error-split", "booksapp")
    text = joined(mesh, "4.3")
    assert "deploy/error-injector is still there" in text and "svc/error-injector is still there" in text
