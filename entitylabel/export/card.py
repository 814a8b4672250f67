"""The dataset card (README.md): the YAML header the hub reads, and how the annotations were made.

Rendered only from the configs' export.json files (plus configs another tool put in an existing card's
header, kept as they are), with stable ordering and no dates, so the same folder gives the same card.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import yaml

from .annotated import COLUMNS as ANNOTATION_COLUMNS
from .features import COLUMNS
from .layout import DATA
from .sources import source_for
from .splits import SplitMethod, ordered_splits

PRETTY_NAME = "Entity-labelled infrared/visible image pairs"
TASK_CATEGORIES = ["image-to-image", "image-classification", "image-to-text"]
TASK_IDS = ["multi-label-image-classification"]
TAGS = ["infrared", "thermal", "visible", "image-fusion", "multimodal", "entity-labels", "pseudo-labels", "entitylabel"]
PLACEHOLDER_REPO = "ORG/NAME"


def size_category(n: int) -> str:
    """The hub's size_categories bucket for `n` examples."""
    bounds = [
        (10**3, "n<1K"),
        (10**4, "1K<n<10K"),
        (10**5, "10K<n<100K"),
        (10**6, "100K<n<1M"),
        (10**7, "1M<n<10M"),
        (10**8, "10M<n<100M"),
        (10**9, "100M<n<1B"),
    ]
    return next((label for bound, label in bounds if n < bound), "n>1T")


def _existing_header(path: Path | None) -> dict[str, Any]:
    if path is None or not path.is_file():
        return {}
    from huggingface_hub import DatasetCard

    try:
        return DatasetCard.load(path).data.to_dict()
    except Exception:  # a hand-broken card: regenerate from our own configs only
        return {}


def _header(infos: dict[str, dict], existing: dict[str, Any]) -> dict[str, Any]:
    from datasets import Features

    from .features import yaml_features

    configs = {c.get("config_name"): c for c in existing.get("configs") or [] if isinstance(c, dict)}
    old_info = existing.get("dataset_info") or []
    old_info = [old_info] if isinstance(old_info, dict) else old_info
    dataset_info = {d.get("config_name", "default"): d for d in old_info if isinstance(d, dict)}
    for name, info in infos.items():
        configs[name] = {
            "config_name": name,
            "data_files": [{"split": s, "path": f"{DATA}/{name}/{s}-*"} for s in info["splits"]],
        }
        dataset_info[name] = {
            "config_name": name,
            "features": yaml_features(Features._from_yaml_list(info["features"])),
            "splits": [
                {"name": s, "num_bytes": v["num_bytes"], "num_examples": v["num_examples"]}
                for s, v in info["splits"].items()
            ],
            "download_size": info["download_size"],
            "dataset_size": sum(v["num_bytes"] for v in info["splits"].values()),
        }
    n = sum(v["num_examples"] for info in infos.values() for v in info["splits"].values())
    return {
        "pretty_name": PRETTY_NAME,
        "license": "other",
        "license_name": "source-dataset-terms",
        "annotations_creators": [
            "machine-generated",
            *(["found"] if any(map(_from_annotations, infos.values())) else []),
        ],
        "language_creators": ["machine-generated"],
        "language": ["en"],
        "task_categories": TASK_CATEGORIES,
        "task_ids": TASK_IDS,
        "tags": TAGS,
        "size_categories": [size_category(n)],
        "configs": [configs[k] for k in sorted(configs, key=str)],
        "dataset_info": [dataset_info[k] for k in sorted(dataset_info, key=str)],
    }


def _provenance(infos: dict[str, dict]) -> str:
    """What the labels are made from: captions (machine-generated), a dataset's own boxes, or both by config."""
    boxed = sorted(k for k, v in infos.items() if _from_annotations(v))
    if not boxed:
        return "machine-generated captions and entity labels"
    if len(boxed) == len(infos):
        return "entity labels taken from the source datasets' own object boxes (provenance `annotation`)"
    named = ", ".join(f"`{_cell(k)}`" for k in boxed)
    return (
        "machine-generated captions and entity labels (the entity labels of "
        f"{named} are taken from that dataset's own object boxes instead)"
    )


