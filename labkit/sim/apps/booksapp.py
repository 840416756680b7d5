"""The books app (BuoyantIO/booksapp v0.0.3–v0.0.5) and its traffic generator.

One image, three Sinatra services chosen by the rake task in ``args``
(``prod:webapp`` on :7000, ``prod:authors`` on :7001, ``prod:books`` on :7002),
each with its own SQLite database (``DATABASE_URL=sqlite3:…`` is a file inside
the container, so every pod has its own rows; the seed is the repository's
``db/seeds.rb``: 10 authors, 16 books).  Behaviour from the source
(reference/labs.md §2.3):

* webapp renders HTML over ActiveResource calls to ``AUTHORS_SITE`` and
  ``BOOKS_SITE``; form POSTs answer 303 on success; any 5xx (or connection
  failure) from a resource call raises, and Sinatra answers 500
  (``<h1>Internal Server Error</h1>``, 30 bytes).
* books validates a book (create *and* update) with ``Author.exists?`` —
  ``HEAD /authors/{id}.json`` on authors; a 503 there raises, so books answers
  500 on ``POST /books.json`` / ``PUT /books/{id}.json``.
* authors deletes an author's books first (``GET /books.json?author_id=…``,
  then ``DELETE /books/{id}.json`` each) in ``before_destroy``.
* ``ext/failure_rate.rb``, in all three: when ``FAILURE_RATE`` is set, a HEAD
  request is answered 503 when ``rand(1.0) <= FAILURE_RATE`` (only authors
  sets it, to 0.5, in the manifest).

The traffic generator (``booksapp-traffic``, ``traffic/main.go``) waits
``-initial-delay`` (default 1m), repeats ``GET /reset`` until 204, then loops
the 10-step script, sleeping ``-sleep`` (default 100ms) after every request
and repeating every POST until it gets 303.  With FAILURE_RATE=0.5 that gives
≈ 10 successes per 13 webapp responses: ≈ 77% success.
"""
from __future__ import annotations

import json
from urllib.parse import parse_qsl, quote, urlparse

from .base import App, Dist, Spec, go_duration, go_duration_text, go_flags, ruby_to_f, split_target
from .model import Response, call, header, request_body, transport_error

SEED: tuple[tuple[str, tuple[tuple[str, int], ...]], ...] = (
    ("Alice Munro", (("Dear Life", 319),)),
    ("David Mitchell", (("Cloud Atlas", 529),)),
    ("Haruki Murakami", (("1Q84", 1184), ("Kafka on the Shore", 436))),
    ("James Baldwin", (("Giovanni's Room", 176), ("Fire Next Time, The", 141))),
    ("Margaret Atwood", ()),
    ("Michael Chabon", (("Telegraph Avenue", 468), ("Mysteries of Pittsburgh, The", 306))),
    ("N.K. Jemisin", (("Fifth Season, The", 512), ("Obelisk Gate, The", 448), ("Stone Sky, The", 464))),
    ("Neil Gaiman", (("American Gods", 588),)),
    ("P.D. James", (("Children of Men", 241),)),
    ("Ursula K. Le Guin", (("Left Hand of Darkness, The", 304), ("Dispossessed, The", 401))),
)

PORTS = {"webapp": 7000, "authors": 7001, "books": 7002}
ISE = "<h1>Internal Server Error</h1>"      # Sinatra's production 500 page: 30 bytes
NOT_FOUND = "<h1>Not Found</h1>"
SEED_TIME = "2018-03-27T18:30:00.000Z"


def seed_authors() -> dict[int, dict]:
    out = {}
    for i, (name, _) in enumerate(SEED, 1):
        first, last = name.split(" ", 1)
        out[i] = {"id": i, "first_name": first, "last_name": last,
                  "created_at": SEED_TIME, "updated_at": SEED_TIME}
    return out


def seed_books() -> dict[int, dict]:
    out, bid = {}, 0
    for aid, (_, books) in enumerate(SEED, 1):
        for title, pages in books:
            bid += 1
            out[bid] = {"id": bid, "title": title, "author_id": aid, "pages": pages,
                        "created_at": SEED_TIME, "updated_at": SEED_TIME}
    return out


