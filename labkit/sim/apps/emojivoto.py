"""Emojivoto (BuoyantIO/emojivoto v8–v12): web, emoji-svc, voting-svc, vote-bot.

Behaviour follows the app's source (see reference/labs.md §5.4):

* ``emojivoto-web`` (``web/web.go``): HTTP on ``WEB_PORT``; ``/api/list`` calls
  emoji ``ListAll``; ``/api/vote?choice=`` answers 400 for an empty choice,
  calls emoji ``FindByShortcode`` (400 when the emoji is unknown), then voting
  ``Vote<Name>`` and answers 500 with a JSON error when that RPC fails;
  ``/api/leaderboard`` calls voting ``Results`` then ``FindByShortcode`` once
  per result; every other path falls through Go's ServeMux to the index page.
* ``emojivoto-emoji-svc`` / ``emojivoto-voting-svc``: gRPC on ``GRPC_PORT``
  (Prometheus metrics on ``PROM_PORT``).  ``VoteDoughnut`` returns an error,
  i.e. gRPC status 2 (Unknown), on *every* call in v8–v11; from v12 it fails
  only with probability ``FAILURE_RATE`` (default 0) and every vote first
  sleeps ``ARTIFICIAL_DELAY``.
* ``emojivoto-vote-bot`` (the web image run with command ``emojivoto-vote-bot``,
  ``cmd/vote-bot/main.go``): forever: sleep, ``GET /api/list``, then
  ``GET /api/vote?choice=…`` — ``:doughnut:`` with probability 0.15, otherwise
  a uniformly random shortcode; requests go to ``WEB_HOST`` (Host header
  ``HOST_OVERRIDE`` when set).  The sleep is ``1s / REQUEST_RATE``:
  ``REQUEST_RATE`` only exists in the bot since 2022 (after v11, which sleeps
  a fixed 1s), but the model honours it for every version so load can be
  scaled (the data plane benchmark uses it); unset it is 1, i.e. v11's 1 s.

FindByShortcode's request message is not carried by the mesh, so web decides
"unknown emoji" from the emoji list both services are built from (the list is
compiled into emoji-svc and identical in every version), after making the
FindByShortcode call whose latency and result it observes.
"""
from __future__ import annotations

import json
from functools import lru_cache
from urllib.parse import parse_qs

from .base import TABLE_BITS, App, Dist, Spec, go_duration, ruby_to_f
from .model import LAST, Response, call, request_body, request_to, response, transport_error

