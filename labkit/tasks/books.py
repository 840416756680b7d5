"""Labs 2 and 4's tasks on the books app: a retry, a timeout, a retry budget; a weighted split and its query."""
from __future__ import annotations

from labkit.durations import DurationError, seconds
from labkit.lookups import (get_or_none, is_number, missing, names_of, profile, profile_route, query_sum,
                            route_median_ms, stat_rows)
from labkit.tasks import grade_query, task

NS = "booksapp"
HEAD = "HEAD /authors/{id}.json"
PUT = "PUT /books/{id}.json"
#: The fields of a ServiceProfile route (Linkerd's ServiceProfile reference).
ROUTE_FIELDS = {"name", "condition", "responseClasses", "isRetryable", "timeout"}
#: A timeout must leave this much room above the route's median latency to let "nearly every" request through.
SLACK = 1.1


def _unknown_fields(route: dict) -> list[str]:
    out = []
    for key in sorted(set(route) - ROUTE_FIELDS):
        close = [f for f in ROUTE_FIELDS if f.lower() in (key.lower(), key.lower().replace("retriable", "retryable"))]
        out.append(f"route {route.get('name')!r} has a field {key!r} Linkerd does not know"
                   + (f" (the field is {close[0]!r})" if close else ""))
    return out


def _profile_route(mesh, service: str, name: str) -> tuple[dict, list[str]]:
    """The route ``name`` of ``service``'s profile, or the problems that say why it cannot be read."""
    prof = profile(mesh, service, NS)
    if not prof:
        return {}, [f"there is no ServiceProfile {service}.{NS}.svc.cluster.local (apply the profiles first)"]
    route = profile_route(prof, name)
    if not route:
        names = [r.get("name") for r in (prof.get("spec") or {}).get("routes") or []]
        return {}, [f"the {service} profile has no route {name!r} (its routes: {', '.join(map(str, names))})"]
    return route, []


@task("2.1", f"make {HEAD} retryable in the authors profile",
      f"kubectl -n {NS} edit sp/authors.{NS}.svc.cluster.local   # add isRetryable: true to the route",
      "labkit.steps.edit_route(mesh, service, namespace, route_name, field=value) edits one route of a profile.",
      f"The route is named exactly {HEAD!r}; the field is isRetryable, a boolean.", undone_later=True)
def retry_head(mesh) -> list[str]:
    prof = profile(mesh, "authors", NS)
    route, problems = _profile_route(mesh, "authors", HEAD)
    if problems:
        return problems
    problems = [p for r in (prof.get("spec") or {}).get("routes") or [] for p in _unknown_fields(r)]
    value = route.get("isRetryable")
    if value is not True:
        elsewhere = [r["name"] for r in prof["spec"]["routes"] if r.get("isRetryable") is True]
        if elsewhere:
            problems.append(f"isRetryable is set on {', '.join(elsewhere)}, not on {HEAD}")
        else:
            problems.append(f"{HEAD} has no isRetryable: true")
    return problems


@task("2.2", f"give {PUT} a timeout that lets nearly every update through, yet still bounds the wait",
      f"kubectl -n {NS} edit sp/books.{NS}.svc.cluster.local   # set timeout: on the route",
      "25ms was too short: how long does books take to answer a PUT? Look at its LATENCY_P50 in "
      f"mesh.routes('svc/books', namespace='{NS}').",
      "Pick a little more than the slowest usual answer, and well under a second: a timeout that never fires "
      "protects nothing.", undone_later=True)
def timeout_put(mesh) -> list[str]:
    route, problems = _profile_route(mesh, "books", PUT)
    if problems:
        return problems
    raw = route.get("timeout")
    if raw in (None, ""):
        return [f"{PUT} has no timeout"]
    try:
        ms = seconds(raw) * 1000
    except (DurationError, ValueError, TypeError):
        return [f"timeout {raw!r} is not a duration Linkerd reads: write it like 90ms or 1s"]
    median = route_median_ms(mesh, NS, "books", PUT)
    floor = max(50.0, SLACK * median) if median is not None else 50.0
    if ms < floor:
        took = f"books takes about {median:.0f} ms to answer a PUT (median), so " if median is not None else ""
        return [f"{took}a {raw} timeout still cuts off most updates: give it at least {floor:.0f}ms"]
    if ms > 1000:
        return [f"a {raw} timeout is longer than any PUT takes, so it would never protect webapp: stay under 1s"]
    return []


