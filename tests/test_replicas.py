"""Two app servers behind Debian's nginx with a route cookie (``deploy/nginx``): the config renders and passes
``nginx -t``, the cookie keeps a browser on one replica (and its backup takes over when that replica is down),
and browser sessions played through the proxy spread over both replicas with no error; the Kubernetes example
parses and asks its ingress for the same affinity.

The browser test prints sessions per replica and frames/s per session; with ``EBMVIZ_SHOTS=DIR`` it keeps a
screenshot of one session per replica there (``replica-a.png``, ``replica-b.png``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import tomllib

from tests.browser import CHROMIUM, CHROMIUM_ARGS, ROOT, free_port, streamlit_process

NGINX = "/usr/sbin/nginx"
DEPLOY = ROOT / "deploy"
TEMPLATE = DEPLOY / "nginx" / "ebmviz.conf.template"
PER_REPLICA = 2  # browser sessions on each replica
PLAY_S = 8.0  # seconds of Play watched in each session
needs_nginx = pytest.mark.skipif(not os.path.exists(NGINX),
                                 reason="Debian's nginx is not installed (apt-get install -y nginx; .ci/run does it)")
ROUTES = ("a", "b")
LOG_LINE = re.compile(r'"(?P<method>\S+) (?P<uri>\S+) [^"]*" (?P<status>\d+) route=(?P<route>\S*) '
                      r'cookie=(?P<cookie>\S*) upstream="(?P<upstream>[^"]*)"')


def render(template: str, values: dict[str, str]) -> str:
    """The template with each ``${EBMVIZ_X}`` replaced by ``values["EBMVIZ_X"]`` (nginx's own $variables left
    alone, as envsubst with the names listed does); a placeholder without a value, or a value without a
    placeholder, is an error."""
    used = set(re.findall(r"\$\{(EBMVIZ_\w+)\}", template))
    if used != set(values):
        raise ValueError(f"placeholders {sorted(used)} but values for {sorted(values)}")
    return re.sub(r"\$\{(EBMVIZ_\w+)\}", lambda m: values[m.group(1)], template)


@contextlib.contextmanager
def nginx_proxy(tmp_path, replicas: dict[str, str]):
    """Debian's nginx in the foreground with ``deploy/nginx/local.conf`` and the template filled in for
    ``replicas`` ({"a": host:port, "b": host:port}), everything under ``tmp_path``; yields
    (its URL, the access log's path). The config is checked with ``nginx -t`` first."""
    port = free_port()
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "local.conf").write_text((DEPLOY / "nginx" / "local.conf").read_text())
    (tmp_path / "ebmviz.conf").write_text(render(TEMPLATE.read_text(), {
        "EBMVIZ_REPLICA_A": replicas["a"], "EBMVIZ_REPLICA_B": replicas["b"], "EBMVIZ_LISTEN": f"127.0.0.1:{port}"}))
    cmd = [NGINX, "-p", str(tmp_path), "-c", str(tmp_path / "local.conf"), "-e", str(tmp_path / "error.log")]
    checked = subprocess.run([*cmd, "-t"], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0 and "test is successful" in checked.stderr, checked.stderr
    proc = subprocess.Popen([*cmd, "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 15
        while True:
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).close()
                break
            except urllib.error.HTTPError:  # nginx answered (a 502 while no replica listens yet is fine here)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"nginx did not start: {(tmp_path / 'error.log').read_text()[-2000:]}") from None
                time.sleep(0.1)
        yield url, tmp_path / "access.log"
    finally:
        proc.terminate()  # SIGTERM: nginx's fast shutdown
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def access_log(path) -> list[dict[str, str]]:
    """The proxy's access log (deploy/nginx's ebmviz_route format), one dict per request."""
    return [m.groupdict() for m in map(LOG_LINE.search, path.read_text().splitlines()) if m]


def get(url: str, headers: dict[str, str] | None = None):
    """GET through the proxy: (status, the backend's JSON answer or None, the Set-Cookie header or None)."""
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as r:
        body = r.read()
        answer = json.loads(body) if r.headers.get("Content-Type") == "application/json" else None
        return r.status, answer, r.headers.get("Set-Cookie")


@contextlib.contextmanager
def echo_backend(name: str):
    """A stand-in replica on a free loopback port: answers every GET with its name and the headers it got."""
    class Echo(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"replica": name, "headers": dict(self.headers)}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_render_refuses_a_missing_or_unknown_placeholder():
    template = TEMPLATE.read_text()
    full = {"EBMVIZ_REPLICA_A": "h:1", "EBMVIZ_REPLICA_B": "h:2", "EBMVIZ_LISTEN": "80"}
    rendered = render(template, full)
    assert not re.search(r"\$\{EBMVIZ_\w+\}", rendered)
    assert re.findall(r"^\s*(?:server|listen) (\S+?)( backup)?;", rendered, re.M) == [
        ("h:1", ""), ("h:2", " backup"), ("h:2", ""), ("h:1", " backup"), ("80", "")]
    with pytest.raises(ValueError, match="EBMVIZ_LISTEN"):
        render(template, {k: v for k, v in full.items() if k != "EBMVIZ_LISTEN"})
    with pytest.raises(ValueError, match="EBMVIZ_REPLICA_C"):
        render(template, full | {"EBMVIZ_REPLICA_C": "h:3"})


def test_upload_limit_sits_just_above_streamlits():
    """nginx lets through a file Streamlit accepts (maxUploadSize MB plus the multipart envelope), so a larger one
    gets Streamlit's message, not nginx's 413 page."""
    mb = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]["maxUploadSize"]
    sizes = re.findall(r"^\s*client_max_body_size (\d+)m;", TEMPLATE.read_text(), re.M)
    assert sizes == [str(mb + 1)], (sizes, mb)


@needs_nginx
def test_the_route_cookie_keeps_a_browser_on_one_replica(tmp_path):
    with echo_backend("a") as (server_a, addr_a), echo_backend("b") as (server_b, addr_b), \
            nginx_proxy(tmp_path, {"a": addr_a, "b": addr_b}) as (url, log):
        # a browser with a cookie goes to its replica, every time, and is not given another cookie
        for route in ROUTES * 5:
            status, answer, cookie = get(f"{url}/media/x.png", {"Cookie": f"ebmviz_route={route}; other=1"})
            assert (status, answer["replica"], cookie) == (200, route, None)
        # a new browser (no cookie, or a forged one) is given a cookie naming the replica that answered it
        seen = []
        for forged in ["", "ebmviz_route=c"] * 20:
            _, answer, cookie = get(f"{url}/", {"Cookie": forged} if forged else {})
            assert re.fullmatch(r"ebmviz_route=([ab]); Path=/; HttpOnly; SameSite=Lax", cookie), cookie
            assert cookie.split(";")[0] == f"ebmviz_route={answer['replica']}"
            seen.append(answer["replica"])
        assert set(seen) == set(ROUTES), seen  # 40 coin flips: both sides (all one side: 2 in 2^40)
        # what the websocket and Streamlit's origin check need reaches the replica
        _, answer, _ = get(f"{url}/_stcore/stream", {"Cookie": "ebmviz_route=b", "Upgrade": "websocket",
                                                      "Connection": "Upgrade"})
        sent = {k.lower(): v for k, v in answer["headers"].items()}
        assert (sent["upgrade"], sent["connection"].lower()) == ("websocket", "upgrade")
        assert sent["host"] == url.removeprefix("http://") and sent["x-forwarded-for"] == "127.0.0.1"
        _, answer, _ = get(f"{url}/", {"Cookie": "ebmviz_route=a"})
        assert answer["headers"].get("Connection", "").lower() == "close"  # no upgrade asked, none passed on
        # replica b goes down: its browsers reach a (its backup) instead of an error page
        server_b.shutdown()
        server_b.server_close()
        status, answer, _ = get(f"{url}/", {"Cookie": "ebmviz_route=b"})
        assert (status, answer["replica"]) == (200, "a")
        time.sleep(0.2)  # (nginx writes the line after the answer)
        last = access_log(log)[-1]
        assert (last["cookie"], last["upstream"]) == ("b", f"{addr_b}, {addr_a}"), last


def test_kubernetes_example_asks_for_cookie_affinity():
    """The example cannot run here (no cluster): parsed, it has 2 replicas of the app's server, a Service in front
    of them, and an ingress-nginx Ingress with cookie affinity and the same timeouts and upload size as nginx's."""
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed: the Kubernetes example is not checked")
    docs = {d["kind"]: d for d in yaml.safe_load_all((DEPLOY / "kubernetes" / "ebmviz.yaml").read_text()) if d}
    assert set(docs) == {"Deployment", "Service", "Ingress"}, sorted(docs)
    deployment, service, ingress = docs["Deployment"], docs["Service"], docs["Ingress"]
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    (container,) = pod["spec"]["containers"]
    args = container["command"] + container.get("args", [])
    port = container["ports"][0]["containerPort"]
    assert args[args.index("--server.port") + 1] == str(port) and args[args.index("--server.address") + 1] == "0.0.0.0"
    assert container["readinessProbe"]["httpGet"] == {"path": "/_stcore/health", "port": port}
    assert service["spec"]["ports"][0]["targetPort"] == port
    notes = ingress["metadata"]["annotations"]
    key = "nginx.ingress.kubernetes.io/"
    assert notes[key + "affinity"] == "cookie" and notes[key + "affinity-mode"] == "persistent"
    assert notes[key + "session-cookie-name"] == "ebmviz_route"
    assert int(notes[key + "proxy-read-timeout"]) >= 3600 and int(notes[key + "proxy-send-timeout"]) >= 3600
    mb = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]["maxUploadSize"]
    assert notes[key + "proxy-body-size"] == f"{mb + 1}m"
    (rule,) = ingress["spec"]["rules"]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": service["metadata"]["name"], "port": {"number": service["spec"]["ports"][0]["port"]}}