def _json_len(obj) -> int:
    """Approximate JSON size without serialising on the hot path."""
    if isinstance(obj, list):
        return 2 + sum(_json_len(o) + 1 for o in obj)
    return 96 + sum(len(str(v)) for v in obj.values())


def form(body) -> dict[str, str]:
    """Request parameters from a form-encoded string, JSON text or a dict."""
    if body is None:
        return {}
    if isinstance(body, dict):
        return {k: ("" if v is None else str(v)) for k, v in body.items()}
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    text = str(body).strip()
    if text.startswith("{"):
        try:
            return {k: ("" if v is None else str(v)) for k, v in json.loads(text).items()}
        except (ValueError, AttributeError):
            return {}
    return dict(parse_qsl(text, keep_blank_values=True))


def _site(url: str) -> str | None:
    if not url:
        return None
    return split_target(url)[0]


class ResourceError(Exception):
    """An ActiveResource call that raised (5xx, 3xx, 4xx other than 404/422, connection error)."""


class NotFound(Exception):
    """ActiveResource::ResourceNotFound (404)."""


class _Calls:
    """One request's outgoing ActiveResource calls; sums their latency."""

    __slots__ = ("ctx", "ms")

    def __init__(self, ctx, ms: float):
        self.ctx, self.ms = ctx, ms

    def __call__(self, site: str | None, method: str, path: str, body=None) -> Response:
        if site is None:
            raise ResourceError("site not configured")
        nbytes = _json_len(body) if isinstance(body, dict) else 0
        r = call(self.ctx, site, method, path, headers={"accept": "application/json"}, body=body,
                 body_bytes=nbytes)
        self.ms += r.latency_ms
        failure = transport_error(r)
        if failure is not None:
            raise ResourceError(failure)
        if r.status == 404 or r.status == 410:
            raise NotFound(path)
        if r.status >= 300 and r.status != 422:
            raise ResourceError(str(r.status))
        return r


class _Sinatra(App):
    """What the three services share: routing by method + path segments,
    the FAILURE_RATE before-filter, 404/500 pages."""

    READY_AFTER = 6.0          # `bundle exec rake` boots Ruby + ActiveRecord
    HALT = Dist(1.8, 4.5, 0.6)          # the before-filter still runs Rack's middleware
    PING = Dist(0.6, 1.6, 0.2)
    role = ""

    def __init__(self, spec: Spec, tag: str):
        super().__init__(spec)
        self.name = f"booksapp-{self.role}:{tag}"
        self.argv = spec.argv(["bundle", "exec", "rake"])
        self.listen(PORTS[self.role])
        # ENV.key?("FAILURE_RATE") && Random.rand(1.0) <= FAILURE_RATE.to_f && request.head?
        self.failure_rate = ruby_to_f(self.env["FAILURE_RATE"]) if "FAILURE_RATE" in self.env else None

    def handle(self, req, ctx):
        method = req.method
        if method == "HEAD" and self.failure_rate is not None and ctx.rng.random() <= self.failure_rate:
            return Response(503, self.HALT.sample(ctx.rng), 0)
        path, _, query = req.path.partition("?")
        parts = path.split("/")
        self._ms = 1.0
        try:
            resp = self.route(method, parts, query, req, ctx)
        except (ResourceError, NotFound):
            resp = None
        if resp is None:
            return Response(500, self._ms, len(ISE), body=ISE, headers={"content-type": "text/html"})
        if method == "HEAD":
            resp.body = None
        return resp

    def route(self, method, parts, query, req, ctx) -> Response | None:
        raise NotImplementedError

    def not_found(self, ctx) -> Response:
        return Response(404, self.PING.sample(ctx.rng), len(NOT_FOUND), body=NOT_FOUND,
                        headers={"content-type": "text/html"})

    def json(self, status: int, ms: float, obj, headers: dict | None = None) -> Response:
        return Response(status, ms, _json_len(obj) if obj is not None else 0, body=obj,
                        headers=headers or {"content-type": "application/json"})

    _ms = 0.0       # latency of the request that raised (set before raising paths)