@task("2.3", "cap authors' retries at 10% extra load, at most one retry a second beyond that",
      f"kubectl -n {NS} edit sp/authors.{NS}.svc.cluster.local   # spec.retryBudget",
      "A retry budget belongs to the whole profile (spec.retryBudget), not to one route.",
      "It has three fields, all required: retryRatio (0.1 = 10%), minRetriesPerSecond and ttl (e.g. 10s).",
      undone_later=True)
def retry_budget(mesh) -> list[str]:
    prof = profile(mesh, "authors", NS)
    if not prof:
        return [f"there is no ServiceProfile authors.{NS}.svc.cluster.local"]
    spec = prof.get("spec") or {}
    budget = spec.get("retryBudget")
    if not budget:  # one put on a route never gets here: the CRD's schema refuses it (unknown field)
        return ["the authors profile has no spec.retryBudget"]
    problems = []  # the CRD's schema requires all three fields: the API server refuses a budget without one
    ratio, floor = budget.get("retryRatio"), budget.get("minRetriesPerSecond")
    if isinstance(ratio, (int, float)) and not 0 < ratio <= 0.1:
        problems.append(f"retryRatio {ratio} allows {ratio:.0%} extra load; the task asks for at most 10% (0.1)")
    if isinstance(floor, (int, float)) and floor > 1:
        problems.append(f"minRetriesPerSecond {floor} lets {floor} retries a second through whatever the ratio; "
                        "the task asks for at most 1")
    return problems


def _routes_to(mesh, service: str) -> list[tuple[str, dict]]:
    """Every HTTPRoute in the namespace (either API group) whose parentRefs name the Service ``service``."""
    out = []
    for kind in ROUTE_KINDS:
        for name in names_of(mesh, kind, NS):
            route = get_or_none(mesh, kind, name, NS) or {}
            parents = (route.get("spec") or {}).get("parentRefs") or []
            if any(p.get("name") == service and p.get("kind") == "Service" for p in parents):
                out.append((kind, route))
    return out


def _matches_head(rule: dict) -> bool:
    matches = rule.get("matches") or [{}]
    return any((m.get("method") in (None, "HEAD")) for m in matches)


def _matches_everything(rule: dict) -> bool:
    """A rule any request matches: no matches, or one with no method and no path or the prefix /."""
    for m in rule.get("matches") or [{}]:
        path = m.get("path") or {}
        if "method" not in m and not m.get("headers") and not m.get("queryParams") and (
                not path or (path.get("type", "PathPrefix") == "PathPrefix" and path.get("value", "/") == "/")):
            return True
    return False


@task("2.4", "retry authors' failing HEAD the 2.20 way: an HTTPRoute on authors with retry annotations",
      f"kubectl -n {NS} apply -f authors-routes.yaml",
      "An HTTPRoute whose parentRef is the authors Service (group core, kind Service, name authors, port 7001), "
      "with a rule matching method HEAD.",
      "Retries are two annotations on the route: retry.linkerd.io/http: 5xx and retry.linkerd.io/limit: \"3\" "
      "(annotation values are strings).",
      "Once any route attaches to a Service, requests that match no route are refused with 404: add a second "
      "route, authors-rest, for everything else (path prefix /).",
      "A ServiceProfile with routes wins over HTTPRoutes: the lab removed them first.")