# The 99 emoji of emoji-svc's list, in its order (doughnut 3rd, poop last),
# with their unicode characters.
EMOJI: tuple[tuple[str, str], ...] = (
    (":joy:", "😂"), (":sunglasses:", "😎"), (":doughnut:", "🍩"),
    (":stuck_out_tongue_winking_eye:", "😜"), (":money_mouth_face:", "🤑"), (":flushed:", "😳"),
    (":mask:", "😷"), (":nerd_face:", "🤓"), (":ghost:", "👻"), (":skull_and_crossbones:", "☠️"),
    (":heart_eyes_cat:", "😻"), (":hear_no_evil:", "🙉"), (":see_no_evil:", "🙈"),
    (":speak_no_evil:", "🙊"), (":boy:", "👦"), (":girl:", "👧"), (":man:", "👨"), (":woman:", "👩"),
    (":older_man:", "👴"), (":policeman:", "👮"), (":guardsman:", "💂"),
    (":construction_worker_man:", "👷"), (":prince:", "🤴"), (":princess:", "👸"),
    (":man_in_tuxedo:", "🤵"), (":bride_with_veil:", "👰"), (":mrs_claus:", "🤶"), (":santa:", "🎅"),
    (":turkey:", "🦃"), (":rabbit:", "🐇"), (":no_good_woman:", "🙅"), (":ok_woman:", "🙆"),
    (":raising_hand_woman:", "🙋"), (":bowing_man:", "🙇"), (":man_facepalming:", "🤦‍♂️"),
    (":woman_shrugging:", "🤷‍♀️"), (":massage_woman:", "💆"), (":walking_man:", "🚶"),
    (":running_man:", "🏃"), (":dancer:", "💃"), (":man_dancing:", "🕺"), (":dancing_women:", "👯"),
    (":rainbow:", "🌈"), (":skier:", "⛷"), (":golfing_man:", "🏌️"), (":surfing_man:", "🏄"),
    (":basketball_man:", "⛹️"), (":biking_man:", "🚴"), (":point_up_2:", "👆"),
    (":vulcan_salute:", "🖖"), (":metal:", "🤘"), (":call_me_hand:", "🤙"), (":thumbsup:", "👍"),
    (":wave:", "👋"), (":clap:", "👏"), (":raised_hands:", "🙌"), (":pray:", "🙏"), (":dog:", "🐶"),
    (":cat2:", "🐈"), (":pig:", "🐷"), (":hatching_chick:", "🐣"), (":snail:", "🐌"),
    (":bacon:", "🥓"), (":pizza:", "🍕"), (":taco:", "🌮"), (":burrito:", "🌯"), (":ramen:", "🍜"),
    (":champagne:", "🍾"), (":tropical_drink:", "🍹"), (":beer:", "🍺"), (":tumbler_glass:", "🥃"),
    (":world_map:", "🗺"), (":beach_umbrella:", "🏖"), (":mountain_snow:", "🏔"),
    (":camping:", "🏕"), (":steam_locomotive:", "🚂"), (":flight_departure:", "🛫"),
    (":rocket:", "🚀"), (":star2:", "🌟"), (":sun_behind_small_cloud:", "🌥"),
    (":cloud_with_rain:", "🌧"), (":fire:", "🔥"), (":jack_o_lantern:", "🎃"), (":balloon:", "🎈"),
    (":tada:", "🎉"), (":trophy:", "🏆"), (":iphone:", "📱"), (":pager:", "📟"), (":fax:", "📠"),
    (":bulb:", "💡"), (":money_with_wings:", "💸"), (":crystal_ball:", "🔮"), (":underage:", "🔞"),
    (":interrobang:", "⁉️"), (":100:", "💯"), (":checkered_flag:", "🏁"),
    (":crossed_swords:", "⚔️"), (":floppy_disk:", "💾"), (":poop:", "💩"),
)
SHORTCODES: tuple[str, ...] = tuple(s for s, _ in EMOJI)
UNICODE = dict(EMOJI)
DOUGHNUT = ":doughnut:"

EMOJI_SERVICE = "/emojivoto.v1.EmojiService/"
VOTING_SERVICE = "/emojivoto.v1.VotingService/"
LIST_ALL = EMOJI_SERVICE + "ListAll"
FIND_BY_SHORTCODE = EMOJI_SERVICE + "FindByShortcode"
RESULTS = VOTING_SERVICE + "Results"


def vote_method(shortcode: str) -> str:
    """``:point_up_2:`` → ``VotePointUp2``: how the proto names each vote RPC."""
    return "Vote" + "".join(p.capitalize() for p in shortcode.strip(":").split("_"))


# web's switch: the shortcodes it knows a Vote RPC for (``:relaxed:`` has one but
# is not in the emoji list, so it is never reached).
VOTE_PATH: dict[str, str] = {s: VOTING_SERVICE + vote_method(s) for s in SHORTCODES + (":relaxed:",)}
SHORTCODE_OF_PATH: dict[str, str] = {p: s for s, p in VOTE_PATH.items()}
# "/api/vote?choice=:joy:" → (shortcode, Vote RPC path, FindByShortcode request bytes)
VOTE_FAST: dict[str, tuple[str, str, int]] = {
    f"/api/vote?choice={s}": (s, VOTE_PATH[s], len(s) + 7) for s in SHORTCODES}

# Bodies computed once: what web's handlers write.
LIST_JSON = json.dumps([{"shortcode": s, "unicode": u} for s, u in EMOJI], ensure_ascii=False,
                       separators=(",", ":")) + "\n"
LIST_JSON_BYTES = len(LIST_JSON.encode())
LIST_HEADERS = {"content-type": "application/json; charset=UTF-8"}     # shared: never mutate
LIST_PB_BYTES = sum(len(s.encode()) + len(u.encode()) + 6 for s, u in EMOJI)
_INDEX_TEMPLATE = """
\t<!DOCTYPE html>
\t<html>
\t\t<head>
\t\t\t<meta charset="UTF-8">
\t\t\t<title>Emoji Vote</title>
\t\t\t<link rel="icon" href="/img/favicon.ico">
\t\t</head>
\t\t<body>
\t\t\t<div id="motd" class="motd">{motd}</div>
\t\t\t<div id="main" class="main"></div>
\t\t</body>
\t\t\t<script type="text/javascript" src="/js" async></script>
\t</html>"""
JS_BUNDLE_BYTES = 1_142_000
FAVICON_BYTES = 15_086

