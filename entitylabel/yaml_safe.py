"""`NoAliasLoader`: yaml.SafeLoader that refuses anchors' aliases (`*name`).

An alias bomb (`a: &a [x, x]`, `b: &b [*a, *a]`, ... ten levels deep) is a few hundred bytes that expand
to billions of nodes: loading it exhausts memory. Our YAML files (pipelines, vocabularies) never need
aliases, so any alias is refused with the line it is on; everything else is exactly SafeLoader.
"""

from __future__ import annotations

import yaml
from yaml.composer import ComposerError


class NoAliasLoader(yaml.SafeLoader):
    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise ComposerError(None, None, "aliases (*name) are not allowed in this file", event.start_mark)
        return super().compose_node(parent, index)