def _annotation_credit(infos: dict[str, dict]) -> str:
    boxed = sorted(k for k, v in infos.items() if _from_annotations(v))
    if not boxed:
        return "The annotations (captions, entity labels) are machine-generated."
    named = ", ".join(f"`{_cell(k)}`" for k in boxed)
    return (
        f"The entity labels of {named} come from the source dataset's own object boxes (cite their annotators too); "
        "the other annotations are machine-generated."
    )


def _from_annotations(info: dict[str, Any]) -> bool:
    """True for a config whose entity labels come from the dataset's own annotations (`export --annotations`)."""
    return (info.get("entities") or {}).get("provenance") == "annotation"


def _code(obj: Any) -> str:
    return (
        "```json\n"
        + json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False).replace("```", "`\u200b``")
        + "\n```"
    )


# Strings in the card come from data (dataset names in a manifest, model ids and sources in a caption table):
# they are shown as text only, on one line, so none can add markup, a heading or a table column.
_BREAKS = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def _cell(text: Any) -> str:
    """Plain text for a table cell or a sentence: one line, `|` escaped, HTML special characters escaped."""
    return html.escape(_BREAKS.sub(" ", str(text)), quote=False).replace("|", "\\|")


def _span(text: Any) -> str:
    """An inline code span holding `text` literally, whatever backticks it contains (CommonMark's rule)."""
    body = _BREAKS.sub(" ", str(text)).replace("|", "\\|")
    fence = "`" * (max((len(run) for run in re.findall(r"`+", body)), default=0) + 1)
    pad = " " if body.startswith("`") or body.endswith("`") else ""
    return f"{fence}{pad}{body}{pad}{fence}"


def _prompt_text(prompt_id: str | None, sha: str | None) -> str | None:
    """The wording of a built-in prompt, when it is exactly what the captions record (same sha256)."""
    if not prompt_id or not sha:
        return None
    try:
        from ..caption.prompts import builtin_prompts

        prompt = builtin_prompts().get(prompt_id)
    except Exception:  # the caption stage is optional here; no prompt text then
        return None
    for mode in ("chat", "prefix"):
        if prompt is not None and prompt.sha256(mode) == sha:
            return prompt.wording(mode)
    return None


def _captions_section(info: dict[str, Any]) -> list[str]:
    caps = info.get("captions") or {}
    if not caps:
        return ["- Captions: none were exported with this config (`caption_ir` / `caption_vis` are null)."]
    lines = []
    for g in caps.get("vlm", []):
        lines.append(
            f"- Captions ({_cell(g['modality'])}): VLM {_span(g['model'])} at revision {_span(g['model_revision'])}, "
            f"prompt {_span(g['prompt_id'])} (sha256 {_span(g['prompt_sha256'])}), decoding {_span(g['decoding'])}: "
            f"{g['rows']} "
            f"caption(s), {g['errors']} error(s), {g['truncated']} stopped at the token limit."
        )
        text = _prompt_text(g["prompt_id"], g["prompt_sha256"])
        if text:
            lines.append(f'  Prompt text: "{_cell(text)}"')
    for source, count in (caps.get("external") or {}).items():
        lines.append(f"- Captions imported from {_span(source)}: {count} row(s).")
    chosen = f"prompt `{caps['primary_prompt']}` first, then " if caps.get("primary_prompt") else ""
    lines.append(
        f"- `caption_ir` / `caption_vis` hold one caption per modality: the first successful caption by "
        f"{chosen}VLM before imported captions, then prompt id and source. Every caption is in "
        f"`tables/{info['config']}/captions.parquet`."
    )
    return lines


