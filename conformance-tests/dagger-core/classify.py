"""What each of Dagger's core/integration tests needs, read from its source, and what each
failure is about, read from its message.

Two halves, both mechanical and both refined by hand only through the tables below:

- `scan(dir)` reads the `*_test.go` files (and the package's other `.go` files) of Dagger's
  core/integration package, finds every suite (`func TestX(t *testing.T)` calling
  `testctx.New(...).RunTests(XSuite{})`) and every test method of it, and decides what each
  test needs from the identifiers and string literals in its body and, transitively, in the
  package-level functions, variables and constants it refers to.
- `cause(message)` turns the first line of a failure into a cause key ("missing field
  Directory.changes", "image pull from a public registry", ...) so that failures group.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re

# --- what a test needs -----------------------------------------------------------------

# Needs that put a test outside the "core-API-only" set (the denominator of the target):
# the internet (`public-image`: an image from Docker Hub or another public registry;
# `remote-url`: a Git or HTTP URL on the internet), modules, a nested engine or the `dagger`
# CLI, and the registries Dagger's own CI binds into its test engine under the host names
# `registry` and `privateregistry`.
EXCLUDING = ("public-image", "remote-url", "modules", "nested-engine", "dagger-ci-registry")
# Needs recorded for information only: such tests stay in the core-API-only set.
INFORMATIVE = ("services", "git", "http", "dockerfile", "own-session")

# Identifiers of core/integration (images.go, suite_test.go) naming Docker Hub or other
# public images.
PUBLIC_IMAGE_IDENTIFIERS = (
    "alpineImage",
    "wolfiImage",
    "busyboxImage",
    "golangImage",
    "debianImage",
    "rhelImage",
    "alpineArm",
    "alpineAmd",
    "nodeImage",
    "pythonImage",
)

# Package-level helpers whose use means modules (they write dagger.json, call functions of
# a module, or drive the module CLI). A helper that calls one of these inherits the need.
MODULE_HELPERS = (
    "modInit",
    "withModInit",
    "withModInitAt",
    "withModuleFixture",
    "daggerCall",
    "daggerCallAt",
    "daggerFunctions",
    "daggerQuery",
    "daggerQueryAt",
    "daggerShell",
    "daggerShellNoMod",
    "daggerInitPython",
    "daggerInitPythonAt",
    "daggerClientInstall",
    "daggerClientInstallAt",
    "daggerUpInitModFn",
    "initDangModule",
    "initDangBlueprint",
    "initStandaloneDangModule",
    "initMCPTestModule",
    "sdkSource",
    "sdkSourceAt",
    "sdkCodegenFile",
    "moduleResolveClientContainer",
)
MODULE_PATTERNS = (
    r'"dagger\.json"',
    r"\bModuleSource\(",
    r"\bmoduleSource\s*\(",
    r"\.AsModule\(",
    r"\basModule\b",
    r"\bCurrentModule\(",
    r'"--sdk[= ]',
    r'daggerExec\(\s*"(?:init|call|functions|install|develop|module)"',
)

# Helpers that run the `dagger` CLI (on the host or in a container) or a second engine.
NESTED_HELPERS = (
    "daggerCliPath",
    "daggerLinuxCliPath",
    "daggerCliFile",
    "daggerCliBase",
    "daggerExec",
    "daggerExecFail",
    "daggerNonNestedExec",
    "daggerNonNestedRun",
    "daggerNonNestedRunWithWorkspaceModules",
    "daggerForwardSecrets",
    "devEngineContainer",
    "devEngineContainerAsService",
    "devEngineContainerWithStateKey",
    "engineClientContainer",
    "engineWithConfig",
    "engineWithBkConfig",
    "nestedDaggerContainer",
    "testCLIBinPath",
)
NESTED_PATTERNS = (
    r"ExperimentalPrivilegedNesting",
    r"experimentalPrivilegedNesting",
    r"_EXPERIMENTAL_DAGGER_",
)

CI_REGISTRY_PATTERNS = (
    r"\bregistryHost\b",
    r"\bprivateRegistryHost\b",
    r"\bregistryRef\(",
    r"\bprivateRegistryRef\(",
    r"\bprivateregistry:5000",
    r"\bregistry:5000",
)

INFORMATIVE_PATTERNS = {
    "services": (
        r"\bAsService\(",
        r"\basService\b",
        r"\bWithServiceBinding\(",
        r"\bwithServiceBinding\b",
        r"\bWithExposedPort\(",
        r"\.Tunnel\(",
        r"\.Up\(",
    ),
    "git": (r"\.Git\(", r"\bgit\s*\(\s*url"),
    "http": (r"\.HTTP\(", r"\bhttp\s*\(\s*url"),
    "dockerfile": (r"\bDockerBuild\(", r"\bdockerBuild\b"),
    # The test opens its own session with a work directory (dagger.WithWorkdir): Dagger's Go
    # SDK refuses that inside an existing session, so it can pass only with --connect session.
    "own-session": (r"\bdagger\.WithWorkdir\(",),
}

# Image references in string literals: `From("X")`, `from(address: "X")` (also inside a
# GraphQL string, where the quotes are escaped), and Dockerfile `FROM X` lines.
IMAGE_LITERALS = (
    re.compile(r'\bFrom\(\s*"([^"\s]+)"'),
    re.compile(r'\bfrom\(\s*address:\s*\\?"([^"\\\s]+)'),
    re.compile(r'^\s*FROM\s+(?:--platform=\S+\s+)?([^\s$"`{]+)', re.M),
)
LOCAL_IMAGE_PREFIXES = ("registry:5000", "privateregistry:5000", "localhost", "127.0.0.1", "scratch")
URL_LITERAL = re.compile(r"\b(?:https?|git|ssh)://(?:[^@/\s\"`]+@)?([A-Za-z0-9.-]+)")
SCP_GIT_LITERAL = re.compile(r"\bgit@([A-Za-z0-9.-]+\.[a-z]{2,}):")
LOCAL_HOST_SUFFIXES = (".local", ".internal", ".test", ".svc", ".invalid", ".example", ".localhost")


def _public_image(ref: str) -> bool:
    if not re.match(r"^[a-z0-9]", ref) or "%" in ref:
        return False  # a placeholder, a format string or a variable
    return not ref.startswith(LOCAL_IMAGE_PREFIXES)


def _public_host(host: str) -> bool:
    host = host.lower().rstrip(".")
    if "." not in host or host.startswith("127.") or host == "localhost":
        return False
    return not host.endswith(LOCAL_HOST_SUFFIXES)


def strip_comments(source: str, blank_strings: bool = False) -> str:
    """Go source with comments blanked; with `blank_strings`, string and rune literals too
    (their quotes kept). Offsets and line numbers are preserved either way."""
    out = []
    i, n = 0, len(source)

    def blank(text: str) -> str:
        return re.sub(r"[^\n]", " ", text)

    while i < n:
        c = source[i]
        if c == "/" and source.startswith("//", i):
            j = source.find("\n", i)
            j = n if j < 0 else j
            out.append(blank(source[i:j]))
            i = j
        elif c == "/" and source.startswith("/*", i):
            j = source.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(blank(source[i:j]))
            i = j
        elif c in "\"'`":
            j = i + 1
            while j < n and source[j] != c:
                if source[j] == "\\" and c != "`":
                    j += 1
                elif source[j] == "\n" and c != "`":
                    break
                j += 1
            literal = source[i : j + 1]
            out.append(c + blank(literal[1:-1]) + literal[-1:] if blank_strings and len(literal) > 1 else literal)
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


@dataclasses.dataclass
class Symbol:
    name: str
    body: str  # comments stripped, string literals kept: where needs are read
    skeleton: str  # string literals blanked too: where references to other symbols are read
    direct: dict[str, list[str]]  # need -> evidence


@dataclasses.dataclass
class TestCase:
    suite: str  # the Test<Suite> entry point, e.g. TestContainer
    name: str  # the method, e.g. TestFrom
    file: str
    line: int
    needs: dict[str, list[str]]  # need -> evidence (static scan)

    @property
    def id(self) -> str:
        return f"{self.suite}/{self.name}"


def direct_needs(body: str) -> dict[str, list[str]]:
    needs: dict[str, list[str]] = {}

    def add(need: str, evidence: str) -> None:
        _add(needs, need, evidence)

    for ident in PUBLIC_IMAGE_IDENTIFIERS:
        if re.search(rf"(?<![.\w]){ident}\b", body):
            add("public-image", ident)
    for match in re.finditer(r"\bdistconsts\.(\w+Image)\b", body):
        add("public-image", "distconsts." + match.group(1))
    for pattern in IMAGE_LITERALS:
        for match in pattern.finditer(body):
            if _public_image(match.group(1)):
                add("public-image", f"image {match.group(1)}")
    for pattern in (URL_LITERAL, SCP_GIT_LITERAL):
        for match in pattern.finditer(body):
            if _public_host(match.group(1)):
                add("remote-url", f"url host {match.group(1)}")
    for ident in MODULE_HELPERS:
        if re.search(rf"(?<![.\w]){ident}\b", body):
            add("modules", ident)
    for pattern in MODULE_PATTERNS:
        if re.search(pattern, body):
            add("modules", pattern.replace("\\", ""))
    for ident in NESTED_HELPERS:
        if re.search(rf"(?<![.\w]){ident}\b", body):
            add("nested-engine", ident)
    for pattern in NESTED_PATTERNS:
        if re.search(pattern, body):
            add("nested-engine", pattern)
    for pattern in CI_REGISTRY_PATTERNS:
        if re.search(pattern, body):
            add("dagger-ci-registry", pattern.replace("\\b", "").replace("\\", ""))
    for need, patterns in INFORMATIVE_PATTERNS.items():
        for pattern in patterns:
            if re.search(pattern, body):
                add(need, pattern.replace("\\b", "").replace("\\", ""))
    return needs


FUNC_LINE = re.compile(r"^func (?:\((?:\w+ )?\*?(\w+)(?:\[[^\]]*\])?\) )?(\w+)", re.M)
SUITE_ENTRY = re.compile(r"^func (Test\w+)\(t \*testing\.T\) \{\n(.*?)^\}", re.M | re.S)
TEST_METHOD = re.compile(r"^func \((?:\w+ )?\*?(\w+)\) (Test\w+)\(\w+ context\.Context, \w+ \*testctx\.T\)", re.M)
VALUE_DECL = re.compile(r"^(?:var|const) (\w+)\b[^=\n(]*=", re.M)
VALUE_BLOCK = re.compile(r"^(?:var|const) \(\n(.*?)^\)", re.M | re.S)


def _top_level_blocks(skeleton: str):
    """(receiver, name, start, end) of each top-level func; its body ends at a line `}`."""
    for match in FUNC_LINE.finditer(skeleton):
        end = skeleton.find("\n}\n", match.start())
        end = len(skeleton) if end < 0 else end + 2
        yield match.group(1), match.group(2), match.start(), end


def _value_decls(skeleton: str):
    """(name, start, end) of each package-level var or const."""
    for decl in VALUE_DECL.finditer(skeleton):
        nxt = re.compile(r"^\S", re.M).search(skeleton, decl.end())
        yield decl.group(1), decl.start(), nxt.start() if nxt else len(skeleton)
    for block in VALUE_BLOCK.finditer(skeleton):
        for item in re.finditer(r"^\t(\w+)\b[^=\n]*=.*?(?=^\t\w|^\)|\Z)", skeleton[block.start() : block.end()], re.M | re.S):
            yield item.group(1), block.start() + item.start(), block.start() + item.end()


def _add(needs: dict[str, list[str]], need: str, evidence: str) -> None:
    items = needs.setdefault(need, [])
    if evidence not in items and len(items) < 5:
        items.append(evidence)


def scan(package_dir: pathlib.Path) -> dict[str, TestCase]:
    """Every test method of every testctx suite in Dagger's core/integration, with its needs."""
    symbols: dict[str, Symbol] = {}
    methods: dict[tuple[str, str], tuple[str, int, str, str]] = {}  # (type, name) -> file, line, body, skeleton
    entries: dict[str, list[str]] = {}  # TestX -> suite types
    for path in sorted(package_dir.glob("*.go")):
        source = path.read_text()
        code = strip_comments(source)
        skeleton = strip_comments(source, blank_strings=True)
        for entry in SUITE_ENTRY.finditer(code):
            types = re.findall(r"RunTests\(([^)]*)\)", entry.group(2))
            names = [t.strip().removesuffix("{}").strip() for group in types for t in group.split(",")]
            if names:
                entries[entry.group(1)] = [n.lstrip("&") for n in names if n]
        for receiver, name, start, end in _top_level_blocks(skeleton):
            line = skeleton.count("\n", 0, start) + 1
            if receiver and name.startswith("Test") and TEST_METHOD.match(skeleton, start):
                methods[(receiver, name)] = (path.name, line, code[start:end], skeleton[start:end])
            elif not receiver:
                symbols.setdefault(name, Symbol(name, code[start:end], skeleton[start:end], {}))
        for name, start, end in _value_decls(skeleton):
            symbols.setdefault(name, Symbol(name, code[start:end], skeleton[start:end], {}))
    for symbol in symbols.values():
        symbol.direct = direct_needs(symbol.body)

    def referenced(skeleton: str, self_name: str | None) -> list[str]:
        idents = set(re.findall(r"(?<![.\w])([A-Za-z_]\w*)\b", skeleton))
        return sorted(i for i in idents if i in symbols and i != self_name)

    # Needs of a symbol: its own plus those of every symbol it refers to, transitively.
    resolved: dict[str, dict[str, list[str]]] = {}

    def needs_of(name: str, stack: tuple[str, ...] = ()) -> dict[str, list[str]]:
        if name in resolved:
            return resolved[name]
        if name in stack:
            return {}
        total = {k: list(v) for k, v in symbols[name].direct.items()}
        for ref in referenced(symbols[name].skeleton, name):
            for need in needs_of(ref, stack + (name,)):
                _add(total, need, f"via {ref}")
        if not stack:
            resolved[name] = total
        return total

    tests: dict[str, TestCase] = {}
    for suite, types in sorted(entries.items()):
        for type_name in types:
            for (receiver, name), (file, line, body, skeleton) in sorted(methods.items()):
                if receiver != type_name:
                    continue
                needs = direct_needs(body)
                for ref in referenced(skeleton, None):
                    for need in needs_of(ref):
                        _add(needs, need, f"via {ref}")
                case = TestCase(suite, name, file, line, needs)
                tests[case.id] = case
    return tests


