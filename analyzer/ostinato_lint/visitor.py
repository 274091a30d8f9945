"""Find the workflow code of one module and run every rule over it.

Two passes.  ``ModuleIndex`` reads the module's top level: imports (with their aliases), the
module-level names, functions, classes and methods, and which of them are workflows or
activities.  Then ``analyze`` walks outward from each workflow: ``FunctionVisitor`` checks one
function body and reports which same-module functions and methods it refers to, and those are
checked in turn (transitively), attributed to the workflow that reached them.  Activities are
never entered: nondeterminism is their job.
"""

from __future__ import annotations

import ast
import builtins
import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .config import LintConfig
from .finding import Finding, Note
from .presets import DEFAULT_PRESET, PRESETS
from .project import MAX_HOPS, Reached, import_root, locate, parse
from .rules import RULES_BY_CODE, Check, Hit, Resolved, Rule, checks_by_node_type
from .table import METHOD_BANS

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef

_BUILTIN_NAMES = frozenset(dir(builtins))
_CHECKS = checks_by_node_type()
_WAIT = frozenset({"asyncio.wait", "asyncio.tasks.wait"})
# expressions that can hold the names an assignment binds: `a, (b, *c) = ...`
_TARGETS = (ast.Name, ast.Tuple, ast.List, ast.Starred)
_DEF_LINE = re.compile(r"^[ \t]*(?:async[ \t]+)?def[ \t]", re.MULTILINE)
# Generators that are deterministic when seeded with a constant: random.Random(42)
_SEEDABLE = frozenset({"random.Random", "numpy.random.default_rng", "numpy.random.RandomState"})
_SET_TYPE_NAMES = frozenset({"set", "frozenset", "Set", "FrozenSet", "AbstractSet", "MutableSet"})
_SET_METHODS = frozenset({"union", "intersection", "difference", "symmetric_difference", "copy"})
_SET_OPERATORS = (ast.BitOr, ast.BitAnd, ast.BitXor, ast.Sub)
_STR_TYPE_NAMES = frozenset({"str", "bytes", "LiteralString"})
_STR_BUILTINS = frozenset({"str", "bytes", "repr", "ascii", "format", "chr"})
_STR_METHODS = frozenset(
    {
        "encode",
        "decode",
        "lower",
        "upper",
        "casefold",
        "title",
        "capitalize",
        "strip",
        "lstrip",
        "rstrip",
        "format",
        "join",
        "replace",
        "removeprefix",
        "removesuffix",
        "hexdigest",
        "isoformat",
    }
)


def _is_str_annotation(annotation: ast.expr | None) -> bool:
    if isinstance(annotation, ast.Name):
        return annotation.id in _STR_TYPE_NAMES
    return isinstance(annotation, ast.Attribute) and annotation.attr in _STR_TYPE_NAMES


def _is_set_annotation(annotation: ast.expr | None) -> bool:
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        try:  # "set[str]" (a string annotation)
            annotation = ast.parse(annotation.value, mode="eval").body
        except SyntaxError:
            return False
    if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
        return False  # `set[str] | None` may be None: not iterated as a set for sure
    if isinstance(annotation, ast.Subscript):
        annotation = annotation.value
    if isinstance(annotation, ast.Name):
        return annotation.id in _SET_TYPE_NAMES
    if isinstance(annotation, ast.Attribute):
        return annotation.attr in _SET_TYPE_NAMES
    return False


def _bound_names(target: ast.expr) -> Iterator[str]:
    if isinstance(target, ast.Name):
        yield target.id
    elif isinstance(target, ast.Tuple | ast.List):
        for element in target.elts:
            yield from _bound_names(element)
    elif isinstance(target, ast.Starred):
        yield from _bound_names(target.value)