def _entities_section(info: dict[str, Any]) -> list[str]:
    ents = info.get("entities") or {}
    if not ents:
        return ["- Entities: none were exported with this config (`entities` is empty)."]
    space = ents.get("label_space") or {}
    if ents.get("provenance") == "annotation":
        return _annotation_lines(info["config"], ents.get("annotations") or {}, space)
    lines = []
    vocab = ", ".join(f"{_cell(k)} {_span(v)}" for k, v in sorted(space.items()) if not isinstance(v, dict | list))
    if vocab:
        lines.append(f"- Label space / vocabulary: {vocab}.")
    lines.append(f"- Label space: {len(info['label_space'])} names (`tables/{info['config']}/label_space.json`).")
    extract = ents.get("extract") or {}
    settings = dict(extract.get("settings") or {})
    denoise = extract.get("denoise")
    if isinstance(denoise, dict):  # method and fit; per-model reliabilities stay in export.json
        shown = ("sources", "reliability", "models", "about", "estimated_precision", "expected_recall",
                 "expected_recall_about", "threshold", "target_precision")  # fmt: skip
        settings["denoise"] = {k: v for k, v in denoise.items() if k not in shown}
        lines += _confidence_lines(denoise, settings.get("min_confidence"))
    if isinstance(extract.get("audit"), dict):
        lines += _audit_lines(extract["audit"])
    if settings:
        lines += [
            "- Extraction settings (spaCy pipeline, matching and denoising), from the extract stage:",
            "",
            _code(settings),
        ]
    return lines


def _annotation_lines(config: str, ann: dict[str, Any], space: dict[str, Any]) -> list[str]:
    """How labels taken from the dataset's own boxes were made (provenance `annotation`)."""
    mods = ", ".join(_cell(m) for m in ann.get("modalities", []))
    per_mod = ", ".join(f"{_cell(m)} {n}" for m, n in (ann.get("boxes_per_modality") or {}).items())
    classes = ", ".join(f"{_cell(c)} → {_cell(e)}" for c, e in (ann.get("classes") or {}).items())
    problems = ", ".join(f"{_cell(k)} {n}" for k, n in (ann.get("problems") or {}).items()) or "none"
    return [
        f"- Entities: provenance `annotation`: taken from the dataset's own object boxes "
        f"({_cell(ann.get('format', ''))} files, modalities {mods}), not from captions: {ann.get('boxes', 0)} boxes "
        f"({per_mod}) on {ann.get('pairs', 0)} annotated pairs.",
        "- `entities` is the union over modalities of the entities with a box; `entities_<modality>` the set of "
        "each modality (null where that modality is not annotated), `boxes` every box in pixels; `confidences` "
        f"is null. Boxes and problems also in `tables/{config}/boxes.parquet` and `annotation_problems.parquet`.",
        f"- Class names mapped to entities by the forms of vocabulary {_span(space.get('vocabulary', ''))}: "
        f"{classes or 'no box'}. Label space = the entities the annotations cover.",
        f"- Annotation problems (files, lines or boxes left out or clipped), by kind: {problems}.",
    ]


