"""The mutants: AST operators over every module, plus curated single-line regressions.

A mutant replaces one source span (an expression or a statement) of one module. Its id is
``path:line:operator`` plus a short hash of the replaced and replacing text, so an id survives
edits elsewhere in the file; equivalent.toml matches on (path, before, after) text, which
survives line moves too.
"""
from __future__ import annotations

import ast
import difflib
import hashlib
from dataclasses import dataclass

#: Calls whose deletion removes a check: ``ctx.assert_close(...)`` as a statement, etc.
CHECK_CALLS = ("assert_close", "assert_differs", "_every_stack_is_used", "_check", "check_inputs",
               "check_call", "check_forward", "_require", "validate", "_validate")
#: Exception types an except clause may be widened from (``except ContractViolation`` ->
#: ``except Exception``): the kit's own, where the difference is the contract.
OWN_EXCEPTIONS = ("ContractViolation", "ProbeFailure", "NotApplicable", "KnownLimitation", "SpecError",
                  "UsageError", "GoldenStoreError", "TimeoutError")
NEGATE = {ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.GtE, ast.GtE: ast.Lt, ast.Gt: ast.LtE,
          ast.LtE: ast.Gt, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}

#: Curated regressions, one line each: (path, exact text on one line, replacement, name). The
#: issue's survivors that no operator above produces. A curated entry whose text is not found
#: (the code moved on) is reported by --list as missing.
CURATED: tuple[tuple[str, str, str, str], ...] = (
    ("contracts/rnn_contracts/probes/hygiene.py", "if not torch.equal(first, second):",
     "if not torch.allclose(first, second):", "determinism-allclose"),
    ("contracts/rnn_contracts/probes/hygiene.py", 'for name in ("output", "h_n", "c_n"):\n        first,',
     'for name in ("output",):\n        first,', "determinism-output-only"),
    ("contracts/rnn_contracts/precision.py", "return cudnn_tf32 or bool(backends.cuda.matmul.allow_tf32)",
     "return cudnn_tf32", "tf32-ignores-matmul"),
    ("contracts/rnn_contracts/goldens.py", "bad = err > atol + rtol * want.abs()", "bad = err > atol",
     "golden-ignores-rtol"),
    ("contracts/rnn_contracts/diagnose.py", "if len(actual) == len(expected) + 1:",
     "if len(actual) == len(expected) - 1:", "lost-axis-rank"),
    ("contracts/rnn_contracts/wrapper.py", 'return ("packed", _sig(value.data), tuple(value.batch_sizes.tolist()))',
     'return ("packed", _sig(value.data))', "cache-key-batch-sizes"),
    ("fixtures/pytest_rnn_contracts/conformance.py", 'if result.status == "known limitation":',
     'if False:', "conformance-known-limitation"),
    ("contracts/rnn_contracts/diagnose.py", "cell={spec.h_cell}", "cell={spec.h_out}", "lstm-hint-h-out"),
    ("contracts/rnn_contracts/outcome.py",
     'return [r for r in self.seed_rows() + self.contract_rows() if r.status == "failed"]',
     'return [r for r in self.contract_rows() if r.status == "failed"]', "exit-ignores-seed"),
    ("contracts/rnn_contracts/probes/state.py",
     'ctx.assert_close("output", zero.output, main.output, "an explicit zero h_0 must equal no h_0")',
     'pass', "zero-h0-removed"),
    ("fixtures/pytest_rnn_contracts/conformance.py", "elif not isinstance(reason, str) or not reason.strip():",
     "elif not isinstance(reason, str) or not reason:", "known-failures-blank"),
)


@dataclass(frozen=True)
class Mutant:
    id: str
    path: str
    line: int
    operator: str
    before: str  # the replaced lines, as in the file
    after: str  # what replaces them
    mutated: str  # the whole mutated module
    diff: str


def _offsets(source: str) -> list[int]:
    starts, total = [0], 0
    for line in source.splitlines(keepends=True):
        total += len(line)
        starts.append(total)
    return starts


def _make(path: str, source: str, start: int, end: int, new: str, operator: str, line: int) -> Mutant | None:
    mutated = source[:start] + new + source[end:]
    if mutated == source:
        return None
    try:
        compile(mutated, path, "exec")
    except SyntaxError:
        return None
    # Whole lines before/after, for the equivalents file and the report.
    a_lines, b_lines = source.splitlines(keepends=True), mutated.splitlines(keepends=True)
    matcher = difflib.SequenceMatcher(a=a_lines, b=b_lines, autojunk=False)
    before = after = ""
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            before += "".join(a_lines[i1:i2])
            after += "".join(b_lines[j1:j2])
    diff = "".join(difflib.unified_diff(a_lines, b_lines, f"a/{path}", f"b/{path}", n=2))
    digest = hashlib.sha1(f"{operator}\0{before}\0{after}".encode()).hexdigest()[:6]
    return Mutant(f"{path}:{line}:{operator}:{digest}", path, line, operator, before, after, mutated, diff)


