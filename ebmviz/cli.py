"""``ebmviz run``: the app, with the user's own models and checkpoint folders beside the shipped ones.

    ebmviz run [--port 8501] [--address 127.0.0.1] [--checkpoints DIR]… [--runs DIR]
               [--model PATH.py:FACTORY [--weights FILE.safetensors] [--data PATH] [--name NAME]
                [--shape C,H,W] [--negate] [--range LO,HI]]…

Each ``--model`` starts a group: the options after it, up to the next ``--model``, are that model's. Every model is
loaded and checked here first (``--check`` stops after that, with exit status 1 when one fails); one that fails is
reported and the app starts without it. The specs reach the app's process in ``$EBMVIZ_USER_MODELS``, the folders
in ``$EBMVIZ_CHECKPOINT_DIR`` and the training monitor's runs folder in ``$EBMVIZ_RUNS`` (``--runs``; else ``runs/``
where the command was typed, when there is one, else the clone's); the server is ``python -m streamlit run app.py``
from the repository (what ``make run`` starts), so ``ebmviz run`` works from a clone installed by ``pip install -e .``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ebmviz.monitor.runs import ENV as RUNS_ENV

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app.py"
MODEL_OPTIONS = ("--weights", "--data", "--name", "--shape", "--negate", "--range")


def _numbers(text: str, count: int | None, kind=float, what: str = "") -> tuple:
    try:
        values = tuple(kind(v) for v in text.replace("×", ",").replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} takes numbers separated by commas, got {text!r}") from None
    if count is not None and len(values) != count:
        raise argparse.ArgumentTypeError(f"{what} takes {count} numbers, got {text!r}")
    return values


def _model_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ebmviz run --model", add_help=False)
    p.add_argument("target")
    p.add_argument("--weights", help="the module's state_dict as a .safetensors file")
    p.add_argument("--data", help="the user's images: a folder of PNG/JPEG (ImageFolder gives labels), an .npz "
                                  "with 'images' (and 'labels'), or an IDX file")
    p.add_argument("--name", default="", help="what the app calls the model (default: the factory's name)")
    p.add_argument("--shape", type=lambda t: _numbers(t, 3, int, "--shape"), help="C,H,W of its images")
    p.add_argument("--negate", action="store_true", help="the model returns −E (a logit): use E = −f(x)")
    p.add_argument("--range", dest="value_range", type=lambda t: _numbers(t, 2, float, "--range"),
                   default=(-1.0, 1.0), help="LO,HI: the pixel range the model was trained on (default −1,1)")
    return p


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ebmviz", description="Interactive visual exploration of energy-based models.")
    sub = p.add_subparsers(dest="command", required=True)
    options = [f"  {a.option_strings[0]:<10} {a.help}" for a in _model_parser()._actions if a.option_strings]
    run = sub.add_parser("run", help="start the app (at http://ADDRESS:PORT)",
                         description=__doc__.split("\n\n")[1] if __doc__ else None,
                         epilog="a model's own options (after its --model):\n" + "\n".join(options),
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("--port", type=int, default=8501)
    run.add_argument("--address", default="127.0.0.1", help="127.0.0.1: this machine only (README: \"Running it "
                                                           "for others safely\" before changing it)")
    run.add_argument("--checkpoints", action="append", default=[], metavar="DIR",
                     help="add this folder's checkpoints (python -m training …) to the shipped ones; repeatable")
    run.add_argument("--runs", metavar="DIR", help="the training monitor's runs folder: TensorBoard logs under it "
                                                  "(default: ./runs where you type the command, else the clone's)")
    run.add_argument("--check", action="store_true", help="load and check every --model, then exit")
    run.add_argument("--model", action="append", default=[], metavar="PATH.py:FACTORY",
                     help="add your own energy model; the options after it are its own: " + ", ".join(MODEL_OPTIONS))
    return p


def _split(argv: list[str]) -> tuple[list[str], list[list[str]]]:
    """(the options that are not a model's, one argument list per ``--model`` group)."""
    rest, groups = [], []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--model" or a.startswith("--model="):
            groups.append([a.split("=", 1)[1]] if "=" in a else [])
            if "=" not in a:
                i += 1
                if i < len(argv):
                    groups[-1].append(argv[i])
        elif groups and (a.split("=", 1)[0] in MODEL_OPTIONS):
            groups[-1].append(a)
            if "=" not in a and a != "--negate" and i + 1 < len(argv):
                i += 1
                groups[-1].append(argv[i])
        elif a.split("=", 1)[0] in MODEL_OPTIONS:
            raise SystemExit(f"ebmviz run: {a} belongs to a model: put it after --model PATH.py:FACTORY")
        else:
            rest.append(a)
        i += 1
    return rest, groups


def _absolute(path: str | None) -> str | None:
    return None if path is None else str(Path(path).expanduser().resolve())


def specs_from(groups: list[list[str]]):
    """One ``UserSpec`` per ``--model`` group, paths made absolute (the server runs from the repository)."""
    from ebmviz.user_model import UserSpec

    out = []
    for g in groups:
        if not g:
            raise SystemExit("ebmviz run: --model needs PATH.py:FACTORY or module:FACTORY")
        try:
            a = _model_parser().parse_args(g)
        except SystemExit:
            raise SystemExit(f"ebmviz run: cannot read the options of --model {' '.join(g)}") from None
        target = a.target
        where, sep, factory = target.rpartition(":")
        if sep and (where.endswith(".py") or "/" in where or os.sep in where):
            target = f"{_absolute(where)}:{factory}"
        out.append(UserSpec(target, _absolute(a.weights), _absolute(a.data), a.name, a.shape, a.negate,
                            tuple(a.value_range)))
    return out


def check(specs) -> list[str]:
    """Load each model as the app will; print one line per model; the names that failed."""
    from ebmviz.user_model import UserModelError, load_user_model

    failed = []
    for spec in specs:
        try:
            m = load_user_model(spec)
        except UserModelError as exc:
            print(f"ebmviz: ✗ {spec.label} will not load: {exc.reason} (the app starts without it)", flush=True)
            failed.append(spec.label)
            continue
        data = f", {len(m.data):,} images from {m.data.source}" if m.data is not None else ", no data"
        print(f"ebmviz: ✓ {spec.label}: {'×'.join(map(str, m.image_shape))} images, {m.config.parameters:,} "
              f"parameters{data}", flush=True)
    return failed


def run(args: argparse.Namespace, specs) -> int:
    names = [s.label for s in specs]
    if len(set(names)) != len(names):
        raise SystemExit(f"ebmviz run: two models are called {sorted(n for n in names if names.count(n) > 1)[0]!r}; "
                         "give one --name")
    failed = check(specs)
    if args.check:
        return 1 if failed else 0
    if not APP.is_file():
        raise SystemExit(f"ebmviz run: cannot find the app's {APP}: install ebmviz from a clone of its repository "
                         "(pip install -e .)")
    env = dict(os.environ, MALLOC_ARENA_MAX=os.environ.get("MALLOC_ARENA_MAX", "2"))
    if specs:
        env["EBMVIZ_USER_MODELS"] = json.dumps([s.to_dict() for s in specs])
    folders = [_absolute(d) for d in args.checkpoints]
    if folders:
        env["EBMVIZ_CHECKPOINT_DIR"] = os.pathsep.join(folders)
    if args.runs:
        env[RUNS_ENV] = _absolute(args.runs)
    elif RUNS_ENV not in env and Path("runs").is_dir():
        env[RUNS_ENV] = _absolute("runs")  # before the chdir below: the runs/ of the folder the command was typed in
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.address", args.address,
           "--server.port", str(args.port)]
    print(f"ebmviz: serving on http://{args.address}:{args.port}", flush=True)
    os.chdir(ROOT)  # .streamlit/config.toml and the data/ folder are the repository's, as with make run
    os.execve(sys.executable, cmd, env)
    return 0  # not reached


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    rest, groups = _split(argv)
    args = parser().parse_args(rest)
    return run(args, specs_from(groups))


if __name__ == "__main__":
    sys.exit(main())