# --- what a failure is about -----------------------------------------------------------

# Rules tried in order on a failure's first line: (regex, cause template, need it reveals).
# The template may use the regex's groups. A need given here moves the test out of the
# core-API-only set (recorded as a refinement in results.json).
CAUSES: tuple[tuple[str, str, str | None], ...] = (
    (r'Unknown operation named \\?"\\?"', 'operationName "" rejected (Unknown operation named "")', None),
    (r'Unknown operation named \\?"([^"\\]*)', "operation name not found", None),
    (r'Cannot query field \\?"(\w+)\\?" on type \\?"(\w+)\\?"', r"missing field \2.\1", None),
    (r'Unknown field \\?"(\w+)\\?" on type \\?"(\w+)\\?"', r"missing field \2.\1", None),
    (r'[Uu]nknown argument \\?"(\w+)\\?" on field \\?"(\w+)\\?" of type \\?"(\w+)\\?"', r"unsupported argument \3.\2(\1)", None),
    (r'[Uu]nknown argument \\?"(\w+)\\?" on field \\?"(\w+)\.(\w+)\\?"', r"unsupported argument \2.\3(\1)", None),
    (r'[Uu]nknown argument \\?"(\w+)\\?" on field \\?"(\w+)\\?"', r"unsupported argument \2(\1)", None),
    (r'Unknown type \\?"(\w+)\\?"', r"missing type \1", None),
    (r'[Ff]ield "(\w+)" argument "(\w+)" of type "([^"]+)" is required', r"required argument \1(\2: \3) missing in query", None),
    (r'[Ii]nvalid value for argument "(\w+)"', r"argument \1: value refused", None),
    (r"image (?:registry|privateregistry):5000/\S* not found or not reachable", "image pull from Dagger's CI registry (registry:5000)", "dagger-ci-registry"),
    (r"image \S+ not found or not reachable: .*(?:registry-1\.docker\.io|lookup [\w.-]+\.[a-z]{2,}\b)", "image pull from a public registry (no internet)", "public-image"),
    (r"image (\S+) not found or not reachable", "image pull failed (other)", None),
    (r"lookup registry-1\.docker\.io|docker\.io.*(?:no such host|connection refused)", "image pull from a public registry (no internet)", "public-image"),
    (r'exec: "dagger": executable file not found|missing _EXPERIMENTAL_DAGGER_CLI_BIN', "dagger CLI not available (nested engine)", "nested-engine"),
    (r"bin/engine\.tar", "dev engine image bin/engine.tar absent (nested engine)", "nested-engine"),
    (r"^exit status (\d+)$", r"a host command exited \1 (with --connect session the dagger CLI is gantry)", None),
    (r"cannot configure workdir for existing session", "SDK refuses WithWorkdir inside an existing session (--connect run)", None),
    (r"(\w+) (?:is )?refused: (.{0,60})", r"gantry refuses: \1 \2", None),
    (r"not implemented|not supported", "not implemented / not supported (gantry)", None),
    (r"per-test timeout", "timeout (per-test limit)", None),
    (r"^panic: (.{0,80})", r"panic: \1", None),
)

_NOISE = (
    (re.compile(r"sha256:[0-9a-f]{12,}"), "sha256:…"),
    (re.compile(r"\b[0-9a-f]{24,}\b"), "…"),
    (re.compile(r"\b[0-9a-z]{25}\b"), "…"),  # buildkit identity.NewID()
    (re.compile(r"(?<![\w:/.~])(?:/[^\s/:\"']+)+/([^\s/:\"']+)"), r"…/\1"),  # absolute paths, not URLs
    (re.compile(r"\b\d+(\.\d+)?(ms|s|µs)\b"), "<dur>"),
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:<port>"),
)


def normalise(text: str) -> str:
    for pattern, replacement in _NOISE:
        text = pattern.sub(replacement, text)
    return text.strip()


def cause(message: str) -> tuple[str, str | None]:
    """The cause key of a failure's first line, and the need it reveals (or None)."""
    for pattern, template, need in CAUSES:
        match = re.search(pattern, message)
        if match:
            return match.expand(template) if "\\" in template else template, need
    text = normalise(message)
    if text.startswith(("Not equal", "Should ", "\"", "Expected", "expected", "[]string", "Error message not equal")):
        return "wrong result: " + text.split(":")[0][:60], None
    return text[:140] or "(no message)", None