# -- authors --------------------------------------------------------------------------------------

class Authors(_Sinatra):
    role = "authors"
    LIST = Dist(3.0, 7.0, 1.0)
    SHOW = Dist(3.5, 8.0, 1.2)
    WRITE = Dist(8.0, 16.0, 3.0)
    DELETE = Dist(6.0, 12.0, 2.0)

    def __init__(self, spec: Spec, tag: str):
        super().__init__(spec, tag)
        self.rows = seed_authors()
        self.next_id = max(self.rows) + 1
        self.books_site = _site(self.env.get("BOOKS_SITE", ""))

    def route(self, method, parts, query, req, ctx):
        rng = ctx.rng
        n = len(parts)
        if n == 2 and parts[1] == "ping" and method in ("GET", "HEAD"):
            return Response(200, self.PING.sample(rng), 4, body="pong")
        if n == 2 and parts[1] == "authors.json":
            if method in ("GET", "HEAD"):
                filters = {k: v for k, v in parse_qsl(query) if k in ("id", "first_name", "last_name")}
                rows = [a for a in self.rows.values() if all(str(a[k]) == v for k, v in filters.items())]
                rows.sort(key=lambda a: a["last_name"].lower())
                return self.json(200, self.LIST.sample(rng), rows)
            if method == "POST":
                return self._create(form(request_body(req)), ctx)
        if n == 3 and parts[1] == "authors" and parts[2].endswith(".json"):
            aid = _int(parts[2][:-5])
            row = self.rows.get(aid)
            if method in ("GET", "HEAD"):
                ms = self.SHOW.sample(rng)
                return self.json(200, ms, row) if row else Response(404, ms, 0)
            if method == "PUT":
                if row is None:
                    return Response(404, self.WRITE.sample(rng), 0)
                return self._update(row, form(request_body(req)), ctx)
            if method == "DELETE":
                if row is None:
                    return Response(404, self.DELETE.sample(rng), 0)
                return self._destroy(row, ctx)
        return self.not_found(ctx)

    def _errors(self, attrs: dict, self_id: int | None) -> dict:
        errors: dict[str, list[str]] = {}
        for k in ("first_name", "last_name"):
            if not str(attrs.get(k, "")).strip():
                errors.setdefault(k, []).append("can't be blank")
        for a in self.rows.values():
            if a["id"] != self_id and a["first_name"] == attrs.get("first_name") \
                    and a["last_name"] == attrs.get("last_name"):
                errors.setdefault("first_name", []).append("and last name are not unique")
        return errors

    def _create(self, params: dict, ctx):
        ms = self.WRITE.sample(ctx.rng)
        attrs = {"first_name": params.get("first_name", ""), "last_name": params.get("last_name", "")}
        errors = self._errors(attrs, None)
        if errors:
            return self.json(422, ms, errors)
        row = {"id": self.next_id, **attrs, "created_at": SEED_TIME, "updated_at": SEED_TIME}
        self.rows[self.next_id] = row
        self.next_id += 1
        return self.json(201, ms, row, {"content-type": "application/json",
                                        "location": f"/authors/{row['id']}.json"})

    def _update(self, row: dict, params: dict, ctx):
        ms = self.WRITE.sample(ctx.rng)
        attrs = {k: params.get(k, row[k]) for k in ("first_name", "last_name")}
        errors = self._errors(attrs, row["id"])
        if errors:
            return self.json(422, ms, errors)
        row.update(attrs)
        return self.json(200, ms, row, {"content-type": "application/json",
                                        "location": f"/authors/{row['id']}.json"})

    def _destroy(self, row: dict, ctx):
        """before_destroy :destroy_books — the author's books go first, through books."""
        calls = _Calls(ctx, self.DELETE.sample(ctx.rng))
        try:
            r = calls(self.books_site, "GET", f"/books.json?author_id={row['id']}")
            for book in r.body if isinstance(r.body, list) else []:
                try:
                    calls(self.books_site, "DELETE", f"/books/{book['id']}.json")
                except NotFound:
                    pass
        except (ResourceError, NotFound):
            self._ms = calls.ms
            return None
        self.rows.pop(row["id"], None)
        return Response(204, calls.ms, 0)