GRPC_CODES = {0: "OK", 1: "Canceled", 2: "Unknown", 3: "InvalidArgument", 4: "DeadlineExceeded",
              5: "NotFound", 7: "PermissionDenied", 8: "ResourceExhausted", 12: "Unimplemented",
              13: "Internal", 14: "Unavailable", 16: "Unauthenticated"}


@lru_cache(maxsize=256)
def _json_error(message: str) -> str:
    """web's ``writeError`` body (cached: a failing RPC fails with the same few messages thousands of times)."""
    return json.dumps({"error": message}) + "\n"


def rpc_error(resp: Response) -> str | None:
    """The Go client's error text for a failed unary call, or None when it succeeded.

    gRPC failures arrive as HTTP 200 with a non-zero ``grpc_status``; an HTTP
    error status (a proxy's 503/504) maps the way grpc-go maps it.
    """
    failure = transport_error(resp)
    if failure is not None:
        return f"rpc error: code = Unavailable desc = {failure}"
    if resp.status != 200:
        code = {400: 13, 401: 16, 403: 7, 404: 12, 429: 14, 502: 14, 503: 14, 504: 14}.get(resp.status, 2)
        return (f"rpc error: code = {GRPC_CODES[code]} desc = unexpected HTTP status code received "
                f"from server: {resp.status}")
    if resp.grpc_status:
        body = resp.body
        if body is None:       # dropped by the data plane: the server's own response (see model.LAST)
            src = LAST[0]
            if src is not None and src.status == resp.status and src.grpc_status == resp.grpc_status:
                body = src.body
        desc = body if isinstance(body, str) else ""
        return f"rpc error: code = {GRPC_CODES.get(resp.grpc_status, str(resp.grpc_status))} desc = {desc}"
    if resp.error:
        return f"rpc error: code = Internal desc = {resp.error}"
    return None


def version_number(tag: str) -> int:
    return int(tag.lstrip("v").split(".")[0])


def _grpc_target(host: str) -> str:
    return host.split("://", 1)[-1].rstrip("/")


# The time (ms) each service spends on the calls the vote-bot makes. Module globals, not class attributes: every
# request reads one, and Python 3.11 finds a class attribute through an instance the slow way.
WEB_OWN = Dist(0.45, 1.6, 0.12)     # web's handler time around its RPCs
EMOJI_LIST = Dist(0.35, 1.3, 0.08)  # ListAll
EMOJI_FIND = Dist(0.2, 0.8, 0.04)   # FindByShortcode
VOTING_VOTE = Dist(0.2, 0.9, 0.04)  # Vote<Name>


# -- web ------------------------------------------------------------------------------