def _call_name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _indent_of(source: str, offsets: list[int], lineno: int) -> str:
    text = source[offsets[lineno - 1]:offsets[lineno]]
    return text[: len(text) - len(text.lstrip())]


def generate(path: str, source: str) -> list[Mutant]:
    tree = ast.parse(source)
    offsets = _offsets(source)

    def span(node: ast.AST) -> tuple[int, int]:
        return (offsets[node.lineno - 1] + node.col_offset, offsets[node.end_lineno - 1] + node.end_col_offset)

    def stmt_span(node: ast.stmt) -> tuple[int, int]:
        # the whole lines of a statement (so deleting it leaves `pass` at its indentation)
        return offsets[node.lineno - 1], offsets[node.end_lineno]

    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    annotations: set[int] = set()
    for n in ast.walk(tree):
        for ann in (getattr(n, "annotation", None), getattr(n, "returns", None)):
            if ann is not None:
                annotations.update(id(x) for x in ast.walk(ann))

    # Conditions are mutated where they decide a verdict: the test of an `if` whose body raises,
    # returns or calls a check, and a returned expression. (Every condition of the kit would be
    # ~900 mutants, past the time a 2-core run can afford; see README.)
    guarded: set[int] = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.If) and any(isinstance(x, (ast.Raise, ast.Return)) or (
                isinstance(x, ast.Call) and _call_name(x) in CHECK_CALLS) for b in n.body for x in ast.walk(b)):
            guarded.update(id(x) for x in ast.walk(n.test))
        elif isinstance(n, ast.Return) and n.value is not None:
            guarded.update(id(x) for x in ast.walk(n.value))

    out: list[Mutant | None] = []
    for node in ast.walk(tree):
        if id(node) in annotations:
            continue
        if isinstance(node, (ast.Compare, ast.BoolOp, ast.UnaryOp)) and id(node) not in guarded:
            continue
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in NEGATE:
            new = ast.Compare(node.left, [NEGATE[type(node.ops[0])]()], node.comparators)
            s, e = span(node)
            out.append(_make(path, source, s, e, ast.unparse(new), "negate-compare", node.lineno))
        elif isinstance(node, ast.BoolOp) and len(node.values) == 2:
            new = ast.BoolOp(ast.Or() if isinstance(node.op, ast.And) else ast.And(), node.values)
            s, e = span(node)
            out.append(_make(path, source, s, e, ast.unparse(new), "swap-and-or", node.lineno))
        elif isinstance(node, ast.If) and not node.orelse and len(node.body) == 1 \
                and isinstance(node.body[0], ast.Raise):
            s, e = stmt_span(node)
            out.append(_make(path, source, s, e, _indent_of(source, offsets, node.lineno) + "pass\n",
                             "delete-guard", node.lineno))
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            func = node.value.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in CHECK_CALLS:
                s, e = stmt_span(node)
                out.append(_make(path, source, s, e, _indent_of(source, offsets, node.lineno) + "pass\n",
                                 "delete-check", node.lineno))
        elif isinstance(node, ast.ExceptHandler) and isinstance(node.type, ast.Name) \
                and node.type.id in OWN_EXCEPTIONS:
            s, e = span(node.type)
            out.append(_make(path, source, s, e, "Exception", "widen-except", node.lineno))
        elif isinstance(node, ast.Constant) and type(node.value) is float and id(node) not in docstrings \
                and node.value not in (0.0, 1.0):
            s, e = span(node)
            out.append(_make(path, source, s, e, repr(node.value * 10), "float-x10", node.lineno))
        elif isinstance(node, ast.Return) and isinstance(node.value, ast.Constant) \
                and isinstance(node.value.value, bool):
            s, e = span(node.value)
            out.append(_make(path, source, s, e, str(not node.value.value), "flip-return", node.lineno))
    for cpath, old, new, name in CURATED:
        if cpath != path:
            continue
        at = source.find(old)
        if at < 0:
            continue
        line = source.count("\n", 0, at) + 1
        out.append(_make(path, source, at, at + len(old), new, f"curated-{name}", line))
    seen: set[str] = set()
    result = []
    for m in sorted((m for m in out if m is not None), key=lambda m: (m.line, m.id)):
        if m.mutated in seen:
            continue
        seen.add(m.mutated)
        result.append(m)
    return result


def missing_curated(sources: dict[str, str]) -> list[str]:
    return [name for path, old, _, name in CURATED if path in sources and old not in sources[path]]
