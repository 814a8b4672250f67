"""Caption prompts: small text files with an id, the modality they are for, and their wording.

A prompt file is a header of `key: value` lines, a `---` line, then the instruction text:

    id: ir_default
    modality: ir            # vis, ir or any
    prefix: a thermal infrared image of
    ---
    This is a thermal infrared image: brightness shows heat, not colour ...

Chat VLMs (LLaVA, Qwen2.5-VL, SmolVLM, ...) get the instruction through their chat template; plain
captioning models (BLIP) get `prefix` as the start of the caption to continue. The built-in prompts live in
`entitylabel/prompts/`; one default per modality, because an infrared image shows heat, not colour.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..errors import EntityLabelError
from ..io import sha256_text

MODALITIES = ("vis", "ir")
_ID = re.compile(r"^[A-Za-z0-9._-]+$")
# Named sets of built-in prompt ids.
PROMPT_SETS: dict[str, tuple[str, ...]] = {
    "default": ("vis_default", "ir_default"),
    "objects": ("vis_objects", "ir_objects"),
    "all": ("vis_default", "ir_default", "vis_objects", "ir_objects"),
}


@dataclass(frozen=True)
class Prompt:
    """One prompt. `text` is the chat instruction, `prefix` the caption start for plain captioning models."""

    id: str
    modality: str  # "vis", "ir" or "any"
    text: str
    prefix: str

    def wording(self, mode: str) -> str:
        """The text actually sent to the model in `mode` ("chat" or "prefix")."""
        return self.text if mode == "chat" else self.prefix

    def sha256(self, mode: str) -> str:
        """Hash of the wording sent to the model: changes whenever what the model saw changes."""
        return sha256_text(self.wording(mode))

    def applies_to(self, modality: str) -> bool:
        return self.modality in ("any", modality)


def parse_prompt(text: str, *, source: str | Path, default_id: str | None = None) -> Prompt:
    """Parse a prompt file's content; `source` names it in error messages."""
    text = text.replace("\r\n", "\n")
    if "\n---\n" not in f"\n{text}":
        raise EntityLabelError("prompt file has no '---' line between header and text", path=source)
    head, _, body = f"\n{text}".partition("\n---\n")
    meta: dict[str, str] = {}
    for line in head.strip().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise EntityLabelError(f"header line {line!r} is not 'key: value'", path=source)
        meta[key.strip().lower()] = value.strip()
    pid = meta.get("id") or default_id or ""
    if not _ID.match(pid):
        raise EntityLabelError(f"prompt id {pid!r} must be letters, digits, '.', '_' or '-'", path=source)
    modality = meta.get("modality", "any").lower()
    if modality not in (*MODALITIES, "any"):
        raise EntityLabelError(f"modality {modality!r} must be vis, ir or any", path=source)
    body = " ".join(body.split())  # one line: wrapping in the file is not part of the prompt
    if not body:
        raise EntityLabelError("prompt text is empty", path=source)
    return Prompt(id=pid, modality=modality, text=body, prefix=meta.get("prefix", ""))


def builtin_dir() -> Path:
    return Path(str(resources.files("entitylabel") / "prompts"))


def builtin_prompts() -> dict[str, Prompt]:
    """The prompts shipped with the package, by id."""
    out = {}
    for f in sorted(builtin_dir().glob("*.txt")):
        p = parse_prompt(f.read_text(encoding="utf-8"), source=f, default_id=f.stem)
        out[p.id] = p
    return out


def load_prompt_file(path: str | Path) -> Prompt:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise EntityLabelError(f"cannot read prompt file ({e})", path=p) from None
    return parse_prompt(text, source=p, default_id=p.stem)


def resolve_prompts(specs: Iterable[str] | None = None) -> list[Prompt]:
    """Turn prompt specs into prompts, sorted by id.

    A spec is a built-in set name (`default`, `objects`, `all`), a built-in prompt id (`ir_default`),
    a prompt file, or a folder of `*.txt` prompt files. No spec means the `default` set.
    """
    builtin = builtin_prompts()
    chosen: dict[str, Prompt] = {}
    for spec in list(specs or []) or ["default"]:
        found: list[Prompt]
        if spec in PROMPT_SETS:
            found = [builtin[i] for i in PROMPT_SETS[spec]]
        elif spec in builtin:
            found = [builtin[spec]]
        elif Path(spec).is_dir():
            found = [load_prompt_file(f) for f in sorted(Path(spec).glob("*.txt"))]
            if not found:
                raise EntityLabelError("folder holds no *.txt prompt files", path=spec)
        elif Path(spec).is_file():
            found = [load_prompt_file(spec)]
        else:
            names = ", ".join([*PROMPT_SETS, *builtin])
            raise EntityLabelError(
                f"unknown prompt {spec!r}", hint=f"use a prompt file, a folder of them, or one of: {names}"
            )
        for p in found:
            if p.id in chosen and chosen[p.id] != p:
                raise EntityLabelError(f"two different prompts share the id {p.id!r}", path=spec)
            chosen[p.id] = p
    return [chosen[k] for k in sorted(chosen)]


def prompts_for(prompts: Sequence[Prompt], modalities: Sequence[str]) -> list[tuple[str, Prompt]]:
    """(modality, prompt) tasks in a fixed order; an error when a modality is left without a prompt."""
    tasks = []
    for m in modalities:
        mine = [p for p in prompts if p.applies_to(m)]
        if not mine:
            raise EntityLabelError(
                f"no prompt applies to modality {m!r}", hint="add a prompt with that modality or 'any'"
            )
        tasks += [(m, p) for p in mine]
    return tasks