class Web(App):
    """emojivoto-web: the HTTP front end over the two gRPC services."""

    READY_AFTER = 0.5
    RECORDS_LAST = False        # the hot path records model.LAST only where a body matters
    STATIC = Dist(0.25, 0.9, 0.05)

    def __init__(self, spec: Spec, tag: str):
        super().__init__(spec)
        self.name = f"emojivoto-web:{tag}"
        env = self.env
        port, emoji, voting = env.get("WEB_PORT", ""), env.get("EMOJISVC_HOST", ""), env.get("VOTINGSVC_HOST", "")
        if not (port and emoji and voting) and self.failure is None:
            self.failure = (f"WEB_PORT (currently [{port}]) EMOJISVC_HOST (currently [{emoji}]) and "
                            f"VOTINGSVC_HOST (currently [{voting}]) environment variables must me set.")
        self.listen(port)
        self.emoji = _grpc_target(emoji)
        self.voting = _grpc_target(voting)
        # The RPCs web's handlers make, built once: a vote's FindByShortcode and Vote<Name>, by the vote's path
        # (the bot's spelling) and by shortcode, and ListAll
        self._cast_by_choice = {
            s: (request_to(self.emoji, "POST", FIND_BY_SHORTCODE, True, None, n),
                request_to(self.voting, "POST", p, True, None, 5))
            for s, p, n in VOTE_FAST.values()}
        self._cast_by_path = {path: self._cast_by_choice[s] for path, (s, _, _) in VOTE_FAST.items()}
        self._list_all = request_to(self.emoji, "POST", LIST_ALL, True, None, 5)
        self.index_bundle = env.get("INDEX_BUNDLE", "")
        self.index_html = _INDEX_TEMPLATE.format(motd=env.get("MESSAGE_OF_THE_DAY", ""))
        self._routes = {
            "/api/vote": self._vote, "/api/list": self._list, "/api/leaderboard": self._leaderboard,
            "/js": self._js, "/img/favicon.ico": self._favicon,
        }

    def handle(self, req, ctx):
        path = req.path
        rpcs = self._cast_by_path.get(path)
        if rpcs is not None:                 # the bot's votes: one dict lookup to the handler
            return self._cast(rpcs, ctx)
        if path == "/api/list":
            resp = LAST[0] = self._list(req, ctx, path, -1)
            return resp
        q = path.find("?")
        route = path if q < 0 else path[:q]
        fn = self._routes.get(route)
        if fn is not None:
            resp = fn(req, ctx, path, q)
        elif route.startswith("/dist/"):
            resp = self._dist(route, ctx)
        else:
            resp = Response(200, self.STATIC.sample(ctx.rng), len(self.index_html), body=self.index_html,
                            headers={"content-type": "text/html"})
        LAST[0] = resp
        return resp

    def _cast(self, rpcs, ctx) -> Response:
        """FindByShortcode then Vote<Name> for a known emoji (``rpcs``: their requests)."""
        find, vote = rpcs
        lat = WEB_OWN.table[ctx.rng.getrandbits(TABLE_BITS)]
        send = ctx.send
        r = send(self.emoji, find)
        lat += r.latency_ms
        if r.grpc_status or r.status != 200 or r.error:
            text = _json_error(rpc_error(r))
            resp = LAST[0] = Response(500, lat, len(text), None, None, text)
            return resp
        r = send(self.voting, vote)
        lat += r.latency_ms
        if r.grpc_status or r.status != 200 or r.error:
            text = _json_error(rpc_error(r))
            resp = LAST[0] = Response(500, lat, len(text), None, None, text)
            return resp
        return response(200, lat, 0, None, None, "")

    def _vote(self, req, ctx, path, q):
        """/api/vote with any query spelling (the fast path handles the bot's)."""
        choice = ""
        if q >= 0:
            choice = (parse_qs(path[q + 1:]).get("choice") or [""])[0]
        if not choice and req.method == "POST":
            body = request_body(req)
            if isinstance(body, str):
                choice = (parse_qs(body).get("choice") or [""])[0]
        if choice in UNICODE:
            return self._cast(self._cast_by_choice[choice], ctx)
        lat = WEB_OWN.table[ctx.rng.getrandbits(TABLE_BITS)]
        if not choice:
            text = _json_error(f"Emoji choice [{choice}] is mandatory")
            return Response(400, lat, len(text), None, None, text)
        r = ctx.call(self.emoji, "POST", FIND_BY_SHORTCODE, grpc=True, body_bytes=len(choice) + 7)
        lat += r.latency_ms
        if r.grpc_status or r.status != 200 or r.error:
            text = _json_error(rpc_error(r))
            return Response(500, lat, len(text), None, None, text)
        text = _json_error(f"Choosen emoji shortcode [{choice}] doesnt exist")
        return Response(400, lat, len(text), None, None, text)

    def _list(self, req, ctx, path, q):
        r = ctx.send(self.emoji, self._list_all)
        lat = WEB_OWN.table[ctx.rng.getrandbits(TABLE_BITS)] + r.latency_ms
        if r.grpc_status or r.status != 200 or r.error:
            text = _json_error(rpc_error(r))
            return Response(500, lat, len(text), None, None, text)
        return response(200, lat, LIST_JSON_BYTES, None, None, LIST_JSON, LIST_HEADERS)

    def _leaderboard(self, req, ctx, path, q):
        r = call(ctx, self.voting, "POST", RESULTS, grpc=True, body_bytes=5)
        lat = WEB_OWN.sample(ctx.rng) + r.latency_ms
        err = rpc_error(r)
        if err is not None:
            text = _json_error(err)
            return Response(500, lat, len(text), body=text)
        results = r.body if isinstance(r.body, list) else []
        out = []
        for shortcode, votes in results:
            f = ctx.call(self.emoji, "POST", FIND_BY_SHORTCODE, grpc=True, body_bytes=len(shortcode) + 7)
            lat += f.latency_ms
            err = rpc_error(f)
            if err is not None:
                text = _json_error(err)
                return Response(500, lat, len(text), body=text)
            out.append({"shortcode": shortcode, "unicode": UNICODE.get(shortcode, ""), "votes": str(votes)})
        text = json.dumps(out, ensure_ascii=False, separators=(",", ":")) + "\n"
        return Response(200, lat, len(text.encode()), body=text)

    def _js(self, req, ctx, path, q):
        if not self.index_bundle:
            return Response(500, 0.3, 0, error="handler panic: open : no such file or directory")
        return Response(200, 2.5 + self.STATIC.sample(ctx.rng), JS_BUNDLE_BYTES)

    def _favicon(self, req, ctx, path, q):
        return Response(200, self.STATIC.sample(ctx.rng), FAVICON_BYTES)

    def _dist(self, route, ctx):
        if route == "/dist/index_bundle.js":
            return Response(200, 2.5 + self.STATIC.sample(ctx.rng), JS_BUNDLE_BYTES)
        return Response(404, self.STATIC.sample(ctx.rng), 19, body="404 page not found\n")