# -- books ------------------------------------------------------------------------------------------

class Books(_Sinatra):
    role = "books"
    LIST = Dist(5.0, 10.0, 1.5)
    SHOW = Dist(4.0, 8.0, 1.0)
    CREATE = Dist(15.0, 25.0, 6.0)
    UPDATE = Dist(64.0, 86.0, 46.0)     # PUT is the slow route (≈ 70 ms in the tutorials)
    DELETE = Dist(15.0, 25.0, 6.0)

    def __init__(self, spec: Spec, tag: str):
        super().__init__(spec, tag)
        self.rows = seed_books()
        self.next_id = max(self.rows) + 1
        self.authors_site = _site(self.env.get("AUTHORS_SITE", ""))

    def route(self, method, parts, query, req, ctx):
        rng = ctx.rng
        n = len(parts)
        if n == 2 and parts[1] == "ping" and method in ("GET", "HEAD"):
            return Response(200, self.PING.sample(rng), 4, body="pong")
        if n == 2 and parts[1] == "books.json":
            if method in ("GET", "HEAD"):
                filters = {k: v for k, v in parse_qsl(query) if k in ("id", "title", "author_id", "pages")}
                rows = [b for b in self.rows.values() if all(str(b[k]) == v for k, v in filters.items())]
                rows.sort(key=lambda b: b["title"].lower())
                return self.json(200, self.LIST.sample(rng), rows)
            if method == "POST":
                return self._save(None, form(request_body(req)), ctx)
        if n == 3 and parts[1] == "books" and parts[2].endswith(".json"):
            bid = _int(parts[2][:-5])
            row = self.rows.get(bid)
            if method in ("GET", "HEAD"):
                ms = self.SHOW.sample(rng)
                return self.json(200, ms, row) if row else Response(404, ms, 0)
            if method == "PUT":
                if row is None:
                    return Response(404, self.SHOW.sample(rng), 0)
                return self._save(row, form(request_body(req)), ctx)
            if method == "DELETE":
                ms = self.DELETE.sample(rng)
                if row is None:
                    return Response(404, ms, 0)
                del self.rows[bid]
                return Response(204, ms, 0)
        return self.not_found(ctx)

    def _save(self, row: dict | None, params: dict, ctx):
        """Book validations, in order: presence, numericality, then ``author_exists``
        (``Author.exists?`` → ``HEAD /authors/{id}.json`` whenever author_id is given)."""
        base = row or {}
        attrs = {k: params.get(k, base.get(k, "")) for k in ("title", "author_id", "pages")}
        calls = _Calls(ctx, (self.CREATE if row is None else self.UPDATE).sample(ctx.rng))
        errors: dict[str, list[str]] = {}
        if not str(attrs["title"]).strip():
            errors.setdefault("title", []).append("can't be blank")
        pages = str(attrs["pages"]).strip()
        if not pages:
            errors.setdefault("pages", []).append("can't be blank")
        elif not _is_number(pages) or float(pages) <= 0:
            errors.setdefault("pages", []).append("must be greater than 0" if _is_number(pages) else "is not a number")
        author_id = str(attrs["author_id"]).strip()
        exists = False
        if author_id:
            try:
                r = calls(self.authors_site, "HEAD", f"/authors/{author_id}.json")
                exists = 200 <= r.status <= 206
            except NotFound:
                exists = False
            except ResourceError:
                self._ms = calls.ms
                return None
        if not exists:
            errors.setdefault("author_id", []).append("does not exist")
        if errors:
            return self.json(422, calls.ms, errors)
        values = {"title": attrs["title"], "author_id": _int(author_id), "pages": int(float(pages))}
        if row is None:
            row = {"id": self.next_id, **values, "created_at": SEED_TIME, "updated_at": SEED_TIME}
            self.rows[self.next_id] = row
            self.next_id += 1
            status = 201
        else:
            row.update(values)
            status = 200
        return self.json(status, calls.ms, row, {"content-type": "application/json",
                                                 "location": f"/books/{row['id']}.json"})