def retry_head_today(mesh) -> list[str]:
    routes = _routes_to(mesh, "authors")
    if not routes:
        return ["no HTTPRoute attaches to the authors Service (spec.parentRefs: group core, kind Service, "
                "name authors, port 7001)"]
    heads = [(k, r) for k, r in routes if any(_matches_head(rule) for rule in (r.get("spec") or {}).get("rules") or [])]
    if not heads:
        return [f"no rule of {', '.join(r['metadata']['name'] for _, r in routes)} matches HEAD requests"]
    kind, route = heads[0]
    name = route["metadata"]["name"]
    rules = [rule for _, r in routes for rule in (r.get("spec") or {}).get("rules") or []]
    if not any(_matches_everything(rule) for rule in rules):
        return ["once a route attaches to the authors Service, its proxies refuse every request no route matches "
                "(404): webapp's GET calls to authors now fail — add a route for the rest (path prefix /), without "
                "the retry annotations"]
    notes = (route.get("metadata") or {}).get("annotations") or {}
    labels = (route.get("metadata") or {}).get("labels") or {}
    problems = []
    on = str(notes.get("retry.linkerd.io/http", ""))
    if not on:
        where = " (it is a label; Linkerd reads annotations)" if "retry.linkerd.io/http" in labels else ""
        problems.append(f"route {name} has no retry.linkerd.io/http annotation{where}")
    elif not any(part == "5xx" or part.startswith("5") for part in on.replace(" ", "").split(",")):
        problems.append(f"retry.linkerd.io/http is {on!r}: it does not retry 5xx responses")
    limit = notes.get("retry.linkerd.io/limit")
    if limit is not None and not str(limit).isdigit():
        problems.append(f"retry.linkerd.io/limit {limit!r} is not a whole number: Linkerd ignores a route whose "
                        "annotations it cannot read")
    conditions = [c for p in (route.get("status") or {}).get("parents") or [] for c in p.get("conditions") or []]
    accepted = [c for c in conditions if c.get("type") == "Accepted"]
    if accepted and accepted[0].get("status") != "True":
        problems.append(f"the route is not accepted: {accepted[0].get('reason')} {accepted[0].get('message', '')}")
    if not problems:
        retries = query_sum(mesh, 'sum(increase(outbound_http_route_retry_requests_total{'
                                  f'namespace="{NS}", route_name="{name}"}}[5m]))')
        if retries <= 0:
            problems.append(f"no retries counted on {name} in the last 5 minutes yet: a ServiceProfile with routes "
                            "for authors would still win, or the traffic has not come by yet (mesh.wait('1m'))")
    return problems


# -- Lab 4 -------------------------------------------------------------------------------------------------

ROUTE_KINDS = ("httproute.gateway.networking.k8s.io", "httproute.policy.linkerd.io")
SPLIT = "error-split"


def _split_routes(mesh) -> list[tuple[str, dict]]:
    """Every HTTPRoute in the namespace (both API groups) that sends traffic to the error injector."""
    out = []
    for kind in ROUTE_KINDS:
        for name in names_of(mesh, kind, NS):
            route = get_or_none(mesh, kind, name, NS) or {}
            backends = [b for rule in (route.get("spec") or {}).get("rules") or []
                        for b in rule.get("backendRefs") or []]
            if any(b.get("name") == "error-injector" for b in backends):
                out.append((kind, route))
    return out


@task("4.1", f"split books' traffic 90/10 with the error injector: an HTTPRoute {SPLIT} on the books Service",
      f"kubectl -n {NS} apply -f error-split.yaml",
      "The route attaches to a Service through spec.parentRefs: group core, kind Service, name books, port 7002.",
      "One rule, two backendRefs with weights: books 90 and error-injector 10, both on port 7002.",
      "Either API group works with Linkerd: policy.linkerd.io/v1beta3 or gateway.networking.k8s.io/v1.",
      undone_later=True)