# -- gRPC services -----------------------------------------------------------------------------

class _GrpcService(App):
    READY_AFTER = 0.3
    RECORDS_LAST = False        # LAST is stored where a body matters (errors, Results)
    METRICS = "# HELP grpc_server_handled_total Total number of RPCs completed on the server.\n"

    def __init__(self, spec: Spec, tag: str, component: str):
        super().__init__(spec)
        self.name = f"emojivoto-{component}:{tag}"
        grpc_port = self.env.get("GRPC_PORT", "")
        if not grpc_port and self.failure is None:
            self.failure = (f"GRPC_PORT (currently [{grpc_port}]) environment variable must me set "
                            "to run the server.")
        self.listen(grpc_port, "grpc")
        self.listen(self.env.get("PROM_PORT"), "http")

    def _other(self, req, ctx) -> Response:
        path = req.path.split("?", 1)[0]
        if path == "/metrics":
            return Response(200, 0.8, len(self.METRICS), body=self.METRICS)
        if req.grpc or path.startswith("/emojivoto.v1."):
            return Response(200, 0.1, 0, grpc_status=12, body=f"unknown method {path.rsplit('/', 1)[-1]}")
        return Response(404, 0.1, 19, body="404 page not found\n")


class EmojiSvc(_GrpcService):
    """emoji-svc: the fixed list of 99 emoji, served over gRPC."""

    def __init__(self, spec: Spec, tag: str):
        super().__init__(spec, tag, "emoji-svc")

    def handle(self, req, ctx):
        path = req.path
        if path == FIND_BY_SHORTCODE:
            found = None
            if req.body is not None or req.headers:
                body = request_body(req)
                shortcode = body.get("Shortcode") if isinstance(body, dict) else body if isinstance(body, str) else None
                if shortcode is not None:
                    found = (shortcode, UNICODE[shortcode]) if shortcode in UNICODE else ()
            return response(200, EMOJI_FIND.table[ctx.rng.getrandbits(TABLE_BITS)], 24, 0, None, found)
        if path == LIST_ALL:
            return response(200, EMOJI_LIST.table[ctx.rng.getrandbits(TABLE_BITS)], LIST_PB_BYTES, 0, None, EMOJI)
        resp = LAST[0] = self._other(req, ctx)
        return resp


class VotingSvc(_GrpcService):
    """voting-svc: an in-memory poll; VoteDoughnut fails as each version makes it fail."""

    RESULTS_D = Dist(0.3, 1.1, 0.06)

    def __init__(self, spec: Spec, tag: str):
        super().__init__(spec, tag, "voting-svc")
        self.version = version_number(tag)
        self.votes: dict[str, int] = {}
        # v8–v11: `return nil, fmt.Errorf("ERROR")` unconditionally.
        self.doughnut_always_fails = self.version <= 11
        self.failure_rate = 0.0
        self.delay_ms = 0.0
        if self.version >= 12:
            self.failure_rate = ruby_to_f(self.env.get("FAILURE_RATE", ""))
            delay = self.env.get("ARTIFICIAL_DELAY", "")
            if delay:
                try:
                    self.delay_ms = go_duration(delay) * 1000.0
                except ValueError as e:
                    if self.failure is None:
                        self.failure = str(e)

    def handle(self, req, ctx):
        path = req.path
        shortcode = SHORTCODE_OF_PATH.get(path)
        if shortcode is not None:
            rng = ctx.rng
            lat = VOTING_VOTE.table[rng.getrandbits(TABLE_BITS)]
            if shortcode == DOUGHNUT:
                if self.doughnut_always_fails or (self.failure_rate > 0 and rng.random() < self.failure_rate):
                    resp = LAST[0] = response(200, lat, 0, 2, None, "ERROR")
                    return resp
            votes = self.votes
            votes[shortcode] = votes.get(shortcode, 0) + 1
            return response(200, lat + self.delay_ms, 0, 0)
        if path == RESULTS:
            ranked = sorted(self.votes.items(), key=lambda kv: (-kv[1], kv[0]))
            resp = LAST[0] = Response(200, self.RESULTS_D.sample(ctx.rng), 8 + 24 * len(ranked), grpc_status=0,
                                      body=ranked)
            return resp
        resp = LAST[0] = self._other(req, ctx)
        return resp