# -- webapp ---------------------------------------------------------------------------------------------

ORDER_TITLE = "order=" + quote("lower(title)", safe="")
ORDER_LAST = "order=" + quote("lower(last_name)", safe="")


class Webapp(_Sinatra):
    role = "webapp"
    INDEX = Dist(8.0, 15.0, 3.0)
    PAGE = Dist(5.0, 10.0, 1.5)
    FORM = Dist(4.0, 8.0, 1.0)
    RESET = Dist(2.5, 5.0, 0.8)

    def __init__(self, spec: Spec, tag: str):
        super().__init__(spec, tag)
        self.authors = _site(self.env.get("AUTHORS_SITE", ""))
        self.books = _site(self.env.get("BOOKS_SITE", ""))

    def route(self, method, parts, query, req, ctx):
        get = method in ("GET", "HEAD")
        n = len(parts)
        if n == 2:
            p = parts[1]
            if p == "" and get:
                return self._index(ctx)
            if p == "ping" and get:
                return Response(200, self.PING.sample(ctx.rng), 4, body="pong",
                                headers={"content-type": "text/plain"})
            if p == "reset" and get:
                return self._reset(ctx)
            if p == "authors" and method == "POST":
                return self._create_author(req, ctx)
            if p == "books" and method == "POST":
                return self._create_book(req, ctx)
        elif n in (3, 4) and parts[1] in ("authors", "books"):
            kind, rid = parts[1], parts[2]
            action = parts[3] if n == 4 else ""
            handler = self._ROUTES.get((kind, action, "GET" if get else method))
            if handler is not None and rid:
                return handler(self, rid, req, ctx)
        return self.not_found(ctx)

    # Sinatra's `redirect to(path)`: 303 after a non-GET (HTTP/1.1), else 302;
    # the Location is absolute
    def _redirect(self, req, ms: float, path: str) -> Response:
        host = header(req.headers, "host") or req.authority
        status = 302 if req.method in ("GET", "HEAD") else 303
        return Response(status, ms, 0, headers={"location": f"http://{host}{path}", "content-type": "text/html"})

    def _page(self, ms: float, title: str, items: list[str]) -> Response:
        html = (f"<!DOCTYPE html><html><head><title>Books</title></head><body><h1>{title}</h1><ul>"
                + "".join(f"<li>{i}</li>" for i in items) + "</ul></body></html>\n")
        return Response(200, ms, len(html.encode()) + 1800, body=html, headers={"content-type": "text/html"})

    def _fail(self, calls: _Calls) -> None:
        self._ms = calls.ms
        return None

    def _index(self, ctx):
        calls = _Calls(ctx, self.INDEX.sample(ctx.rng))
        try:
            books = calls(self.books, "GET", f"/books.json?{ORDER_TITLE}").body or []
            authors = calls(self.authors, "GET", f"/authors.json?{ORDER_LAST}").body or []
        except (ResourceError, NotFound):
            return self._fail(calls)
        names = {a["id"]: f'{a["first_name"]} {a["last_name"]}' for a in authors if isinstance(a, dict)}
        items = [f'{b["title"]} — {names.get(b["author_id"], "?")}' for b in books if isinstance(b, dict)]
        return self._page(calls.ms, "Books", items)

    def _reset(self, ctx):
        """GET /reset: destroy every author named Cline (their books go with them) → 204."""
        calls = _Calls(ctx, self.RESET.sample(ctx.rng))
        try:
            found = calls(self.authors, "GET", "/authors.json?last_name=Cline").body or []
            for a in found:
                calls(self.authors, "DELETE", f"/authors/{a['id']}.json")
        except (ResourceError, NotFound):
            return self._fail(calls)
        return Response(204, calls.ms, 0)

    def _create_author(self, req, ctx):
        p = form(request_body(req))
        calls = _Calls(ctx, self.FORM.sample(ctx.rng))
        try:
            r = calls(self.authors, "POST", "/authors.json",
                      body={"first_name": p.get("first_name", ""), "last_name": p.get("last_name", "")})
        except (ResourceError, NotFound):
            return self._fail(calls)
        if r.status == 422:
            return self._redirect(req, calls.ms, "/")
        return self._redirect(req, calls.ms, f"/authors/{_new_id(r)}")

    def _create_book(self, req, ctx):
        p = form(request_body(req))
        calls = _Calls(ctx, self.FORM.sample(ctx.rng))
        try:
            r = calls(self.books, "POST", "/books.json",
                      body={k: p.get(k, "") for k in ("title", "author_id", "pages")})
        except (ResourceError, NotFound):
            return self._fail(calls)
        if r.status == 422:
            return self._redirect(req, calls.ms, "/")
        return self._redirect(req, calls.ms, f"/books/{_new_id(r)}")

    def _show_author(self, rid, req, ctx):
        calls = _Calls(ctx, self.PAGE.sample(ctx.rng))
        try:
            a = calls(self.authors, "GET", f"/authors/{rid}.json").body or {}
            books = calls(self.books, "GET", f"/books.json?author_id={a.get('id', rid)}&{ORDER_TITLE}").body or []
        except NotFound:
            return self._redirect(req, calls.ms, "/")
        except ResourceError:
            return self._fail(calls)
        return self._page(calls.ms, f'{a.get("first_name", "")} {a.get("last_name", "")}',
                          [b["title"] for b in books if isinstance(b, dict)])

    def _edit_author_form(self, rid, req, ctx):
        calls = _Calls(ctx, self.PAGE.sample(ctx.rng))
        try:
            a = calls(self.authors, "GET", f"/authors/{rid}.json").body or {}
        except NotFound:
            return self._redirect(req, calls.ms, "/")
        except ResourceError:
            return self._fail(calls)
        return self._page(calls.ms, "Edit author", [str(a.get("first_name", "")), str(a.get("last_name", ""))])

    def _edit_author(self, rid, req, ctx):
        p = form(request_body(req))
        calls = _Calls(ctx, self.FORM.sample(ctx.rng))
        try:
            a = dict(calls(self.authors, "GET", f"/authors/{rid}.json").body or {})
            a.update({k: p[k] for k in ("first_name", "last_name") if k in p})
            calls(self.authors, "PUT", f"/authors/{a.get('id', rid)}.json", body=a)
        except NotFound:
            return self._redirect(req, calls.ms, "/")
        except ResourceError:
            return self._fail(calls)
        return self._redirect(req, calls.ms, f"/authors/{a.get('id', rid)}")

    def _delete_author(self, rid, req, ctx):
        calls = _Calls(ctx, self.FORM.sample(ctx.rng))
        try:
            calls(self.authors, "DELETE", f"/authors/{rid}.json")
        except NotFound:
            pass
        except ResourceError:
            return self._fail(calls)
        return self._redirect(req, calls.ms, "/")

    def _show_book(self, rid, req, ctx):
        calls = _Calls(ctx, self.PAGE.sample(ctx.rng))
        try:
            b = calls(self.books, "GET", f"/books/{rid}.json").body or {}
            a = calls(self.authors, "GET", f"/authors/{b.get('author_id', '')}.json").body or {}
        except NotFound:
            return self._redirect(req, calls.ms, "/")
        except ResourceError:
            return self._fail(calls)
        return self._page(calls.ms, str(b.get("title", "")),
                          [f'by {a.get("first_name", "")} {a.get("last_name", "")}', f'{b.get("pages", "")} pages'])

    def _edit_book_form(self, rid, req, ctx):
        calls = _Calls(ctx, self.PAGE.sample(ctx.rng))
        try:
            b = calls(self.books, "GET", f"/books/{rid}.json").body or {}
            authors = calls(self.authors, "GET", f"/authors.json?{ORDER_LAST}").body or []
        except NotFound:
            return self._redirect(req, calls.ms, "/")
        except ResourceError:
            return self._fail(calls)
        return self._page(calls.ms, f'Edit {b.get("title", "")}',
                          [f'{a["first_name"]} {a["last_name"]}' for a in authors if isinstance(a, dict)])

    def _edit_book(self, rid, req, ctx):
        """Book.find then update_attributes → PUT /books/{id}.json (books validates
        the author with a HEAD, so this is where FAILURE_RATE bites)."""
        p = form(request_body(req))
        calls = _Calls(ctx, self.FORM.sample(ctx.rng))
        try:
            b = dict(calls(self.books, "GET", f"/books/{rid}.json").body or {})
            b.update({k: p[k] for k in ("title", "author_id", "pages") if k in p})
            calls(self.books, "PUT", f"/books/{b.get('id', rid)}.json", body=b)
        except NotFound:
            return self._redirect(req, calls.ms, "/")
        except ResourceError:
            return self._fail(calls)
        return self._redirect(req, calls.ms, f"/books/{b.get('id', rid)}")

    def _delete_book(self, rid, req, ctx):
        calls = _Calls(ctx, self.FORM.sample(ctx.rng))
        try:
            calls(self.books, "DELETE", f"/books/{rid}.json")
        except NotFound:
            pass
        except ResourceError:
            return self._fail(calls)
        return self._redirect(req, calls.ms, "/")

    _ROUTES = {
        ("authors", "", "GET"): _show_author,
        ("authors", "edit", "GET"): _edit_author_form,
        ("authors", "edit", "POST"): _edit_author,
        ("authors", "delete", "POST"): _delete_author,
        ("books", "", "GET"): _show_book,
        ("books", "edit", "GET"): _edit_book_form,
        ("books", "edit", "POST"): _edit_book,
        ("books", "delete", "POST"): _delete_book,
    }