def _import_bindings(node: ast.Import | ast.ImportFrom) -> Iterator[tuple[str, str]]:
    """(local name, dotted import path) for every name an import statement binds."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.asname:
                yield alias.asname, alias.name
            else:
                top = alias.name.partition(".")[0]
                yield top, top
        return
    module = "." * node.level + (node.module or "")
    for alias in node.names:
        if alias.name != "*":
            dotted = module + alias.name if module.endswith(".") else f"{module}.{alias.name}"
            yield alias.asname or alias.name, dotted


def _chain_root(node: ast.expr) -> tuple[ast.expr, list[str]]:
    """Strip attributes and calls: ``a.b(x).c`` -> (Name a, ["b", "c"])."""
    attrs: list[str] = []
    while True:
        if isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Attribute):
            attrs.append(node.attr)
            node = node.value
        else:
            attrs.reverse()
            return node, attrs


@dataclass(frozen=True)
class Target:
    """A function or method to check."""

    node: FunctionNode
    qualname: str
    owner: str | None  # class name, for methods
    enclosing: tuple[Target, ...] = ()  # the functions a nested function is defined in


def _function_imports(node: FunctionNode) -> Iterator[tuple[str, str]]:
    """The imports a function body makes (not those of functions nested in it)."""
    pending: list[ast.AST] = list(node.body)
    while pending:
        current = pending.pop()
        if isinstance(current, ast.Import | ast.ImportFrom):
            yield from _import_bindings(current)
        elif not isinstance(
            current, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda
        ):
            pending.extend(ast.iter_child_nodes(current))


def _nested_functions(parent: Target) -> Iterator[Target]:
    """Functions defined inside ``parent`` (at any depth), as targets that know their enclosers."""
    pending: list[ast.AST] = list(parent.node.body)
    while pending:
        current = pending.pop()
        if isinstance(current, ast.FunctionDef | ast.AsyncFunctionDef):
            nested = Target(
                current,
                f"{parent.qualname}.<locals>.{current.name}",
                None,
                (*parent.enclosing, parent),
            )
            yield nested
            yield from _nested_functions(nested)
        elif not isinstance(current, ast.ClassDef | ast.Lambda):
            pending.extend(ast.iter_child_nodes(current))


def _is_set_literal(value: ast.expr) -> bool:
    if isinstance(value, ast.Set | ast.SetComp):
        return True
    return (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Name)
        and value.func.id in ("set", "frozenset")
    )


def _returns_set(node: FunctionNode) -> bool:
    """Declared to return a set, or every value it returns is a set literal / set() call."""
    if _is_set_annotation(node.returns):
        return True
    returned: list[ast.expr] = []
    pending: list[ast.AST] = list(node.body)
    while pending:
        current = pending.pop()
        if isinstance(current, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            continue
        if isinstance(current, ast.Return) and current.value is not None:
            returned.append(current.value)
        pending.extend(ast.iter_child_nodes(current))
    return bool(returned) and all(_is_set_literal(value) for value in returned)


def _statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Every statement in ``body`` and the blocks nested in it (not in nested functions)."""
    pending = list(body)
    while pending:
        statement = pending.pop()
        yield statement
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        for name in ("body", "orelse", "finalbody"):
            block = getattr(statement, name, None)
            if isinstance(block, list):
                pending.extend(block)
        for handler in getattr(statement, "handlers", ()):
            pending.extend(handler.body)
        for case in getattr(statement, "cases", ()):
            pending.extend(case.body)


def _class_set_attributes(node: ast.ClassDef) -> set[str]:
    """Attributes a class sets up as sets: ``x: set[str]`` / ``x = set()`` in its body, and
    ``self.x = set()`` (or ``self.x: set[str] = ...``) in any of its methods."""
    found: set[str] = set()
    for statement in node.body:
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
            _method_set_attributes(statement, found)
        elif isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            if _is_set_annotation(statement.annotation) or (
                statement.value is not None and _is_set_literal(statement.value)
            ):
                found.add(statement.target.id)
        elif isinstance(statement, ast.Assign) and _is_set_literal(statement.value):
            for target in statement.targets:
                found.update(_bound_names(target))
    return found


def _method_set_attributes(method: FunctionNode, found: set[str]) -> None:
    positional = [*method.args.posonlyargs, *method.args.args]
    if not positional:
        return
    self_name = positional[0].arg
    for node in _statements(method.body):
        if isinstance(node, ast.Assign):
            targets, is_set = node.targets, _is_set_literal(node.value)
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
            is_set = _is_set_annotation(node.annotation) or (
                node.value is not None and _is_set_literal(node.value)
            )
        else:
            continue
        if not is_set:
            continue
        for target in targets:
            if (
                isinstance(target, ast.Attribute)
                and isinstance(target.value, ast.Name)
                and target.value.id == self_name
            ):
                found.add(target.attr)


@dataclass
class ClassInfo:
    node: ast.ClassDef
    methods: dict[str, FunctionNode] = field(default_factory=dict)
    bases: list[str] = field(default_factory=list)
    _set_attrs: set[str] | None = None  # self.x = set() / x: set[str]; found when first asked

    @property
    def set_attrs(self) -> set[str]:
        if self._set_attrs is None:
            self._set_attrs = _class_set_attributes(self.node)
        return self._set_attrs