# -- vote-bot -------------------------------------------------------------------------------

VOTE_PATHS = {s: p for p, (s, _, _) in VOTE_FAST.items()}    # the same string objects: hashes cached
VOTE_LOG = {s: f"✔ Voting for {s}" for s in SHORTCODES}       # the bot's log line per choice, formatted once


class VoteBot(App):
    """The load generator: one list + one vote per iteration."""

    READY_AFTER = 0.2

    def __init__(self, spec: Spec, tag: str):
        super().__init__(spec)
        self.name = f"emojivoto-vote-bot:{tag}"
        self.argv = spec.argv(["emojivoto-web"])
        env = self.env
        self.web_host = env.get("WEB_HOST", "")
        if not self.web_host and self.failure is None:
            self.failure = "WEB_HOST environment variable must me set"
        self.target = self.web_host
        override = env.get("HOST_OVERRIDE", "")
        self.headers = {"host": override} if override else None
        rate = ruby_to_f(env.get("REQUEST_RATE", "")) if env.get("REQUEST_RATE") else 1.0
        self.sleep_s = 1.0 / rate if rate > 0 else 1.0
        # its two requests, built once (a vote's by choice)
        self._list_request = request_to(self.target, "GET", "/api/list", False, self.headers)
        self._vote_requests = {s: request_to(self.target, "GET", VOTE_PATHS[s], False, self.headers)
                               for s in SHORTCODES}
        self.lists = 0
        self.votes = 0

    def start(self, ctx) -> None:
        super().start(ctx)
        if self.failure is None:
            ctx.schedule(self.sleep_s, self._iteration)

    def _iteration(self) -> None:
        if self.stopped:
            return
        ctx = self.bg
        r = ctx.send(self.target, self._list_request)
        self.lists += 1
        delay = r.latency_ms / 1000.0
        failure = transport_error(r) if r.error or r.status < 100 else None
        if failure is not None:
            ctx.log(f'Get "http://{self.web_host}/api/list": {failure}')
            ctx.schedule(delay + self.sleep_s, self._iteration)
            return
        if r.status != 200:
            # web's JSON error object does not decode into the bot's []*emoji
            ctx.log("json: cannot unmarshal object into Go value of type []*main.emoji")
            ctx.schedule(delay + self.sleep_s, self._iteration)
            return
        rng = ctx.rng
        if rng.random() < 0.15:
            choice = DOUGHNUT
        else:
            choice = SHORTCODES[int(rng.random() * len(SHORTCODES))]
        ctx.schedule(delay, lambda: self._vote(choice))

    def _vote(self, choice: str) -> None:
        if self.stopped:
            return
        ctx = self.bg
        ctx.log(VOTE_LOG[choice])
        r = ctx.send(self.target, self._vote_requests[choice])
        self.votes += 1
        failure = transport_error(r) if r.error or r.status < 100 else None
        if failure is not None:
            ctx.log(f'Get "http://{self.web_host}{VOTE_PATHS[choice]}": {failure}')
        ctx.schedule(r.latency_ms / 1000.0 + self.sleep_s, self._iteration)


def build(spec: Spec, component: str, tag: str) -> App:
    """component: "web" | "emoji-svc" | "voting-svc" (the image name's suffix)."""
    if component == "web":
        argv = spec.argv(["emojivoto-web"])
        if argv and argv[0].rsplit("/", 1)[-1] == "emojivoto-vote-bot":
            return VoteBot(spec, tag)
        return Web(spec, tag)
    if component == "emoji-svc":
        return EmojiSvc(spec, tag)
    return VotingSvc(spec, tag)