def split(mesh) -> list[str]:
    mine = [(k, r) for k, r in _split_routes(mesh) if r["metadata"]["name"] == SPLIT]
    if not mine:
        others = [r["metadata"]["name"] for _, r in _split_routes(mesh)]
        if others:
            return [f"the route that sends to error-injector is named {others[0]}; the task (and the rest of the "
                    f"lab) calls it {SPLIT}"]
        names = [n for kind in ROUTE_KINDS for n in names_of(mesh, kind, NS)]
        return [missing("HTTPRoute", SPLIT, NS, names) + " that sends traffic to error-injector"]
    kind, route = mine[0]
    spec = route.get("spec") or {}
    problems = []
    parents = spec.get("parentRefs") or []
    to_books = [p for p in parents if p.get("name") == "books" and p.get("kind") == "Service"
                and p.get("group", "core") in ("core", "")]
    if not to_books:
        if any(p.get("name") == "books" and p.get("kind", "Gateway") == "Gateway" for p in parents):
            # the API server defaults an omitted kind (and group) to a Gateway's, so that is what is stored
            problems.append("the parentRef to books names a Gateway (kind defaults to Gateway when left out): "
                            "add kind: Service and group: core")
        else:
            names = ", ".join(f"{p.get('kind', 'Gateway')}/{p.get('name')}" for p in parents) or "nothing"
            problems.append(f"the route attaches to {names}; it must attach to the books Service (parentRefs)")
    weights = {}
    for rule in spec.get("rules") or []:
        for b in rule.get("backendRefs") or []:
            weights[b.get("name")] = weights.get(b.get("name"), 0) + int(b.get("weight", 1))
    total = sum(weights.values())
    share = weights.get("error-injector", 0) / total if total else 0.0
    if "books" not in weights:
        problems.append("books is not among the backends: all traffic would go to the error injector")
    elif not 0.05 <= share <= 0.2:
        problems.append(f"error-injector gets {share:.0%} of the traffic; the task asks for 10% "
                        + ("(are the weights swapped?)" if share > 0.5 else "(weights 90 and 10)"))
    conditions = [c for p in (route.get("status") or {}).get("parents") or [] for c in p.get("conditions") or []]
    accepted = [c for c in conditions if c.get("type") == "Accepted"]
    if not problems and accepted and accepted[0].get("status") != "True":
        problems.append(f"the route is not accepted: {accepted[0].get('reason')} — {accepted[0].get('message', '')}")
    return problems


#: What 4.2's query must equal: webapp's outbound success to the books Service over the last minute.
SUCCESS_TO_BOOKS = ('sum(rate(response_total{{namespace="{ns}", deployment="webapp", direction="outbound", '
                    'dst_service="books", classification="success"}}[1m])) / sum(rate(response_total{{'
                    'namespace="{ns}", deployment="webapp", direction="outbound", dst_service="books"}}[1m]))')


@task("4.2", "write the PromQL for webapp's success rate to the books Service over the last minute",
      "linkerd viz -n booksapp stat deploy/webapp --to svc/books   # the SUCCESS column, as a query",
      "Linkerd's proxies count responses in response_total, with labels namespace, deployment, direction, "
      "dst_service and classification (success or failure).",
      "Successes per second divided by all responses per second: sum(rate(...[1m])) / sum(rate(...[1m])).",
      takes_answer=True)
def success_query(mesh, answer) -> list[str]:
    return grade_query(mesh, str(answer), SUCCESS_TO_BOOKS.format(ns=NS), what="webapp's success to books")


@task("4.3", "remove the TrafficSplit and the error injector, and see webapp recover",
      f"kubectl -n {NS} delete trafficsplit/{SPLIT} deploy/error-injector svc/error-injector",
      "mesh.delete takes kind/name (or a manifest path) and a namespace.",
      "After deleting, give the traffic a minute (mesh.wait('1m')): stat looks at the last minute.")
def cleanup(mesh) -> list[str]:
    problems = []
    if get_or_none(mesh, "trafficsplit", SPLIT, NS) is not None:
        problems.append(f"trafficsplit/{SPLIT} is still there")
    problems += [f"{kind.split('.')[0]} {route['metadata']['name']} still sends traffic to error-injector"
                 for kind, route in _split_routes(mesh)]
    for kind in ("deploy", "svc"):
        if get_or_none(mesh, kind, "error-injector", NS) is not None:
            problems.append(f"{kind}/error-injector is still there")
    if not problems:
        webapp = stat_rows(mesh, NS).get("webapp")
        success = None if webapp is None else webapp["SUCCESS"]
        if not is_number(success) or success < 0.99:
            shown = f"{success:.0%}" if is_number(success) else "no traffic"
            problems.append(f"webapp's last minute still shows {shown} success: wait a minute and check again")
    return problems