LOADED = "sel => { const i = document.querySelector(sel); return !!i && i.complete && i.naturalWidth > 0; }"


class _Given:
    """Stands in for the browser in ``tests.sessions.open_sessions``: hands out contexts made beforehand."""

    def __init__(self, contexts):
        self._left = list(contexts)

    def new_context(self, **_):
        return self._left.pop(0)


def routed_contexts(browser, url: str, per_route: int, tries: int = 40) -> list:
    """Browser contexts that the proxy has given a route cookie, ``per_route`` of each route, alternating
    a, b, a, b, ...: new contexts ask for /_stcore/health until each route has enough (the proxy picks at random;
    the extra contexts are closed)."""
    got: dict[str, list] = {r: [] for r in ROUTES}
    for _ in range(tries):
        if all(len(v) == per_route for v in got.values()):
            break
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        assert context.request.get(f"{url}/_stcore/health").ok
        (route,) = [c["value"] for c in context.cookies() if c["name"] == "ebmviz_route"]
        if len(got[route]) < per_route:
            got[route].append(context)
        else:
            context.close()
    assert all(len(v) == per_route for v in got.values()), {r: len(v) for r, v in got.items()}
    return [c for pair in zip(*got.values(), strict=True) for c in pair]


def wait_for_lines(path, uri: str, n: int, timeout: float = 15.0) -> list[dict[str, str]]:
    """The access log once it has ``n`` lines for ``uri`` (a websocket's line is written when it closes)."""
    deadline = time.time() + timeout
    while True:
        lines = access_log(path)
        if sum(x["uri"] == uri for x in lines) >= n or time.time() > deadline:
            return lines
        time.sleep(0.25)