def _int(text) -> int | str:
    try:
        return int(text)
    except (TypeError, ValueError):
        return text


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _new_id(resp: Response):
    body = resp.body
    if isinstance(body, dict) and "id" in body:
        return body["id"]
    loc = header(resp.headers, "location") or ""
    return loc.rstrip("/").rsplit("/", 1)[-1].removesuffix(".json")


# -- traffic ----------------------------------------------------------------------------------------------

TRAFFIC_FLAGS = {"sleep": "value", "initial-delay": "value"}
TRAFFIC_USAGE = ("Usage: simulate-traffic [options] <target>\n"
                 "       where <target> is host:port of web service, and [options] include:")
RESTART_BACKOFF_S = 10.0


class Traffic(App):
    """booksapp-traffic: the scripted user of webapp."""

    READY_AFTER = 0.1

    def __init__(self, spec: Spec, tag: str):
        super().__init__(spec)
        self.name = f"booksapp-traffic:{tag}"
        self.argv = spec.argv(["/traffic"])     # the image's entrypoint; manifest passes only args
        self.sleep_s = 0.1
        self.initial_delay_s = 60.0
        self.target = ""
        args = self.argv[1:]
        try:
            flags, rest = go_flags(args, TRAFFIC_FLAGS)
            if "sleep" in flags:
                self.sleep_s = go_duration(flags["sleep"])
            if "initial-delay" in flags:
                self.initial_delay_s = go_duration(flags["initial-delay"])
            if len(rest) != 1:
                raise ValueError(TRAFFIC_USAGE)
            self.target = rest[0]
        except ValueError as e:
            if self.failure is None:
                self.failure = str(e)
        self.base = "http://" + self.target
        self.author_path = self.book_path = ""
        self.requests = 0
        self.restarts = 0

    def start(self, ctx) -> None:
        super().start(ctx)
        if self.failure is None:
            ctx.schedule(self.initial_delay_s, self._reset)

    # -- one request, then continue after its latency + the sleep -------------------
    def _send(self, method: str, path: str, body, then) -> None:
        if self.stopped:
            return
        ctx = self.bg
        headers = {"host": self.target}
        if body is not None:
            headers["content-type"] = "application/x-www-form-urlencoded"
        r = call(ctx, self.target, method, path, headers=headers, body=body, body_bytes=len(body or ""))
        self.requests += 1
        url = self.base + path
        failure = transport_error(r)
        if failure is not None:
            ctx.log(f"ERR\t{method}\t{url}\t{failure}")
        else:
            ctx.log(f"{go_duration_text(r.latency_ms / 1000.0)}\t{r.status}\t{method}\t{url}")
        ctx.schedule(r.latency_ms / 1000.0 + self.sleep_s, lambda: then(r))

    def _get(self, path: str, then) -> None:
        self._send("GET", path, None, then)

    def _post(self, path: str, body: str | None, what: str, then) -> None:
        """Repeat the POST until 303 See Other; a connection error kills the process."""
        def done(r: Response):
            failure = transport_error(r)
            if failure is not None:
                self._die(f"{what}: {failure}")
            elif r.status == 303:
                then(r)
            else:
                self._post(path, body, what, then)
        self._send("POST", path, body, done)

    def _die(self, message: str) -> None:
        """os.Exit(1): the container restarts and the script begins again."""
        ctx = self.bg
        ctx.log(message)
        self.restarts += 1
        exit_fn = getattr(ctx, "exit", None)
        if callable(exit_fn):
            exit_fn(1)
            return
        ctx.schedule(RESTART_BACKOFF_S + self.initial_delay_s, self._reset)

    def _location(self, r: Response) -> str | None:
        loc = header(r.headers, "location")
        if not loc:
            self._die("Failed to get location: http: no Location header in response")
            return None
        path = urlparse(loc).path or "/"
        if path == "/":
            self._die('Delete author "Ernest Cline" before running this script')
            return None
        return path

    # -- the script ------------------------------------------------------------------
    def _reset(self) -> None:
        def check(r: Response):
            if transport_error(r) is None and r.status == 204:
                self._loop()
            else:
                self._reset()
        self._get("/reset", check)

    def _loop(self) -> None:
        self._get("/", lambda r: self._post(
            "/authors", "first_name=Ernest&last_name=Cline", "Failed to create author", self._got_author))

    def _got_author(self, r: Response) -> None:
        path = self._location(r)
        if path is None:
            return
        self.author_path = path
        self._get(path, lambda _: self._create_book("Ready+Player+One", "345", self._got_book_one))

    def _create_book(self, title: str, pages: str, then) -> None:
        aid = self.author_path.rsplit("/", 1)[-1]
        self._post("/books", f"author_id={aid}&pages={pages}&title={title}", "Failed to create book", then)

    def _got_book_one(self, r: Response) -> None:
        path = self._location(r)
        if path is None:
            return
        self.book_path = path
        self._get(path, lambda _: self._create_book("Ready+Player+Two", "456", self._got_book_two))

    def _got_book_two(self, r: Response) -> None:
        path = self._location(r)
        if path is None:
            return
        self.book_path = path
        aid = self.author_path.rsplit("/", 1)[-1]
        self._get(path, lambda _: self._post(
            path + "/edit", f"author_id={aid}&pages=567&title=Ready+Player+Three", "Failed to edit book",
            lambda _: self._post(path + "/delete", None, "Failed to delete book",
                                 lambda _: self._post(self.author_path + "/delete", None,
                                                      "Failed to delete author", lambda _: self._loop()))))


def build(spec: Spec, tag: str, traffic: bool) -> App:
    if traffic:
        return Traffic(spec, tag)
    argv = spec.argv(["bundle", "exec", "rake"])
    for word in argv:
        env_name, _, role = word.partition(":")
        if env_name in ("prod", "dev") and role in PORTS:
            return {"webapp": Webapp, "authors": Authors, "books": Books}[role](spec, tag)
    app = App(spec)
    app.name = f"booksapp:{tag}"
    task = next((w for w in argv[3:] if not w.startswith("-")), "default")
    app.failure = spec.failure or (f"rake aborted!\nDon't know how to build task '{task}' "
                                   "(See the list of available tasks with `rake --tasks`)")
    return app
