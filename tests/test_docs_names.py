"""The docs name only gkaan identifiers that exist, with the parameters and defaults they have.

The pages are ARCHITECTURE.md, README.md and docs/*.md. What is checked:

- **Inline code spans** (text in single backticks; a span may wrap a line). A span counts as a
  gkaan name when it has one of these shapes, and is skipped otherwise:
  - a module path ``gkaan_cli.a.b``: it imports, or its last part is an attribute of the
    module before it;
  - a source file ``gkaan_cli/engine/x.py``, ``engine/x.py`` or ``x.py``: the file exists (from
    the repository root, from ``gkaan_cli/``, or for a bare name anywhere in the repository);
  - a call ``name(...)``, ``Name.method(...)``, ``.method(...)`` or a decorator
    ``@name(...)``: ``name`` is a function, class or method defined in the package, every
    keyword the span writes (``kw=...``) is one of its parameters, and where the span is a
    signature (it has a bare ``*``) every default it writes equals the real default;
  - a ``CamelCase`` word: a class or type alias defined in the package, or one of
    ``EXTERNAL`` (Python's and the libraries' names the docs mention);
  - an ``UPPER_CASE`` word: a module attribute of the package, or a string the package
    reads (an environment variable such as ``GKAAN_HUB_DEADLINE``);
  - a ``snake_case`` word with an underscore, or a dotted ``a.b_c`` attribute: the package's
    source uses that name somewhere (a definition, attribute, parameter or string key; this
    also admits the JSON keys and config fields the docs list).
- **```python blocks**: every call in them is checked like a call span (the name exists,
  its keywords are parameters); defaults are not, since an example may pass any value.

Skipped, so never checked: spans with a space outside parentheses (shell commands such as
``gkaan predict VIDEO``), ``--options``, values (``auto``, ``bf16``, a single lower-case
word), paths that are not ``.py`` files (the outputs ``report.json``, ``best/``...),
placeholders (``<name>``), and identifiers a span defines in passing (``-> Type`` tails).
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import gkaan_cli

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "ARCHITECTURE.md", ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: Names of Python, PyTorch, FFmpeg and the other libraries the docs mention in code style.
EXTERNAL = {
    "Attention.py",  # the authors' code
    "ChildFailedError",  # torch.distributed
    "Conv1d",
    "Dropout",
    "Models.py",
    "OMP_NUM_THREADS",  # read by PyTorch, not by gkaan
    "RandomResizedCrop",  # torchvision
    "floor",  # math
    "malloc_trim",  # glibc
    "reason_auto",  # the authors' module names
    "reason_learned",
}
#: Spans that quote another library's call whose name gkaan also uses (the `sru` package's SRU).
OTHER_LIBRARY_CALLS = ("SRU(I, 1024,",)

FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
SPAN = re.compile(r"(?<!`)`([^`]+)`(?!`)")
CALL = re.compile(r"^@?(\.?[A-Za-z_][\w.]*)\((.*)\)(?:\s*->.*)?$", re.S)
MODULE = re.compile(r"^gkaan_cli(?:\.\w+)+$")
SOURCE_FILE = re.compile(r"^[\w/]+\.py$")
CAMEL = re.compile(r"^_*[A-Z][A-Z0-9]*[a-z][A-Za-z0-9]*$")
UPPER = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")
SNAKE = re.compile(r"^_*[a-z][a-z0-9]*(?:_[a-z0-9]+)+$|^_+[a-z][a-z0-9]*$")
DOTTED = re.compile(r"^\.?[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+$")


def _modules() -> list[Any]:
    names = ["gkaan_cli"] + [
        m.name for m in pkgutil.walk_packages(gkaan_cli.__path__, prefix="gkaan_cli.")
    ]
    return [importlib.import_module(n) for n in names if not n.endswith("__main__")]


class Package:
    """What the package defines: its callables by name, module attributes and source names."""

    def __init__(self) -> None:
        self.callables: dict[str, list[Any]] = {}
        self.attributes: set[str] = set()
        self.types: set[str] = set()
        self.source_names: set[str] = set()
        for module in _modules():
            for name, value in vars(module).items():
                self.attributes.add(name)
                if getattr(value, "__module__", "").startswith("gkaan_cli"):
                    self._add(name, value)
                elif not callable(value) and not inspect.ismodule(value):
                    self.types.add(name)  # a type alias such as ``Fusion = Literal[...]``
        self.parameters: set[str] = set()  # callbacks such as ``on_decode_fallback(reason)``
        for folder in ("gkaan_cli", "tests", "benchmarks", "weights"):
            for path in (ROOT / folder).rglob("*.py"):
                if path.name == Path(__file__).name:
                    continue  # the names this test gives as drifts
                for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                    self.source_names.update(_node_names(node))
                    if folder == "gkaan_cli" and isinstance(node, ast.arg):
                        self.parameters.add(node.arg)
                    if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                        self.parameters.add(node.attr)  # a callable attribute: ``skip(x)``

    def _add(self, name: str, value: Any) -> None:
        if not callable(value) or value in self.callables.get(name, []):
            return
        self.callables.setdefault(name, []).append(value)
        if inspect.isclass(value):
            self.types.add(name)
            for attr, member in vars(value).items():
                self.source_names.add(attr)
                if isinstance(member, (staticmethod, classmethod)):
                    member = member.__func__
                if inspect.isfunction(member) and member not in self.callables.get(attr, []):
                    self.callables.setdefault(attr, []).append(member)


def _node_names(node: ast.AST) -> Iterator[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        yield node.name
    elif isinstance(node, ast.arg):
        yield node.arg
    elif isinstance(node, ast.Attribute):
        yield node.attr
    elif isinstance(node, ast.Name):
        yield node.id
    elif isinstance(node, ast.keyword) and node.arg:
        yield node.arg
    elif isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield from re.findall(r"[A-Za-z_]\w*", node.value)


@pytest.fixture(scope="module")
def package() -> Package:
    return Package()


def _signature(obj: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(obj)
    except (TypeError, ValueError):
        return None


def _accepts(obj: Any, keyword: str) -> bool:
    sig = _signature(obj)
    if sig is None:
        return True
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return True
    return keyword in sig.parameters


def _literal(node: ast.AST) -> tuple[bool, Any]:
    try:
        return True, ast.literal_eval(node)
    except ValueError:
        return False, None


def check_call(package: Package, name: str, args: str, where: str) -> list[str]:
    """Problems of one call span ``name(args)``: unknown name, keyword or default."""
    problems: list[str] = []
    callee = name.lstrip(".").split(".")[-1]
    found = package.callables.get(callee)
    if not found:
        known = callee in EXTERNAL or callee in package.parameters or hasattr(builtins, callee)
        return [] if known else [f"{where}: `{name}(...)` is not defined in gkaan_cli"]
    params = args.replace("...", "").strip()
    try:
        tree = ast.parse(f"def _({params}): pass").body[0]
    except SyntaxError:
        tree = None
    if isinstance(tree, ast.FunctionDef):
        given = tree.args
        positional = [a.arg for a in given.args]
        named = positional[len(positional) - len(given.defaults) :]
        defaults = dict(zip(named, given.defaults, strict=True))
        for arg, default in zip(given.kwonlyargs, given.kw_defaults, strict=True):
            if default is not None:
                defaults[arg.arg] = default
        signature = given.vararg is None and bool(given.kwonlyargs or "*" in params)
        for keyword, node in defaults.items():
            if not any(_accepts(obj, keyword) for obj in found):
                problems.append(f"{where}: `{name}(...)` has no parameter `{keyword}`")
                continue
            ok, written = _literal(node)
            if not (signature and ok):
                continue
            real = {
                sig.parameters[keyword].default
                for obj in found
                if (sig := _signature(obj)) is not None and keyword in sig.parameters
            }
            if real and written not in real:
                problems.append(
                    f"{where}: `{name}(...)` gives `{keyword}={written!r}`, "
                    f"the default is {sorted(map(repr, real))}"
                )
        return problems
    try:
        expr = ast.parse(f"_{name}({args})" if name.startswith(".") else f"{name}({args})")
    except SyntaxError:
        return problems  # a shape such as ``forward(maps (N, C, h, w))``: the name is checked
    for node in ast.walk(expr):
        if isinstance(node, ast.Call):
            problems += check_call_node(package, node, where)
    return problems


def check_call_node(package: Package, node: ast.Call, where: str) -> list[str]:
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    found = package.callables.get(name or "")
    if not found:
        return []
    return [
        f"{where}: `{name}(...)` has no parameter `{kw.arg}`"
        for kw in node.keywords
        if kw.arg and not any(_accepts(obj, kw.arg) for obj in found)
    ]


def spans(page: Path) -> Iterator[tuple[int, str]]:
    """(line, text) of each inline code span outside fenced blocks."""
    text = page.read_text(encoding="utf-8")
    blanked = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    for paragraph in re.finditer(r"(?:.+\n?)+", blanked):
        for match in SPAN.finditer(paragraph.group(0)):
            line = blanked.count("\n", 0, paragraph.start() + match.start()) + 1
            yield line, " ".join(match.group(1).split())


def check_span(package: Package, span: str, where: str) -> list[str]:
    span = span.strip().rstrip(",;")
    if "<" in span or "\\" in span or span.startswith(("-", *OTHER_LIBRARY_CALLS)):
        return []
    if MODULE.match(span):
        module, _, attr = span.rpartition(".")
        try:
            importlib.import_module(span)
        except ImportError:
            try:
                found = hasattr(importlib.import_module(module), attr)
            except ImportError:
                found = False
            if not found:
                return [f"{where}: module `{span}` does not exist"]
        return []
    if SOURCE_FILE.match(span):
        candidates = [ROOT / span, ROOT / "gkaan_cli" / span]
        if "/" not in span:
            candidates += list(ROOT.glob(f"*/**/{span}"))
        if span not in EXTERNAL and not any(p.is_file() for p in candidates):
            return [f"{where}: file `{span}` does not exist"]
        return []
    call = CALL.match(span)
    if call:
        return check_call(package, call.group(1), call.group(2), where)
    if span.startswith("@"):
        name = span[1:]
        return [] if name in package.callables else [f"{where}: decorator `{span}` does not exist"]
    if CAMEL.match(span):
        known = span in package.attributes or span in EXTERNAL or hasattr(builtins, span)
        return [] if known else [f"{where}: `{span}` is not defined in gkaan_cli"]
    if UPPER.match(span):
        known = span in package.attributes or span in package.source_names or span in EXTERNAL
        return [] if known else [f"{where}: `{span}` is not defined in gkaan_cli"]
    if SNAKE.match(span) or DOTTED.match(span):
        parts = [p for p in span.lstrip(".").split(".")[1 if "." in span[1:] else 0 :] if p]
        missing = [p for p in parts if p not in package.source_names and p not in EXTERNAL]
        return [f"{where}: `{span}` names `{missing[0]}`, unknown to gkaan_cli"] if missing else []
    return []


def page_problems(package: Package, page: Path) -> list[str]:
    name = page.relative_to(ROOT)
    problems: list[str] = []
    for line, span in spans(page):
        problems += check_span(package, span, f"{name}:{line}")
    text = page.read_text(encoding="utf-8")
    for match in FENCE.finditer(text):
        if match.group(1) != "python":
            continue
        line = text.count("\n", 0, match.start()) + 2
        for node in ast.walk(ast.parse(match.group(2))):
            if isinstance(node, ast.Call):
                problems += check_call_node(package, node, f"{name}:{line + node.lineno - 1}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_name_the_docs_give_in_code_style_exists(package: Package, page: Path) -> None:
    assert page_problems(package, page) == []


@pytest.mark.parametrize("name", ["ClipPrediction", "VideoPrediction"])
def test_predict_md_tables_list_every_field_of_the_results(name: str) -> None:
    import dataclasses

    from gkaan_cli.engine import predict

    text = (ROOT / "docs" / "predict.md").read_text(encoding="utf-8")
    section = text[text.index(f"## `{name}`") :]
    table = section[: section.index("\n\n", section.index("| field"))]
    documented = re.findall(r"^\| `(\w+)` \|", table, re.M)
    assert documented == [f.name for f in dataclasses.fields(getattr(predict, name))]


def test_the_checks_find_each_kind_of_drift(package: Package) -> None:
    """A name that is gone, a keyword a function lacks and a stale default are each found."""
    drifts = {
        "`is_regular_file`": "is_regular_file",
        '`@locked_output("out")`': "locked_output",
        "`predict_video(path, *, progress=None)`": "progress",
        '`Predictor(model, *, precision="fp32")`': "precision='fp32'",
        "`gkaan_cli.engine.apis`": "gkaan_cli.engine.apis",
        "`engine/apis.py`": "engine/apis.py",
        "`PredictorSettings`": "PredictorSettings",
        "`MAX_WIDGETS`": "MAX_WIDGETS",
    }
    for span, named in drifts.items():
        (problem,) = check_span(package, span.strip("`"), "page:1")
        assert named in problem
    fine = [
        'Predictor(model, *, device="auto", precision="auto")',
        "predict_video(path, *, keep_attention=False, on_progress=None) -> VideoPrediction",
        "gkaan_cli.engine.predict",
        "engine/timeline.py",
        "GKAAN.from_pretrained(spec, *, revision=None)",
        "ProgressEvent",
        "GKAAN_HUB_DEADLINE",
        "gkaan predict VIDEO --timeline",
        "--precision",
        "report.json",
    ]
    assert [p for span in fine for p in check_span(package, span, "page:1")] == []