class ModuleIndex:
    """What the module's top level defines and imports."""

    def __init__(self, tree: ast.Module, config: LintConfig, source: str | None = None) -> None:
        self.config = config
        self.path: Path | None = None  # the module's file, when it has one (to follow imports)
        self.hops = 0  # how many imports away from the linted module this one is
        self.root: tuple[Path, tuple[str, ...]] | None = None  # import root, package
        self.followed: dict[str, list[Reached]] = {}  # imported function -> what it leads to
        self._source = source
        self.walrus = source is None or ":=" in source  # can an expression bind a name?
        self._enclosing_scopes: dict[int, _Scope] = {}
        self.imported: set[str] = set()  # every dotted path a module-level import names
        self.imports: dict[str, str] = {}
        self.star_imports: list[str] = []
        self.names: set[str] = set()
        self.set_names: set[str] = set()
        self.functions: dict[str, FunctionNode] = {}
        self.classes: dict[str, ClassInfo] = {}
        self._collect(tree.body)
        self.workflows: list[Target] = []
        self.activities: dict[str, Target] = {}
        self.direct_call_activities: set[str] = set()
        self.nested: dict[str, Target] = {}  # functions defined inside functions, by qualname
        self._classify()

    # -- collection -------------------------------------------------------------------------

    def _collect(self, body: Iterable[ast.stmt]) -> None:
        for statement in body:
            if isinstance(statement, ast.Import | ast.ImportFrom):
                if isinstance(statement, ast.ImportFrom) and any(
                    alias.name == "*" for alias in statement.names
                ):
                    self.star_imports.append(statement.module or "")
                    self.imported.add(statement.module or "")
                for name, dotted in _import_bindings(statement):
                    self.imported.add(dotted)
                    self.imports[name] = dotted
                    self.names.add(name)
            elif isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
                self.functions[statement.name] = statement
                self.names.add(statement.name)
            elif isinstance(statement, ast.ClassDef):
                self._collect_class(statement)
            elif isinstance(statement, ast.Assign | ast.AnnAssign | ast.AugAssign):
                targets = (
                    statement.targets if isinstance(statement, ast.Assign) else [statement.target]
                )
                value = statement.value
                is_set = (value is not None and _is_set_literal(value)) or (
                    isinstance(statement, ast.AnnAssign)
                    and _is_set_annotation(statement.annotation)
                )
                for target in targets:
                    for name in _bound_names(target):
                        self.names.add(name)
                        self.imports.pop(name, None)
                        if is_set:
                            self.set_names.add(name)
            else:
                for child in ast.iter_child_nodes(statement):
                    if isinstance(child, ast.stmt):
                        self._collect([child])
                    elif isinstance(child, ast.ExceptHandler | ast.match_case):
                        self._collect(child.body)
                    elif isinstance(child, ast.expr):
                        for node in ast.walk(child):
                            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                                self.names.add(node.id)

    def _collect_class(self, node: ast.ClassDef) -> None:
        info = ClassInfo(node)
        info.bases = [base.id for base in node.bases if isinstance(base, ast.Name)]
        for statement in node.body:
            if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
                info.methods[statement.name] = statement
        self.classes[node.name] = info
        self.names.add(node.name)

    def is_set_attribute(self, class_name: str, attr: str) -> bool:
        pending, seen = [class_name], set()
        while pending:
            current = pending.pop(0)
            info = self.classes.get(current)
            if info is None or current in seen:
                continue
            seen.add(current)
            if attr in info.set_attrs:
                return True
            pending.extend(info.bases)
        return False

    def decorated_with(
        self,
        node: FunctionNode | ast.ClassDef,
        names: frozenset[str],
        local_imports: dict[str, str] | None = None,
    ) -> bool:
        for decorator in node.decorator_list:
            root, attrs = _chain_root(decorator)
            if not isinstance(root, ast.Name):
                continue
            dotted = (local_imports or {}).get(root.id) or self.imports.get(root.id)
            if dotted is not None and ".".join([dotted, *attrs]) in names:
                return True
        return False

    def _classify(self) -> None:
        parents = [Target(node, name, None) for name, node in self.functions.items()]
        for class_name, info in self.classes.items():
            parents += [
                Target(method, f"{class_name}.{name}", class_name)
                for name, method in info.methods.items()
            ]
        # DBOS (and many tests) define workflows and steps inside functions, often importing
        # the framework there too: find them before choosing the presets
        nested_groups: list[tuple[list[Target], dict[str, str]]] = []
        for parent in self._parents_with_nested_defs(parents):
            nested = list(_nested_functions(parent))
            if not nested:
                continue
            for target in nested:
                self.nested[target.qualname] = target
            local_imports = dict(_function_imports(parent.node))
            self.imported.update(local_imports.values())
            nested_groups.append((nested, local_imports))
        self.presets = self.config.presets_for(frozenset(self.imported))
        self.profile = self.config.profile(self.presets)
        workflow_names = self.profile.workflow_decorators
        activity_names = self.profile.activity_decorators
        candidates = []
        for target in parents:
            owner = self.classes.get(target.owner) if target.owner else None
            if (
                owner is not None
                and self.decorated_with(owner.node, workflow_names)
                and not self.decorated_with(target.node, activity_names)
            ):
                self.workflows.append(target)
            else:
                candidates.append(target)
        self._classify_targets(candidates)
        for nested, local_imports in nested_groups:
            self._classify_targets(nested, local_imports)

    def enclosing_scope(self, outer: Target) -> _Scope:
        """The (read-only) scope of a function that encloses a checked nested function."""
        scope = self._enclosing_scopes.get(id(outer.node))
        if scope is None:
            scope = _Scope.of(outer.node, outer.owner, self.walrus)
            scope.prefix = f"{outer.qualname}.<locals>"
            self._enclosing_scopes[id(outer.node)] = scope
        return scope

    def _parents_with_nested_defs(self, parents: list[Target]) -> list[Target]:
        """The functions that may define functions: with the source at hand, those whose lines
        hold a ``def`` that is not a known function or method (one regex pass instead of walking
        every body); without it, all of them."""
        if self._source is None:
            return parents
        known = {target.node.lineno for target in parents}
        others: list[int] = []
        line, position = 1, 0
        for match in _DEF_LINE.finditer(self._source):
            line += self._source.count("\n", position, match.start())
            position = match.start()
            if line not in known:
                others.append(line)
        if not others:
            return []
        return [
            parent
            for parent in parents
            if any(
                parent.node.lineno < line <= (parent.node.end_lineno or parent.node.lineno)
                for line in others
            )
        ]

    def _classify_targets(
        self, candidates: list[Target], local_imports: dict[str, str] | None = None
    ) -> None:
        workflow_names = self.profile.workflow_decorators
        activity_names = self.profile.activity_decorators
        for target in candidates:
            if not target.node.decorator_list:
                continue
            if self.decorated_with(target.node, activity_names, local_imports):
                self.activities[target.qualname] = target
                if self.decorated_with(
                    target.node, self.profile.direct_call_decorators, local_imports
                ):
                    self.direct_call_activities.add(target.qualname)
            elif self.decorated_with(target.node, workflow_names, local_imports):
                self.workflows.append(target)

    # -- lookups ----------------------------------------------------------------------------

    def resolve_global(self, name: str) -> Resolved | None:
        if name in self.imports:
            return Resolved("import", self.imports[name])
        if name in self.names:
            return Resolved("module", name)
        for module in self.star_imports:
            if self.config.table.lookup(f"{module}.{name}") is not None:
                return Resolved("import", f"{module}.{name}")
        if name in _BUILTIN_NAMES:
            return Resolved("builtin", f"builtins.{name}")
        return None

    def find_method(self, class_name: str, name: str) -> Target | None:
        pending, seen = [class_name], set()
        while pending:
            current = pending.pop(0)
            info = self.classes.get(current)
            if info is None or current in seen:
                continue
            seen.add(current)
            if name in info.methods:
                return Target(info.methods[name], f"{current}.{name}", current)
            pending.extend(info.bases)
        return None

    def target_for(self, resolved: Resolved) -> Target | None:
        """The same-module function a reference leads to (a class leads to its __init__)."""
        if resolved.kind == "local":
            return self.nested.get(resolved.qualname)
        if resolved.kind not in ("module", "self"):
            return None
        head, _, rest = resolved.qualname.partition(".")
        method = rest.partition(".")[0]
        if head in self.classes:
            return self.find_method(head, method or "__init__")
        if not rest and head in self.functions:
            return Target(self.functions[head], head, None)
        return None