@pytest.mark.browser
@needs_nginx
@pytest.mark.skipif(not os.path.exists(CHROMIUM),
                    reason="Debian's chromium is not installed (apt-get install -y chromium; .ci/run does it)")
def test_sessions_through_the_proxy_spread_over_both_replicas(tmp_path):
    """Two app servers behind the proxy, PER_REPLICA Langevin sessions on each (their route cookies given by the
    proxy), Play for PLAY_S s: no session has an error, each saw new frames (pictures fetched from /media/ through
    the proxy), every request went to its cookie's replica, and each replica served its sessions' pages and
    websockets."""
    sync_api = pytest.importorskip("playwright.sync_api")
    from tests.sessions import close, drive, log_tracebacks

    (ROOT / "runs").mkdir(exist_ok=True)  # (ignored by git) where the servers' logs go
    shots = os.environ.get("EBMVIZ_SHOTS") or str(tmp_path)
    with contextlib.ExitStack() as stack:
        servers = {r: stack.enter_context(streamlit_process()) for r in ROUTES}
        addr = {r: s.url.removeprefix("http://") for r, s in servers.items()}
        url, log = stack.enter_context(nginx_proxy(tmp_path / "proxy", addr))
        pw = stack.enter_context(sync_api.sync_playwright())
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        stack.callback(browser.close)
        t = time.perf_counter()
        contexts = routed_contexts(browser, url, PER_REPLICA)
        sessions, _ = drive(_Given(contexts), url, ["langevin"], len(contexts), seconds=PLAY_S, ready_timeout=120)
        route = {s.index: c["value"] for s in sessions for c in s.tab.context.cookies() if c["name"] == "ebmviz_route"}
        for r in ROUTES:
            first = next(s for s in sessions if route[s.index] == r)
            first.tab.wait_for_function(LOADED, arg=first.page.frame, timeout=20_000)  # not a picture in flight
            first.tab.screenshot(path=os.path.join(shots, f"replica-{r}.png"))
        close(sessions)
        lines = wait_for_lines(log, "/_stcore/stream", len(sessions))
        wall = time.perf_counter() - t
        tracebacks = {r: log_tracebacks(s.log) for r, s in servers.items()}
        errors = (tmp_path / "proxy" / "error.log").read_text()

    for s in sessions:
        print(f"\nreplica {route[s.index]} {s.name} seed {s.seed}: ready {s.ready_s or float('nan'):.1f} s, "
              f"{len(s.frames)} frames, {s.fps:.1f} frames/s, {s.last_status}, media 404 {s.media_missing}, "
              f"errors {s.errors}")
    served = {r: [x for x in lines if x["upstream"] == addr[r]] for r in ROUTES}
    pages = {r: sorted(int(parse_qs(urlsplit(x["uri"]).query)["seed"][0]) for x in served[r]
                       if x["uri"].startswith("/langevin?")) for r in ROUTES}  # the seeds of the pages it served
    sockets = {r: sum(x["uri"] == "/_stcore/stream" and x["status"] == "101" for x in served[r]) for r in ROUTES}
    media = {r: sum(x["uri"].startswith("/media/") and x["status"] == "200" for x in served[r]) for r in ROUTES}
    print(f"\nthrough the proxy, {wall:.0f} s from the first cookie to the last websocket closed: "
          f"sessions per replica {[len(pages[r]) for r in ROUTES]}, websockets {list(sockets.values())}, "
          f"pictures served {list(media.values())}, requests {[len(served[r]) for r in ROUTES]}")

    assert not [(s.name, s.errors) for s in sessions if s.errors]
    assert all(len(s.frames) >= 2 for s in sessions), [len(s.frames) for s in sessions]
    assert sorted(route.values()) == sorted(ROUTES * PER_REPLICA)
    # the affinity: a request with a cookie went to the cookie's replica, one without (only the first, for the
    # cookie) to the one its new cookie named
    wrong = [x for x in lines if x["upstream"] != addr.get(x["cookie"] if x["cookie"] in ROUTES else x["route"])]
    assert not wrong and all(x["cookie"] in ROUTES for x in lines if x["uri"] != "/_stcore/health"), wrong[:5]
    for r in ROUTES:
        seeds = sorted(s.seed for s in sessions if route[s.index] == r)
        assert pages[r] == seeds and sockets[r] >= PER_REPLICA and media[r] > 0, (r, pages[r], sockets[r], media[r])
    assert tracebacks == {r: [] for r in ROUTES}
    assert not re.findall(r"^.*\[(?:emerg|alert|crit|error)\].*$", errors, re.M)
