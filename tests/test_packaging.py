"""``pip install -e .`` gives a working ``ebmviz`` command, checked without downloading anything.

A fresh venv (made by this interpreter, without pip) borrows the dev venv's packages through a ``.pth`` line, so torch
and the rest resolve without an install; pip (also the dev venv's) then installs a copy of this working tree into it
with ``--no-deps --no-build-isolation --no-index``: the editable install itself, the console script and the package
discovery are the real ones. The README's commands then run from outside the source tree: ``ebmviz run --check`` on
the RGB fixture, ``python -m ebmviz run --check``, a factory that does not exist (exit status 1 and its message), and
``ebmviz run`` serving until Streamlit's health check answers "ok". The full install from the package index into a
bare venv is done by hand (README, "Your own model"); torch is too big to install on every run of the suite.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parent.parent
RGB_ARGS = ["--model", "tests/fixtures/user_energy.py:build", "--weights", "tests/fixtures/rgb_energy.safetensors",
            "--data", "tests/fixtures/colour_digits.npz", "--name", "rgb-digits"]
HEALTH_SECONDS = 60
NOT_COPIED = {".git", ".venv", "runs", "data", "__pycache__", ".pytest_cache", ".ruff_cache", "screenshots"}


def _requirement_lines(path: Path) -> list[str]:
    """The requirement lines of a requirements file: comments, blank lines and ``-r`` includes left out."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("-")]


def test_pyproject_dependencies_are_requirements_txt():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = _requirement_lines(ROOT / "requirements.txt")
    assert len(requirements) >= 10  # torch, streamlit, … (a parse that found nothing would pass the equality)
    assert [d.replace(" ", "") for d in project["dependencies"]] == [r.replace(" ", "") for r in requirements]
    assert project["scripts"] == {"ebmviz": "ebmviz.cli:main"}
    assert (ROOT / "requirements-dev.txt").read_text().splitlines()[0] == "-r requirements.txt"