class _Scope:
    """Names bound by one function (or lambda) body."""

    __slots__ = (
        "class_name",
        "functions",
        "imports",
        "instances",
        "locals",
        "prefix",
        "self_name",
        "set_names",
        "str_names",
        "wait_sets",
    )

    def __init__(self) -> None:
        self.imports: dict[str, str] = {}
        self.locals: set[str] = set()
        self.set_names: set[str] = set()
        self.str_names: set[str] = set()  # str/bytes values (for hash())
        self.wait_sets: set[str] = set()  # done, pending = await asyncio.wait(...)
        self.instances: dict[str, str] = {}  # local name -> same-module class it was built from
        self.self_name: str | None = None
        self.class_name: str | None = None
        self.functions: set[str] = set()  # functions defined in this body
        self.prefix: str | None = None  # "outer.<locals>" for an enclosing function's scope

    @classmethod
    def of(cls, node: FunctionNode | ast.Lambda, owner: str | None, walrus: bool = True) -> _Scope:
        """The scope of a function body.  Without ``walrus`` (no ``:=`` in the module), only
        statements and assignment targets can bind names, so expressions are not walked."""
        scope = cls()
        arguments = node.args
        params = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
        params += [arg for arg in (arguments.vararg, arguments.kwarg) if arg is not None]
        for param in params:
            scope.locals.add(param.arg)
            if _is_set_annotation(param.annotation):
                scope.set_names.add(param.arg)
            if _is_str_annotation(param.annotation):
                scope.str_names.add(param.arg)
        positional = [*arguments.posonlyargs, *arguments.args]
        if (
            owner is not None
            and positional
            and not isinstance(node, ast.Lambda)
            and not any(
                isinstance(d, ast.Name) and d.id == "staticmethod" for d in node.decorator_list
            )
        ):
            scope.self_name = positional[0].arg
            scope.class_name = owner
        body: list[ast.AST] = [node.body] if isinstance(node.body, ast.expr) else [*node.body]
        scope._collect(body, walrus)
        return scope

    def _collect(self, pending: list[ast.AST], walrus: bool = True) -> None:
        declared_global: set[str] = set()
        while pending:
            node = pending.pop()
            if not walrus and isinstance(node, ast.expr) and not isinstance(node, _TARGETS):
                continue
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                self.locals.add(node.name)
                if not isinstance(node, ast.ClassDef):
                    self.functions.add(node.name)
                continue
            if isinstance(node, ast.Lambda):
                continue
            if isinstance(node, ast.Import | ast.ImportFrom):
                self.imports.update(_import_bindings(node))
            elif isinstance(node, ast.Global):
                declared_global.update(node.names)
            elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
                self.locals.add(node.id)
            elif isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and node.name:
                self.locals.add(node.name)
            elif isinstance(node, ast.MatchMapping) and node.rest:
                self.locals.add(node.rest)
            for name in node._fields:  # ast.iter_child_nodes, without the generator overhead
                value = getattr(node, name, None)
                if isinstance(value, ast.AST):
                    pending.append(value)
                elif isinstance(value, list):
                    pending.extend(item for item in value if isinstance(item, ast.AST))
        self.locals -= declared_global


