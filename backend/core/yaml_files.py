"""Loading YAML (or JSON) files that admins upload: the category file, the working calendar.

PyYAML's safe loader is safe from code execution, not from size: a few lines of anchors and
aliases expand to gigabytes ("billion laughs") once the values are walked or printed, and its
scanner does work proportional to the nesting depth for every token, so 60 000 ``[`` (120 KB)
cost it most of a minute before the parser even starts. Our files are shallow and have no use
for aliases, so both are refused while scanning, before anything is built.
"""

from __future__ import annotations

from typing import Any, Final

import yaml

# A category tree or a calendar nests a handful of levels; JSON and YAML count a mapping and
# the list inside it as two.
MAX_DEPTH: Final = 64
_OPEN = (
    yaml.FlowSequenceStartToken,
    yaml.FlowMappingStartToken,
    yaml.BlockSequenceStartToken,
    yaml.BlockMappingStartToken,
)
_CLOSE = (yaml.FlowSequenceEndToken, yaml.FlowMappingEndToken, yaml.BlockEndToken)


class UnsafeYAML(ValueError):
    """The file uses anchors/aliases or nests too deeply (the message says which)."""


def load(text: str) -> Any:
    """The document in ``text``; UnsafeYAML or yaml.YAMLError when it cannot be had safely."""
    depth = 0
    for token in yaml.scan(text, Loader=yaml.SafeLoader):
        if isinstance(token, yaml.AnchorToken | yaml.AliasToken):
            raise UnsafeYAML("YAML anchors and aliases are not allowed")
        if isinstance(token, _OPEN):
            depth += 1
            if depth > MAX_DEPTH:
                raise UnsafeYAML(f"the file is nested more than {MAX_DEPTH} levels deep")
        elif isinstance(token, _CLOSE):
            depth -= 1
    try:
        return yaml.safe_load(text)
    except RecursionError:  # not reachable within MAX_DEPTH; kept as the last line of defence
        raise UnsafeYAML("the file is nested too deeply") from None


def join_surrogates(text: str) -> str:
    """PyYAML reads a JSON escape pair such as ``"\\ud83d\\udea7"`` (how ``ensure_ascii``
    writers put an emoji) as two lone surrogates; join each pair into its character. Lone
    surrogates stay, for the caller's text checks to refuse."""
    try:
        return text.encode("utf-16", "surrogatepass").decode("utf-16")
    except UnicodeDecodeError:
        return text