def _copy_tree(dest: Path) -> Path:
    """The working tree as a clone would hold it (tracked and untracked-but-not-ignored files), without .venv,
    build outputs or egg-info, so the install writes nothing into the real tree."""
    try:
        listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others",
                                 "--exclude-standard"], capture_output=True, check=True, timeout=60).stdout
        files = [f for f in listed.decode().split("\0") if f]
    except (OSError, subprocess.SubprocessError):  # not a git checkout (an unpacked archive): copy all but the junk
        files = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*")
                 if p.is_file() and not NOT_COPIED & set(p.relative_to(ROOT).parts)
                 and not any(part.endswith(".egg-info") for part in p.parts)]
    for rel in files:
        src = ROOT / rel
        if src.is_file():  # a tracked file deleted in the working tree is not there to copy
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "EBMVIZ_USER_MODELS",
                                                             "EBMVIZ_CHECKPOINT_DIR", "EBMVIZ_SHIPPED_DIR")}
    env.update(PYTHONIOENCODING="utf-8", PIP_NO_INPUT="1", PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


def _run(cmd: list, cwd: Path, timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=_env(), stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, encoding="utf-8", timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(the venv's bin folder, the installed copy of the tree, a folder outside both to run commands from)."""
    base = tmp_path_factory.mktemp("packaging")
    clone = _copy_tree(base / "clone")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120,
                   stdin=subprocess.DEVNULL)
    bin_dir = venv / "bin"
    py = bin_dir / "python"
    site = _run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], base)
    assert site.returncode == 0, site.stderr
    dev_site = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    Path(site.stdout.strip(), "dev-venv.pth").write_text("\n".join(dev_site) + "\n")  # pip, setuptools, torch, …
    install = _run([py, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-e", clone], base,
                   timeout=300)
    assert install.returncode == 0, install.stdout + install.stderr
    assert "Successfully installed ebmviz" in install.stdout
    outside = base / "elsewhere"
    outside.mkdir()
    return bin_dir, clone, outside


def test_editable_install_puts_the_command_and_the_clone_in_the_venv(installed):
    bin_dir, clone, outside = installed
    assert (bin_dir / "ebmviz").is_file() and os.access(bin_dir / "ebmviz", os.X_OK)
    assert (bin_dir / "ebmviz").read_text().startswith(f"#!{bin_dir / 'python'}")
    where = _run([bin_dir / "python", "-c", "import ebmviz, ebmviz.cli, training; print(ebmviz.__file__); "
                  "print(training.__file__); print(ebmviz.cli.APP)"], outside)
    assert where.returncode == 0, where.stderr
    package, trainers, app = where.stdout.split()
    assert Path(package) == clone / "ebmviz" / "__init__.py"  # the copy, editable: not the dev tree, not a wheel
    assert Path(trainers) == clone / "training" / "__init__.py"
    assert Path(app) == clone / "app.py" and Path(app).is_file()  # what ``ebmviz run`` serves


def test_console_script_checks_the_readme_model(installed):
    bin_dir, clone, _ = installed
    done = _run([bin_dir / "ebmviz", "run", "--check", *RGB_ARGS], clone)  # the README's command, in the clone
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ebmviz: ✓ rgb-digits: 3×32×32 images" in done.stdout
    assert "400 images from" in done.stdout


def test_python_m_ebmviz_from_another_folder(installed):
    bin_dir, clone, outside = installed
    args = [a if not a.startswith("tests/") else str(clone / a) for a in RGB_ARGS]
    done = _run([bin_dir / "python", "-m", "ebmviz", "run", "--check", *args], outside)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ebmviz: ✓ rgb-digits: 3×32×32 images" in done.stdout


def test_a_factory_that_does_not_exist_fails_the_check_with_its_name(installed):
    bin_dir, clone, _ = installed
    done = _run([bin_dir / "ebmviz", "run", "--check", "--model", "tests/fixtures/user_energy.py:nope"], clone)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "✗ nope will not load" in done.stdout
    assert "has no 'nope'" in done.stdout and "build" in done.stdout  # what the file does define
    assert "✓" not in done.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _health(port: int) -> str:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through an http_proxy
    try:
        with opener.open(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
            return r.read().decode()
    except OSError:
        return ""


def test_ebmviz_run_serves_the_app(installed, tmp_path):
    bin_dir, clone, outside = installed
    port = _free_port()
    added = tmp_path / "my-checkpoints"
    added.mkdir()
    args = [a if not a.startswith("tests/") else str(clone / a) for a in RGB_ARGS]
    log = tmp_path / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([str(bin_dir / "ebmviz"), "run", "--port", str(port), "--checkpoints", str(added),
                                 *args], cwd=outside, env=_env(), stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline, answer = time.monotonic() + HEALTH_SECONDS, ""
        while time.monotonic() < deadline and proc.poll() is None and answer != "ok":
            time.sleep(0.5)
            answer = _health(port)
        text = log.read_text(encoding="utf-8", errors="replace")
        assert answer == "ok", f"no health answer in {HEALTH_SECONDS} s (exit {proc.poll()}):\n{text}"
        assert "ebmviz: ✓ rgb-digits" in text and f"serving on http://127.0.0.1:{port}" in text
        environ = Path(f"/proc/{proc.pid}/environ")
        if environ.exists():  # the exec'd Streamlit server: what ``ebmviz run`` handed it
            env = dict(kv.split("=", 1) for kv in environ.read_text().split("\0") if "=" in kv)
            specs = json.loads(env["EBMVIZ_USER_MODELS"])
            assert [s["name"] for s in specs] == ["rgb-digits"]
            assert specs[0]["target"] == f"{clone / 'tests/fixtures/user_energy.py'}:build"
            assert env["EBMVIZ_CHECKPOINT_DIR"] == str(added)
            assert Path(os.readlink(f"/proc/{proc.pid}/cwd")) == clone  # the clone's .streamlit/config.toml
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)