class FunctionVisitor(ast.NodeVisitor):
    """Checks one workflow function (or a helper it reaches) and records what it refers to."""

    def __init__(
        self, index: ModuleIndex, target: Target, workflow: str, report: _Reporter
    ) -> None:
        self.index = index
        self.profile = index.profile
        self.table = index.config.table
        self.target = target
        self.workflow = workflow
        self.report = report
        self.scopes: list[_Scope] = []
        self.handlers: list[ast.ExceptHandler] = []  # the except clauses we are inside
        self._resolved: dict[int, Resolved | None] = {}
        self.references: list[Resolved] = []
        if target.qualname == workflow:
            self.suffix = ""
        else:
            self.suffix = f" (in '{target.qualname}', called from workflow '{workflow}')"

    def run(self) -> None:
        node = self.target.node
        # Defaults are evaluated once per process, when the module is imported: a workflow's
        # defaults are inputs that differ between workers.
        for default in (*node.args.defaults, *node.args.kw_defaults):
            if default is not None:
                self.visit(default)
        for outer in self.target.enclosing:
            self.scopes.append(self.index.enclosing_scope(outer))
        self.scopes.append(_Scope.of(node, self.target.owner, self.index.walrus))
        for statement in node.body:
            self.visit(statement)
        del self.scopes[:]

    # -- CheckContext -----------------------------------------------------------------------

    def resolve_name(self, name: str) -> Resolved | None:
        for scope in reversed(self.scopes):
            if name in scope.imports:
                return Resolved("import", scope.imports[name])
            if name == scope.self_name and scope.class_name is not None:
                return Resolved("self", scope.class_name)
            if name in scope.instances:
                return Resolved("self", scope.instances[name])
            if scope.prefix is not None and name in scope.functions:
                return Resolved("local", f"{scope.prefix}.{name}")
            if name in scope.locals:
                return None
        return self.index.resolve_global(name)

    def resolve(self, node: ast.expr) -> Resolved | None:
        key = id(node)  # several checks ask about the same node: resolve it once
        if key in self._resolved:
            return self._resolved[key]
        root, attrs = _chain_root(node)
        if not isinstance(root, ast.Name):
            resolved = None
        else:
            resolved = self.resolve_name(root.id)
            if resolved is not None and attrs:
                resolved = Resolved(resolved.kind, ".".join([resolved.qualname, *attrs]))
        self._resolved[key] = resolved
        return resolved

    def is_set_valued(self, node: ast.expr) -> bool:
        if isinstance(node, ast.Set | ast.SetComp):
            return True
        if isinstance(node, ast.Attribute):  # self.pending, set up as a set in any method
            resolved = self.resolve(node)
            if resolved is None or resolved.kind != "self" or not isinstance(node.value, ast.Name):
                return False
            owner, _, attr = resolved.qualname.rpartition(".")
            return "." not in owner and self.index.is_set_attribute(owner, attr)
        if isinstance(node, ast.Name):
            for scope in reversed(self.scopes):
                if node.id in scope.set_names:
                    return True
                if node.id in scope.locals or node.id in scope.imports:
                    return False
            return node.id in self.index.set_names
        if isinstance(node, ast.Call):
            func = node.func
            if self._returns_set(func):
                return True
            if isinstance(func, ast.Name):
                resolved = self.resolve_name(func.id)
                return resolved is not None and resolved.qualname in (
                    "builtins.set",
                    "builtins.frozenset",
                )
            return (
                isinstance(func, ast.Attribute)
                and func.attr in _SET_METHODS
                and self.is_set_valued(func.value)
            )
        if isinstance(node, ast.BinOp) and isinstance(node.op, _SET_OPERATORS):
            if self.is_set_valued(node.left):
                return True
            return not isinstance(node.op, ast.Sub) and self.is_set_valued(node.right)
        return False

    def is_str_valued(self, node: ast.expr) -> bool:
        """True when ``node`` is a ``str``/``bytes`` (or a tuple holding one) as far as we can
        tell: literals, f-strings, str()/bytes() calls, string methods, annotated names."""
        if isinstance(node, ast.Constant):
            return isinstance(node.value, str | bytes)
        if isinstance(node, ast.JoinedStr):
            return True
        if isinstance(node, ast.Tuple):
            return any(self.is_str_valued(element) for element in node.elts)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
            return self.is_str_valued(node.left) or (
                isinstance(node.op, ast.Add) and self.is_str_valued(node.right)
            )
        if isinstance(node, ast.Subscript):
            return isinstance(node.slice, ast.Slice) and self.is_str_valued(node.value)
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name):
                resolved = self.resolve_name(func.id)
                return resolved is not None and resolved.qualname in {
                    f"builtins.{name}" for name in _STR_BUILTINS
                }
            return isinstance(func, ast.Attribute) and func.attr in _STR_METHODS
        if isinstance(node, ast.Name):
            for scope in reversed(self.scopes):
                if node.id in scope.str_names:
                    return True
                if node.id in scope.locals or node.id in scope.imports:
                    return False
        return False

    def _returns_set(self, func: ast.expr) -> bool:
        """``self.ids()`` / ``helper()`` where that same-module function returns a set."""
        if not isinstance(func, ast.Name | ast.Attribute):
            return False
        resolved = self.resolve(func)
        if resolved is None or resolved.kind not in ("module", "self", "local"):
            return False
        if resolved.qualname in self.index.classes:
            return False  # a constructor
        target = self.index.target_for(resolved)
        return target is not None and _returns_set(target.node)

    def is_wait_set(self, node: ast.expr) -> bool:
        if not isinstance(node, ast.Name):
            return False
        for scope in reversed(self.scopes):
            if node.id in scope.wait_sets:
                return True
            if node.id in scope.locals:
                return False
        return False

    def scheduled_inputs(self, call: ast.Call) -> list[ast.expr] | None:
        """The input arguments when ``call`` schedules an activity or child, else None."""
        func = call.func
        if not isinstance(func, ast.Attribute | ast.Name):
            return None
        if (func.attr if isinstance(func, ast.Attribute) else func.id) not in (
            self.profile.scheduler_names
        ):
            return None
        resolved = self.resolve(func)
        if resolved is None or resolved.qualname not in self.profile.schedulers:
            return None
        inputs = list(call.args[1:])
        for keyword in call.keywords:
            if keyword.arg in self.profile.input_keywords:
                inputs.append(keyword.value)
        return inputs

    def activity_name(self, node: ast.expr) -> str | None:
        if not isinstance(node, ast.Name | ast.Attribute):
            return None
        resolved = self.resolve(node)
        if resolved is None or resolved.kind not in ("module", "self", "local"):
            return None
        if resolved.qualname in self.index.direct_call_activities:
            return None  # DBOS steps are meant to be called directly
        return resolved.qualname if resolved.qualname in self.index.activities else None

    def is_banned(self, node: ast.expr) -> bool:
        resolved = self.resolve(node)
        return (
            resolved is not None
            and resolved.kind in ("import", "builtin")
            and self.table.lookup(resolved.qualname) is not None
        )

    # -- traversal --------------------------------------------------------------------------

    def visit(self, node: ast.AST) -> None:
        checks = _CHECKS.get(type(node))
        if checks:
            self._run_checks(node, checks)
        super().visit(node)

    def _run_checks(self, node: ast.AST, checks: list[tuple[Rule, Check]]) -> None:
        for rule, check in checks:
            for hit in check(self, node):
                self._emit(rule, hit)

    def _emit(self, rule: Rule, hit: Hit) -> None:
        if rule.code in self.profile.disabled:
            return
        line = getattr(hit.node, "lineno", 1)
        col = getattr(hit.node, "col_offset", 0)
        advice = self.profile.advice.get(rule.code) or hit.advice or rule.advice
        self.report(line, col, rule.code, f"{hit.detail}; {advice}{self.suffix}", self.workflow)
        self.report.raw.setdefault((line, col, rule.code), (hit.detail, advice))

    def _visit_function_like(self, node: FunctionNode | ast.Lambda) -> None:
        if not isinstance(node, ast.Lambda):
            for decorator in node.decorator_list:
                self.visit(decorator)
        for default in (*node.args.defaults, *node.args.kw_defaults):
            if default is not None:
                self.visit(default)
        self.scopes.append(_Scope.of(node, None, self.index.walrus))
        if isinstance(node, ast.Lambda):
            self.visit(node.body)
        else:
            for statement in node.body:
                self.visit(statement)
        self.scopes.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._visit_function_like(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._visit_function_like(node)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._visit_function_like(node)

    def _visit_comprehension(
        self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp
    ) -> None:
        """A comprehension's variables are its own: `[t.x for t in ts]` is not the module `t`."""
        scope = _Scope()
        for generator in node.generators:
            scope.locals.update(_bound_names(generator.target))
        self.scopes.append(scope)
        self.generic_visit(node)
        self.scopes.pop()

    def visit_ListComp(self, node: ast.ListComp) -> None:
        self._visit_comprehension(node)

    def visit_SetComp(self, node: ast.SetComp) -> None:
        self._visit_comprehension(node)

    def visit_GeneratorExp(self, node: ast.GeneratorExp) -> None:
        self._visit_comprehension(node)

    def visit_DictComp(self, node: ast.DictComp) -> None:
        self._visit_comprehension(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for child in (*node.decorator_list, *node.bases, *node.keywords):
            self.visit(child)
        for statement in node.body:
            self.visit(statement)

    def _track_set_binding(self, target: ast.expr, is_set: bool) -> None:
        if isinstance(target, ast.Name) and self.scopes:
            if is_set:
                self.scopes[-1].set_names.add(target.id)
            else:
                self.scopes[-1].set_names.discard(target.id)

    def _track_str_binding(self, target: ast.expr, is_str: bool) -> None:
        if isinstance(target, ast.Name) and self.scopes:
            if is_str:
                self.scopes[-1].str_names.add(target.id)
            else:
                self.scopes[-1].str_names.discard(target.id)

    def _track_instance(self, target: ast.expr, value: ast.expr) -> None:
        """``pricing = Pricing()``: later ``pricing.price()`` reaches ``Pricing.price``."""
        if not isinstance(target, ast.Name) or not self.scopes:
            return
        instances = self.scopes[-1].instances
        instances.pop(target.id, None)
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name):
            resolved = self.resolve_name(value.func.id)
            if (
                resolved is not None
                and resolved.kind == "module"
                and resolved.qualname in self.index.classes
            ):
                instances[target.id] = resolved.qualname

    def _track_wait(self, target: ast.expr, value: ast.expr) -> None:
        """``done, pending = await asyncio.wait(...)``: both names hold unordered sets."""
        if not self.scopes:
            return
        if isinstance(target, ast.Name):
            self.scopes[-1].wait_sets.discard(target.id)
        if not isinstance(target, ast.Tuple | ast.List):
            return
        names = [element.id for element in target.elts if isinstance(element, ast.Name)]
        wait_sets = self.scopes[-1].wait_sets
        wait_sets.difference_update(names)
        call = value.value if isinstance(value, ast.Await) else value
        if isinstance(call, ast.Call):
            resolved = self.resolve(call.func)
            if resolved is not None and resolved.qualname in _WAIT and len(names) == 2:
                wait_sets.update(names)

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        for target in node.targets:
            self.visit(target)
            self._track_set_binding(target, self.is_set_valued(node.value))
            self._track_str_binding(target, self.is_str_valued(node.value))
            self._track_instance(target, node.value)
            self._track_wait(target, node.value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
        self.visit(node.target)  # the annotation is not executed code worth checking
        is_set = _is_set_annotation(node.annotation) or (
            node.value is not None and self.is_set_valued(node.value)
        )
        self._track_set_binding(node.target, is_set)
        self._track_str_binding(
            node.target,
            _is_str_annotation(node.annotation)
            or (node.value is not None and self.is_str_valued(node.value)),
        )

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        self._track_set_binding(node.target, self.is_set_valued(node.value))

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        # The exception types are matched, not called; OST111 looks at them directly.
        self.handlers.append(node)
        for statement in node.body:
            self.visit(statement)
        self.handlers.pop()

    def enclosing_handlers(self) -> list[ast.ExceptHandler]:
        return list(self.handlers)

    def visit_arg(self, node: ast.arg) -> None:
        return None  # annotations only

    def visit_Name(self, node: ast.Name) -> None:
        self._visit_chain(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self._visit_chain(node)

    def visit_Call(self, node: ast.Call) -> None:
        self._visit_chain(node)

    def _visit_chain(self, node: ast.expr) -> None:
        """Check a whole ``a.b(x).c(y)`` chain once, at its start, then visit its arguments."""
        calls: list[ast.Call] = []
        segments: list[tuple[str, bool]] = []  # (name, called), outermost first
        current, called = node, False
        while True:
            if isinstance(current, ast.Call):
                calls.append(current)
                current, called = current.func, True
            elif isinstance(current, ast.Attribute):
                segments.append((current.attr, called))
                current, called = current.value, False
            else:
                break
        if isinstance(current, ast.Name):
            segments.append((current.id, called))
            if isinstance(current.ctx, ast.Load) and not self._seeded_with_constant(calls):
                self._check_reference(node, current, segments[::-1])
        else:
            self.visit(current)
        for name, was_called in segments[:-1]:
            ban = METHOD_BANS.get(name)
            if ban is not None and was_called:
                rule = RULES_BY_CODE[ban.code]
                self._emit(rule, Hit(node, f".{name}() {rule.problem}", ban.advice))
        for call in reversed(calls):
            if call is not node:
                inner_checks = _CHECKS.get(ast.Call)
                if inner_checks:
                    self._run_checks(call, inner_checks)
            self._visit_arguments(call)

    def _seeded_with_constant(self, calls: list[ast.Call]) -> bool:
        """``random.Random(42)`` (and the chain built on it) repeats itself on every replay."""
        if not calls:
            return False
        innermost = calls[-1]
        resolved = self.resolve(innermost.func)
        return (
            resolved is not None
            and resolved.kind == "import"
            and resolved.qualname in _SEEDABLE
            and len(innermost.args) == 1
            and not innermost.keywords
            and isinstance(innermost.args[0], ast.Constant)
            and isinstance(innermost.args[0].value, int | str | bytes)
            and not isinstance(innermost.args[0].value, bool)
        )

    def _visit_arguments(self, call: ast.Call) -> None:
        resolved = self.resolve(call.func)
        qualname = resolved.qualname if resolved is not None else ""
        if qualname in self.profile.side_effects:
            return
        arguments: list[ast.expr] = list(call.args)
        if (
            qualname in self.profile.schedulers
            and arguments
            and isinstance(arguments[0], ast.Name | ast.Attribute)
        ):
            arguments = arguments[1:]
        for argument in arguments:
            self.visit(argument)
        for keyword in call.keywords:
            self.visit(keyword.value)

    def _check_reference(
        self, node: ast.expr, root: ast.Name, segments: list[tuple[str, bool]]
    ) -> None:
        base = self.resolve_name(root.id)
        if base is None:
            return
        qualname = ".".join([base.qualname, *(name for name, _ in segments[1:])])
        if base.kind in ("module", "self", "local"):
            self.references.append(Resolved(base.kind, qualname))
            return
        if isinstance(node, ast.Attribute) and not isinstance(node.ctx, ast.Load):
            return  # assigning to a banned name (monkeypatching in a test) is not calling it
        match = self.table.lookup(qualname)
        if match is None:
            if base.kind == "import" and self.index.path is not None:
                self._follow_import(node, base, segments)
            return
        base_depth = len(base.qualname.split("."))
        last = min(max(0, match.depth - base_depth), len(segments) - 1)
        shown = match.name
        if match.wildcard:  # name what was called: requests.Session().get, not requests.Session
            while last < len(segments) - 1 and not segments[last][1]:
                last += 1
            shown = ".".join([base.qualname, *(name for name, _ in segments[1 : last + 1])])
        rule = RULES_BY_CODE[match.ban.code]
        if segments[last][1]:
            shown += "()"
        self._emit(rule, Hit(node, f"{shown} {rule.problem}", match.ban.advice))

    def _follow_import(
        self, node: ast.expr, base: Resolved, segments: list[tuple[str, bool]]
    ) -> None:
        """``quote(x)`` where ``quote`` comes from another module of the project: report at
        this call what that function leads to."""
        called = next((i for i, (_, was_called) in enumerate(segments) if was_called), None)
        if called is None:
            return
        dotted = ".".join([base.qualname, *(name for name, _ in segments[1 : called + 1])])
        shown = ".".join(name for name, _ in segments[: called + 1])
        for reached in _reached_through(self.index, dotted):
            rule = RULES_BY_CODE[reached.code]
            self._emit(
                rule,
                Hit(node, f"{shown}() leads to {reached.where}: {reached.detail}", reached.advice),
            )


_REACHED: dict[tuple[object, ...], list[Reached]] = {}


def _reached_through(index: ModuleIndex, dotted: str) -> list[Reached]:
    """What the project function ``dotted`` (an import path seen from ``index``'s module) and
    the same-module code it calls do that workflow code must not (bounded by MAX_HOPS)."""
    if index.path is None or index.hops >= MAX_HOPS:
        return []
    known = index.followed.get(dotted)
    if known is None:
        known = index.followed[dotted] = _reached_uncached(index, dotted)
    return known


def _reached_uncached(index: ModuleIndex, dotted: str) -> list[Reached]:
    assert index.path is not None
    if index.root is None:
        index.root = import_root(index.path)
    located = locate(dotted, index.path, index.root)
    if located is None:
        return []
    module, name = located
    try:
        mtime_ns = module.stat().st_mtime_ns
    except OSError:
        return []
    key = (module, mtime_ns, name, index.hops, index.config.cache_key)
    if key in _REACHED:
        return _REACHED[key]
    _REACHED[key] = []  # a cycle back to this function finds nothing more
    reached: list[Reached] = []
    parsed = parse(module, mtime_ns)
    if parsed is not None:
        tree, source = parsed
        helper = ModuleIndex(tree, index.config, source)
        helper.path, helper.hops = module, index.hops + 1
        node = helper.functions.get(name)
        is_durable = name in helper.activities or any(w.qualname == name for w in helper.workflows)
        if node is not None and not is_durable:
            report = _Reporter(str(module))
            _check_from(helper, [(Target(node, name, None), name)], report)
            root, _ = import_root(module)
            try:
                where = module.relative_to(root).as_posix()
            except ValueError:  # a symlinked package: name the file alone
                where = module.name
            for (line, _col, code), (detail, advice) in sorted(
                report.raw.items(), key=lambda item: (item[0][0], item[0][1], item[0][2])
            ):
                reached.append(Reached(code, detail, advice, f"{where}:{line}"))
    if len(_REACHED) > 4096:
        _REACHED.clear()
    _REACHED[key] = reached
    return reached


class _Reporter:
    """Collects findings for one file, once per (line, column, code)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.findings: dict[tuple[int, int, str], Finding] = {}
        self.raw: dict[tuple[int, int, str], tuple[str, str]] = {}  # (detail, advice)

    def __call__(self, line: int, col: int, code: str, message: str, workflow: str) -> None:
        key = (line, col, code)
        if key not in self.findings:
            self.findings[key] = Finding(self.path, line, col + 1, code, message, workflow)


def _notes(index: ModuleIndex, path: str) -> Iterator[Note]:
    config = index.config
    if not config.presets:
        if index.presets != (DEFAULT_PRESET,):
            names = ", ".join(index.presets)
            yield Note(
                f"detected:{names}",
                f"ostinato-lint: note: no preset configured; {path} and files like it are "
                f"checked as {names} code (detected from imports); set preset = [...] under "
                "[tool.ostinato.lint] to choose",
            )
        return
    decorated: list[FunctionNode | ast.ClassDef] = [
        *index.functions.values(),
        *(target.node for target in index.nested.values()),
    ]
    for info in index.classes.values():
        decorated += [info.node, *info.methods.values()]
    for name, preset in PRESETS.items():
        if name in index.presets:
            continue
        if any(index.decorated_with(node, preset.workflow_decorators) for node in decorated):
            yield Note(
                f"unconfigured:{name}",
                f"ostinato-lint: warning: {path} defines {name} workflows but the '{name}' "
                f'preset is not configured, so they are not checked; add "{name}" to preset = '
                "[...] under [tool.ostinato.lint]",
            )


def analyze(
    tree: ast.Module,
    path: str,
    config: LintConfig,
    notes: list[Note] | None = None,
    source: str | None = None,
) -> list[Finding]:
    """Every finding in the workflow code of one parsed module, sorted by position.  Notes about
    how the module was checked (detected presets, unconfigured frameworks) go to ``notes``;
    ``source`` (the module's text) only makes indexing faster."""
    index = ModuleIndex(tree, config, source)
    if not path.startswith("<") and path not in ("stdin", "-", "(none)"):
        index.path = Path(path)
    if notes is not None:
        notes.extend(_notes(index, path))
    report = _Reporter(path)
    _check_from(index, [(target, target.qualname) for target in index.workflows], report)
    return sorted(report.findings.values())


def _check_from(index: ModuleIndex, roots: list[tuple[Target, str]], report: _Reporter) -> None:
    """Check ``roots`` (target, the workflow it counts for) and what they reach in the module."""
    queue: deque[tuple[Target, str]] = deque(roots)
    seen = {id(target.node) for target, _ in roots}
    while queue:
        target, workflow = queue.popleft()
        visitor = FunctionVisitor(index, target, workflow, report)
        visitor.run()
        for reference in visitor.references:
            callee = index.target_for(reference)
            if callee is None or callee.qualname in index.activities or id(callee.node) in seen:
                continue
            seen.add(id(callee.node))
            queue.append((callee, workflow))
