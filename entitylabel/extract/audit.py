"""The audit of caption-derived labels against a dataset's own boxes (`extract --annotations`).

For each modality the annotations have (`ir`, `vis`, `fusion`, or `any` without modality folders) and for `all`
(the union over modalities), on the pairs that have both a usable caption and an annotation in that modality:
gold = the entities with a box there, predicted = the pair's labels (pair level, as released). Per entity:
tp, fp, fn, precision = tp / (tp + fp), recall = tp / (tp + fn) (None when the denominator is 0), `gold` and
`predicted` pair counts; `micro` pools the audited entities. Only entities the annotations cover are audited;
the other labels are listed as `unaudited` (the boxes cannot say whether they are right), never counted wrong.
"""

from __future__ import annotations

from typing import Any

from ..annotations import Annotations

ABOUT = (
    "caption-derived pair labels measured against the dataset's own boxes: per modality, on the pairs with a "
    "caption and an annotation in it; 'all' = a box in any modality. Entities the annotations do not cover are "
    "unaudited, not wrong."
)


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _scores(tp: int, fp: int, fn: int) -> dict[str, Any]:
    return {"tp": tp, "fp": fp, "fn": fn, "precision": _ratio(tp, tp + fp), "recall": _ratio(tp, tp + fn)}


def audit_labels(
    predicted: dict[str, list[str]], ann: Annotations, captioned: set[str], label_space: list[str]
) -> dict[str, Any]:
    """The audit block of extract.json (see the module docstring)."""
    covered = list(ann.covered)
    modalities: dict[str, Any] = {}
    for mod in ["all", *ann.modalities]:
        gold = ann.labels(None if mod == "all" else mod)
        pairs = sorted(p for p in gold if p in captioned)
        per_entity = {}
        totals = [0, 0, 0]
        for ent in covered:
            tp = sum(1 for p in pairs if ent in gold[p] and ent in predicted.get(p, ()))
            n_gold = sum(1 for p in pairs if ent in gold[p])
            n_pred = sum(1 for p in pairs if ent in predicted.get(p, ()))
            fp, fn = n_pred - tp, n_gold - tp
            per_entity[ent] = {**_scores(tp, fp, fn), "gold": n_gold, "predicted": n_pred}
            totals = [totals[0] + tp, totals[1] + fp, totals[2] + fn]
        modalities[mod] = {"pairs": len(pairs), "micro": _scores(*totals), "entities": per_entity}
    seen = {e for labels in predicted.values() for e in labels}
    unaudited = [e for e in label_space if e not in covered and e in seen]
    return {
        "about": ABOUT,
        "source": ann.source.name if ann.source is not None else "",  # a name: extract.json is published
        "format": ann.format,
        "covered": covered,
        "unaudited": unaudited,
        "pairs": modalities["all"]["pairs"],
        "modalities": modalities,
        "problems": {str(k): int(v) for k, v in ann.problems["kind"].value_counts().sort_index().items()},
    }


def audit_lines(audit: dict[str, Any]) -> list[str]:
    """Plain-text lines of an audit (terminal summary): micro precision/recall per modality, then per entity."""

    def pct(v: Any) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    lines = [f"audit: measured against the dataset's own boxes on {audit['pairs']} pairs"]
    for mod, block in audit["modalities"].items():
        m = block["micro"]
        ents = ", ".join(
            f"{e} P {pct(s['precision'])} R {pct(s['recall'])} (n {s['gold']})" for e, s in block["entities"].items()
        )
        lines.append(f"  {mod} ({block['pairs']} pairs): P {pct(m['precision'])} R {pct(m['recall'])}; {ents}")
    if audit["unaudited"]:
        lines.append(f"  unaudited (the annotations do not cover them): {', '.join(audit['unaudited'])}")
    return lines
