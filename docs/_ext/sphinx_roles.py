"""A griffe extension for the API reference: Sphinx roles in docstrings become links.

pinnk's docstrings are Google style with a few Sphinx roles (``:class:`Kernel```,
``:func:`pinnk.ntk```, ``:mod:`pinnk.ops```). Markdown does not know them, so before rendering
each role becomes an optional mkdocs-autorefs cross-reference: a link when the target is on a
reference page, plain code otherwise (never a build warning).
"""

from __future__ import annotations

import re

import griffe

_ROLE = re.compile(r":(?:class|func|meth|attr|mod|data|exc|obj):`~?([^`<>]+?)`")


def _target(obj: griffe.Object, name: str) -> str:
    name = name.strip().rstrip("()")
    scope = obj if obj.is_class or obj.is_module else obj.parent
    while scope is not None:
        try:
            return scope.resolve(name)
        except (griffe.NameResolutionError, AttributeError, KeyError, ValueError):
            scope = scope.parent
    if "." not in name and obj.is_function and obj.parent is not None and obj.parent.is_class:
        return f"{obj.parent.path}.{name}"
    return name


def _convert(obj: griffe.Object, text: str) -> str:
    def repl(m: re.Match) -> str:
        label = m.group(1).strip()
        return f'<autoref optional identifier="{_target(obj, label)}">`{label}`</autoref>'

    return _ROLE.sub(repl, text)


class SphinxRoles(griffe.Extension):
    """Rewrite Sphinx roles in every docstring of the loaded packages."""

    def on_package(self, *, pkg: griffe.Module, **kwargs) -> None:
        seen: set[int] = set()
        stack: list[griffe.Object] = [pkg]
        while stack:
            obj = stack.pop()
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            if obj.docstring is not None:
                obj.docstring.value = _convert(obj, obj.docstring.value)
            for member in obj.members.values():
                if not member.is_alias:
                    stack.append(member)
