#!/usr/bin/env python3
"""Counts the import cycles between the top-level modules of each crate of the workspace.

A crate's top-level module is a file `src/NAME.rs` or a directory `src/NAME/`; module A
depends on module B when A's code (comments and tests left out: `#[cfg(test)]` blocks, `tests.rs`,
`tests/` directories) names `crate::B`. A cycle is a strongly connected group of two or more
modules: the count is the number of such groups, each printed with its modules.

    python3 tests/import-cycles.py [WORKSPACE]     (default: the one this script is in)
"""
import os
import re
import sys

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
CRATES = ["spec", "sqlite", "keys", "edge", "log-server", "witness", "monitor", "tests", "ui"]
PATH = re.compile(r"\bcrate::(?:\{([^}]*)\}|(\w+))")


def without_tests(text):
    """The text with every `#[cfg(test)]` item (a `mod tests { ... }` block) cut out."""
    out, at = [], 0
    for found in re.finditer(r"#\[cfg\(test\)\]", text):
        if found.start() < at:
            continue
        out.append(text[at:found.start()])
        brace = text.find("{", found.end())
        semi = text.find(";", found.end())
        if brace < 0 or (0 <= semi < brace):
            at = semi + 1
            continue
        depth, i = 0, brace
        while i < len(text):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                break
            i += 1
        at = i + 1
    out.append(text[at:])
    return "".join(out)


def modules_of(crate):
    src = os.path.join(ROOT, crate, "src")
    modules = {}
    for name in sorted(os.listdir(src)) if os.path.isdir(src) else []:
        path = os.path.join(src, name)
        if name.endswith(".rs") and name not in ("lib.rs", "main.rs"):
            modules.setdefault(name[:-3], []).append(path)
        elif os.path.isdir(path) and name not in ("bin", "tests"):
            for base, dirs, files in os.walk(path):
                dirs[:] = [d for d in dirs if d != "tests"]
                for file in files:
                    if file.endswith(".rs") and file != "tests.rs" and not file.startswith("tests_"):
                        modules.setdefault(name, []).append(os.path.join(base, file))
    return modules


def edges_of(modules):
    edges = {name: set() for name in modules}
    for name, files in modules.items():
        for path in files:
            with open(path, encoding="utf-8") as file:
                text = re.sub(r"//[^\n]*", "", without_tests(file.read()))
            for group, single in PATH.findall(text):
                targets = [single] if single else re.findall(r"(?:^|,)\s*(\w+)", group)
                for target in targets:
                    if target in modules and target != name:
                        edges[name].add(target)
    return edges


def strongly_connected(edges):
    index, low, stack, on_stack, groups, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for next_node in sorted(edges[node]):
            if next_node not in index:
                visit(next_node)
                low[node] = min(low[node], low[next_node])
            elif next_node in on_stack:
                low[node] = min(low[node], index[next_node])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(10000)
    for node in sorted(edges):
        if node not in index:
            visit(node)
    return groups


def main():
    total = 0
    for crate in CRATES:
        groups = strongly_connected(edges_of(modules_of(crate)))
        for group in groups:
            print(f"{crate}: {' <-> '.join(group)}")
        total += len(groups)
    print(f"import cycles: {total}")


if __name__ == "__main__":
    main()