def _audit_lines(audit: dict[str, Any]) -> list[str]:
    """The extract stage's audit of the labels against the dataset's own boxes, as a table."""

    def num(v: Any) -> str:
        return "—" if v is None else f"{v:.3f}"

    rows = [
        "| modality | entity | precision | recall | pairs with a box | pairs labelled |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for mod, block in (audit.get("modalities") or {}).items():
        m = block.get("micro") or {}
        rows.append(f"| {_cell(mod)} ({block.get('pairs', 0)} pairs) | *all audited* | {num(m.get('precision'))} | "
                    f"{num(m.get('recall'))} | | |")  # fmt: skip
        for ent, s in (block.get("entities") or {}).items():
            rows.append(f"| {_cell(mod)} | {_cell(ent)} | {num(s.get('precision'))} | {num(s.get('recall'))} | "
                        f"{s.get('gold', 0)} | {s.get('predicted', 0)} |")  # fmt: skip
    unaudited = ", ".join(_cell(e) for e in audit.get("unaudited") or []) or "none"
    return [
        f"- Audit of these labels: measured against the dataset's own boxes on {audit.get('pairs', 0)} pairs "
        f"({_cell(audit.get('format', ''))} annotations; per modality, the pairs with a caption and an annotation "
        "there; `all` = a box in any modality). Entities the annotations do not cover are unaudited, not wrong: "
        f"{unaudited}.",
        "",
        *rows,
        "",
    ]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _confidence_lines(denoise: dict[str, Any], min_confidence: Any) -> list[str]:
    """How the label confidences were obtained, and the precision and recall they lead to expect of the labels."""
    lines = []
    if denoise.get("about"):
        lines.append(f"- Confidence (`entities.parquet`, `confidences`): {_cell(str(denoise['about']))}.")
    precision, recall = _number(denoise.get("estimated_precision")), _number(denoise.get("expected_recall"))
    threshold = _number(denoise.get("threshold", min_confidence))
    target = _number(denoise.get("target_precision"))
    if precision is not None and threshold is not None:
        how = f", the threshold `--target-precision {target:g}` picked" if target is not None else ""
        lines.append(
            f"- Labels are the candidates with confidence >= {threshold:.4g}{how}. Expected precision of the "
            f"released labels: {precision:.3f} (the mean confidence of the labels, since confidences are calibrated "
            "probabilities)"
            + (
                f"; expected recall: {recall:.3f}, relative to the objects the captions name (an object no caption "
                "mentions is not counted)"
                if recall is not None
                else ""
            )
            + ". Estimates from the calibrated confidence, not measurements on this dataset; how well they held on "
            "caption sources the model was not fitted on is in entitylabel's leave-one-source-out benchmark."
        )
    return lines


def _frequency_table(info: dict[str, Any]) -> list[str]:
    splits = list(info["splits"])
    names = info["label_space"]
    if not names:
        return ["No entity labels in this config."]
    totals = {n: sum(info["splits"][s]["label_counts"].get(n, 0) for s in splits) for n in names}
    rows = ["| entity | " + " | ".join(splits) + " | total |", "|---|" + "---:|" * (len(splits) + 1)]
    for n in sorted(names, key=lambda n: (-totals[n], n)):
        counts = " | ".join(str(info["splits"][s]["label_counts"].get(n, 0)) for s in splits)
        rows.append(f"| {_cell(n)} | {counts} | {totals[n]} |")
    pairs = " | ".join(str(info["splits"][s]["num_examples"]) for s in splits)
    unl = " | ".join(str(info["splits"][s].get("unlabelled", 0)) for s in splits)
    rows.append(f"| *(pairs)* | {pairs} | {sum(v['num_examples'] for v in info['splits'].values())} |")
    rows.append(
        f"| *(pairs without any label)* | {unl} | {sum(v.get('unlabelled', 0) for v in info['splits'].values())} |"
    )
    return rows


def _body(infos: dict[str, dict], repo_id: str | None) -> str:
    """The card's Markdown below the YAML header, one section after another."""
    out = [
        *_overview(infos),
        *_loading_section(infos, repo_id),
        *_columns_section(infos),
        *_splits_section(infos),
        *_annotations_section(infos),
        *_frequencies_section(infos),
        *_credits_section(infos),
    ]
    return "\n".join(out).rstrip() + "\n"


def _overview(infos: dict[str, dict]) -> list[str]:
    """Title, what the folder holds, and one table row per config."""
    out = [
        f"# {PRETTY_NAME}",
        "",
        f"Infrared/visible image pairs with {_provenance(infos)}, made with "
        "`entitylabel`. One config per source dataset; images are embedded in the Parquet files, so the "
        "repository is self-contained.",
        "",
        "| config | source datasets | pairs per split | label space | entitylabel |",
        "|---|---|---|---:|---|",
    ]
    for name in sorted(infos):
        info = infos[name]
        splits = ", ".join(f"{s}: {v['num_examples']}" for s, v in info["splits"].items())
        out.append(
            f"| `{name}` | {_cell(', '.join(info['datasets']))} | {splits} | {len(info['label_space'])} | "
            f"{info['entitylabel_version']} |"
        )
    return out


def _loading_section(infos: dict[str, dict], repo_id: str | None) -> list[str]:
    """A loading example for the first config and its first split."""
    # an earlier export's --repo-id is kept when this one gives none
    known = [infos[c].get("repo_id") for c in sorted(infos) if infos[c].get("repo_id")]
    repo = repo_id or (known[0] if known else PLACEHOLDER_REPO)
    first = next(iter(sorted(infos)), "default")
    split = next(iter(infos[first]["splits"]), "train") if infos else "train"
    return [
        "",
        "## Loading",
        "",
        "Needs `datasets` >= 4 (the `entities` column is a `List(ClassLabel)`).",
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        f'ds = load_dataset("{repo}", "{first}")  # or a local folder holding this README',
        f'row = ds["{split}"][0]',
        'row["ir"], row["vis"]  # PIL images',
        f'names = ds["{split}"].features["entities"].feature.names',
        'print([names[i] for i in row["entities"]], row["confidences"], row["caption_vis"])',
        "```",
        "",
        f'With the package: `import entitylabel; ds = entitylabel.load("{repo}", "{first}")`. Without images: '
        f'`pandas.read_parquet("hf://datasets/{repo}/tables/{first}/labels.parquet")`.',
    ]


def _columns_section(infos: dict[str, dict]) -> list[str]:
    """The data columns, and the plain tables beside them."""
    names = {c["name"] for info in infos.values() for c in info.get("features", []) if isinstance(c, dict)}
    extra = {k: v for k, v in ANNOTATION_COLUMNS.items() if k in names}
    return [
        "",
        "## Columns",
        "",
        "| column | content |",
        "|---|---|",
        *[f"| `{k}` | {v} |" for k, v in {**COLUMNS, **extra}.items()],
        "",
        "Plain tables without images, per config, under `tables/<config>/`: `pairs.parquet` (pair manifest; "
        "`split` is the split the pair is in here), `captions.parquet` (every caption with model, revision, "
        "prompt hash, decoding), `entities.parquet` (per-entity support, confidence, source captions and "
        "mentions), `labels.parquet` (pair_id, split, entity names), `label_space.json`, `export.json` "
        "(everything this card says about the config).",
    ]


def _splits_section(infos: dict[str, dict]) -> list[str]:
    out = ["", "## Splits", ""]
    for name in sorted(infos):
        method = SplitMethod(**infos[name]["split_method"])
        out.append(f"- `{name}`: {method.describe()}.")
    return out


def _annotations_section(infos: dict[str, dict]) -> list[str]:
    """Per config: where the captions came from and how the entities were extracted."""
    out = ["", "## How the annotations were made", ""]
    for name in sorted(infos):
        info = infos[name]
        out += [
            f"### `{name}`",
            "",
            *_captions_section(info),
            *_entities_section(info),
            f"- Exported with entitylabel {info['entitylabel_version']}.",
            "",
        ]
    return out


def _frequencies_section(infos: dict[str, dict]) -> list[str]:
    out = ["## Label frequencies", "", "Pairs carrying each entity, per split.", ""]
    for name in sorted(infos):
        out += [f"### `{name}`", "", *_frequency_table(infos[name]), ""]
    return out


def _credits_section(infos: dict[str, dict]) -> list[str]:
    """Licence and citation of each source dataset, once each (a config named after its dataset adds none)."""
    out = [
        "## Licence and credits",
        "",
        f"{_annotation_credit(infos)} The images keep the terms of their source datasets; cite them when you use "
        "this data.",
        "",
    ]
    seen: set[str] = set()
    for name in sorted(infos):
        for ds in [*infos[name]["datasets"], name]:
            src = source_for(ds)
            key = src.name if src else ds
            if key in seen or (src is None and ds == name and infos[name]["datasets"]):
                continue
            seen.add(key)
            if src is None:
                out.append(f"- **{_cell(ds)}**: user-supplied dataset; add its source, licence and citation here.")
            else:
                note = f" {src.note}" if src.note else ""
                out.append(f"- **{src.name}** ({src.url}): licence: {src.licence}. Cite: {src.citation}{note}")
    return out


def render_card(infos: dict[str, dict], *, repo_id: str | None = None, existing: Path | None = None) -> str:
    """README.md text for a folder holding `infos` (config -> export.json), merged with `existing`'s header."""
    # export.json stores splits with sorted keys; show them as train, validation, test, others
    infos = {
        k: {**v, "splits": {s: v["splits"][s] for s in ordered_splits(list(v["splits"]))}} for k, v in infos.items()
    }
    header = _header(infos, _existing_header(existing))
    yaml_text = yaml.safe_dump(header, sort_keys=False, allow_unicode=True, width=100, default_flow_style=False)
    return f"---\n{yaml_text}---\n\n{_body(infos, repo_id)}"
