"""Extraction quality on real VLM captions vs the CHAIR gold objects, with an honest even/odd protocol.

    .venv/bin/python tests/bench/bench_extract_quality.py [--fit] [--out outputs/bench/extract_quality]

Data (pope_data.py): 5 VLMs x 2 prompts on the same 2,000 COCO val2014 images, the CHAIR gold objects and
vocab/coco80.yaml. Images with an even `image_id` tune, odd ones report; nothing below is measured on the
half it was tuned on. Settings: each model alone (its 2 captions), each pair of models (4 captions), all
five (10 captions). Captions are parsed once and cached (pope_data.parsed_docs); the stage's own steps
(parse.Parser.mentions -> votes.VoteTable -> confidence) run on the cached docs.

`--fit` refits the shipped coefficients (entitylabel/extract/confidence_model.json) on the tuning half:
first the one-view score on the single-model settings (logistic regression, monotone features >= 0), then
the cross-model terms on the pair and all-five settings with the view score fixed. Without `--fit` the
shipped file is used as is.

Printed for the report half, per setting: the naive baseline (CHAIR's word matcher, each caption a vote,
the best vote threshold chosen on the report half itself, so the baseline is as strong as it can be) beside
ours at the default threshold (0.35): precision, recall, F1; the expected calibration error of our
confidence (10 equal-width bins over all candidates, weighted by count); for all five, also the lowest
threshold with P >= 0.90 on the tuning half and what it gives on the report half. A reliability diagram
(PNG) per kind of setting. Targets (issue 10): each model alone F1 >= naive best, mean over the five
>= +0.02; ECE <= 0.05 in every setting; all five: P >= 0.90 with R >= 0.70.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pope_data import REPO, SYNONYMS, load_captions, load_gold, parsed_docs  # noqa: E402

__all__ = ["load_captions"]
MODEL_JSON = REPO / "entitylabel" / "extract" / "confidence_model.json"


def chair_synonyms() -> dict[str, str]:
    out = {}
    for line in SYNONYMS.read_text().splitlines():
        forms = [f.strip() for f in line.split(",") if f.strip()]
        for f in forms:
            out.setdefault(f.lower(), forms[0])
    return out


class NaiveMatcher:
    """CHAIR-style: lowercase, lemmatise (WordNet noun lemmas), look up word pairs, then words."""

    def __init__(self) -> None:
        from nltk.stem import WordNetLemmatizer

        from entitylabel.resources import wordnet

        wordnet()
        self.lem = WordNetLemmatizer()
        self.syn = chair_synonyms()
        self.cache: dict[str, str] = {}

    def lemma(self, w: str) -> str:
        if w not in self.cache:
            self.cache[w] = self.lem.lemmatize(w, "n")
        return self.cache[w]

    def __call__(self, text: str) -> set[str]:
        words = re.findall(r"[a-z]+", text.lower())
        lemmas = [self.lemma(w) for w in words]
        found: set[str] = set()
        i = 0
        while i < len(words):
            if i + 1 < len(words):
                pairs = (f"{words[i]} {words[i + 1]}", f"{lemmas[i]} {lemmas[i + 1]}")
                hit = next((self.syn[p] for p in pairs if p in self.syn), None)
                if hit is not None:
                    found.add(hit)
                    i += 2
                    continue
            for w in (words[i], lemmas[i]):
                if w in self.syn:
                    found.add(self.syn[w])
                    break
            i += 1
        return found


# --- data: parsed once, one vote table per setting ---------------------------------------------------


class Setting:
    """The candidates of one setting (a set of models) with their design, gold and half."""

    def __init__(self, name: str, models: tuple[str, ...], rows, parsed, gold, table_args) -> None:
        from entitylabel.extract.confidence import design
        from entitylabel.extract.filters import RejectLog
        from entitylabel.extract.sources import model_of
        from entitylabel.extract.votes import VoteTable

        self.name, self.models = name, models
        table = VoteTable(**table_args)
        rejects = RejectLog()
        for r, p in zip(rows, parsed, strict=True):
            if model_of(r["source"]) in models:
                table.add(r["pair_id"], r["source"], r["caption"], p, rejects)
        self.items = table.items()
        self.design = design(self.items, table)
        self.y = np.array([e in gold[pid] for pid, e in self.items])
        self.odd = np.array([int(pid.split("-")[1]) % 2 == 1 for pid, _ in self.items])
        self.n_captions = sum(model_of(r["source"]) in models for r in rows) // len({r["pair_id"] for r in rows})
        self.n_gold = {h: sum(len(gold[p]) for p in gold if (int(p.split("-")[1]) % 2 == 1) == h) for h in (0, 1)}


def parse_all(rows):
    from entitylabel.extract.parse import ParsedCaption, Parser
    from entitylabel.extract.vocab import load_vocab
    from entitylabel.resources import load_spacy

    nlp = load_spacy()
    docs = parsed_docs(nlp, rows)
    parser = Parser(load_vocab(REPO / "vocab" / "coco80.yaml"), None, False, 256, nlp=nlp)
    return [ParsedCaption(parser.mentions(d), sum(1 for _ in d.sents), len(d)) for d in docs]


def build_settings(rows, parsed, gold) -> list[Setting]:
    from entitylabel.extract.sources import model_of
    from entitylabel.extract.stage import LATE_MIN_SENTENCES, LATE_SENTENCE

    args = {"late_sentence": LATE_SENTENCE, "late_min_sentences": LATE_MIN_SENTENCES, "weak_modifiers": True}
    models = sorted({model_of(r["source"]) for r in rows})
    combos = [(m,) for m in models] + list(itertools.combinations(models, 2)) + [tuple(models)]
    return [Setting("+".join(c) if len(c) < 5 else "all five", c, rows, parsed, gold, args) for c in combos]


# --- metrics ----------------------------------------------------------------------------------------


def prf(tp: int, n_pred: int, n_gold: int) -> tuple[float, float, float]:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    return p, r, 2 * p * r / (p + r) if p + r else 0.0


def ece(conf: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    idx = np.minimum((conf * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            total += sel.sum() * abs(conf[sel].mean() - y[sel].mean())
    return total / max(len(conf), 1)


def naive_best(setting: Setting, naive_sets, gold, half: int) -> tuple[int, tuple[float, float, float]]:
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for (pid, model, _), ents in naive_sets.items():
        if model in setting.models and (int(pid.split("-")[1]) % 2 == 1) == half:
            for e in ents:
                counts[(pid, e)] += 1
    best = (0, (0.0, 0.0, 0.0))
    for k in range(1, setting.n_captions + 1):
        keys = [key for key, n in counts.items() if n >= k]
        tp = sum(e in gold[p] for p, e in keys)
        res = prf(tp, len(keys), setting.n_gold[half])
        if res[2] > best[1][2]:
            best = (k, res)
    return best


def at_threshold(s: Setting, conf: np.ndarray, t: float, half: int) -> tuple[float, float, float]:
    sel = (s.odd == bool(half)) & (conf >= t)
    return prf(int(s.y[sel].sum()), int(sel.sum()), s.n_gold[half])


# --- fit ----------------------------------------------------------------------------------------------


def _logloss(logit: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.logaddexp(0, logit) - y * logit))


def fit(settings: list[Setting]):
    """Coefficients on the tuning half (even image ids); see the module docstring."""
    from scipy.optimize import minimize

    from entitylabel.extract.confidence import ANTITONE, COMBINE, FEATURES, MONOTONE, ConfidenceModel

    single = [s for s in settings if len(s.models) == 1]
    x = np.vstack([s.design.x[~s.odd[s.design.row_item[s.design.view_row]]] for s in single])
    agreement_ref = float(np.mean([s.design.x[0, FEATURES.index("agreement")] for s in single]))
    y = np.concatenate([s.y[~s.odd] for s in single]).astype(float)
    xa = np.hstack([np.ones((len(x), 1)), x])

    def f1(beta):
        logit = xa @ beta
        p = 1 / (1 + np.exp(-logit))
        return _logloss(logit, y), xa.T @ (p - y) / len(y)

    bounds = [(None, None)] + [
        (0, None) if f in MONOTONE else (None, 0) if f in ANTITONE else (None, None) for f in FEATURES
    ]
    beta = minimize(f1, np.zeros(xa.shape[1]), jac=True, method="L-BFGS-B", bounds=bounds).x
    multi = [s for s in settings if len(s.models) > 1]

    def model_for(theta) -> ConfidenceModel:
        combine = dict(zip(COMBINE, map(float, theta[2:]), strict=True))
        weights = dict(zip(FEATURES, map(float, beta[1:]), strict=True))
        return ConfidenceModel(float(beta[0]), weights, float(theta[0]), float(theta[1]), combine, {}, agreement_ref)

    from entitylabel.extract.confidence import scores

    def f2(theta):
        m = model_for(theta)
        loss = 0.0
        for s in multi:
            c = np.clip(scores(s.design, m)[~s.odd], 1e-9, 1 - 1e-9)
            yy = s.y[~s.odd]
            loss += -np.mean(yy * np.log(c) + (1 - yy) * np.log(1 - c))
        return loss / len(multi)

    start = np.array([-1.0, 0.0, -1.0, 0.5, 0.0, 0.0, 0.0])
    bounds = [(None, None), (None, None), (None, None), (0, None), (0, None), (None, None), (None, None)]
    theta = minimize(f2, start, method="L-BFGS-B", bounds=bounds).x
    m = model_for(theta)
    return ConfidenceModel(
        m.view_bias,
        m.view_weights,
        m.silent_bias,
        m.silent_loglen,
        m.combine,
        {
            "data": "POPE VLM captions (5 models x 2 prompts, COCO val2014) vs CHAIR gold, vocab coco80",
            "half": "even image_id (tuning); odd image_id reports",
            "script": "tests/bench/bench_extract_quality.py --fit",
            "candidates_single": int(len(y)),
        },
        agreement_ref,
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "outputs" / "bench" / "extract_quality")
    ap.add_argument("--fit", action="store_true", help="refit the shipped coefficients on the tuning half")
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows = load_captions()
    gold = load_gold({r["pair_id"] for r in rows})
    parsed = parse_all(rows)
    settings = build_settings(rows, parsed, gold)
    print(
        f"{len(rows)} captions, {len(gold)} images, {len(settings)} settings; prepared in "
        f"{time.perf_counter() - t0:.1f} s"
    )
    from entitylabel.extract.confidence import ConfidenceModel, load_model
    from entitylabel.extract.sources import model_of

    if args.fit:
        model = fit(settings)
        MODEL_JSON.write_text(json.dumps(model.to_dict(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(f"fitted on the even half -> {MODEL_JSON}")
    model = ConfidenceModel.from_dict(json.loads(MODEL_JSON.read_text())) if args.fit else load_model()
    naive = NaiveMatcher()
    naive_sets = {(r["pair_id"], model_of(r["source"]), r["source"]): naive(r["caption"]) for r in rows}
    report(settings, model, naive_sets, gold, args.out)
    return 0


def tune_threshold(settings, model) -> float:
    """The threshold (a multiple of 0.05) with the best mean F1 of the models alone on the tuning half."""
    from entitylabel.extract.confidence import scores

    single = [(s, scores(s.design, model)) for s in settings if len(s.models) == 1]
    grid = np.round(np.arange(0.05, 0.96, 0.05), 2)
    mean_f1 = [np.mean([at_threshold(s, c, t, 0)[2] for s, c in single]) for t in grid]
    return float(grid[int(np.argmax(mean_f1))])


def report(settings, model, naive_sets, gold, out: Path) -> None:
    from entitylabel.extract.confidence import scores
    from entitylabel.extract.stage import MIN_CONFIDENCE as DEFAULT_THRESHOLD

    tuned = tune_threshold(settings, model)
    print(
        f"default threshold (run_extract min_confidence) {DEFAULT_THRESHOLD}; best mean F1 of the models alone "
        f"on the tuning half at {tuned}" + ("" if tuned == DEFAULT_THRESHOLD else ": UPDATE stage.MIN_CONFIDENCE")
    )
    print("\nreport half (odd image_id); naive = CHAIR matcher at its best vote threshold on this half")
    print(
        f"{'setting':34s} {'naive k':>7s} {'P':>6s} {'R':>6s} {'F1':>6s} | {'ours P':>6s} {'R':>6s} {'F1':>6s} "
        f"{'dF1':>6s} {'ECE':>6s}"
    )
    curves = defaultdict(list)
    single_gain = []
    for s in settings:
        conf = scores(s.design, model)
        k, nb = naive_best(s, naive_sets, gold, 1)
        ours = at_threshold(s, conf, DEFAULT_THRESHOLD, 1)
        e = ece(conf[s.odd], s.y[s.odd])
        kind = {1: "one model", 2: "two models"}.get(len(s.models), "all five")
        curves[kind].append((conf[s.odd], s.y[s.odd]))
        if len(s.models) == 1:
            single_gain.append(ours[2] - nb[2])
        print(
            f"{s.name:34s} {k:7d} {nb[0]:6.3f} {nb[1]:6.3f} {nb[2]:6.3f} | {ours[0]:6.3f} {ours[1]:6.3f} "
            f"{ours[2]:6.3f} {ours[2] - nb[2]:+6.3f} {e:6.3f}"
        )
    print(f"one model alone: mean dF1 {np.mean(single_gain):+.3f}, min {min(single_gain):+.3f}")
    full = settings[-1]
    conf = scores(full.design, model)
    even = ~full.odd
    order = np.sort(np.unique(conf[even]))
    t90 = next((t for t in order if at_threshold(full, conf, t, 0)[0] >= 0.90), None)
    if t90 is not None:
        p, r, f = at_threshold(full, conf, t90, 1)
        print(
            f"all five: lowest threshold with P >= 0.90 on the tuning half {t90:.3f} -> report half P {p:.3f} R {r:.3f}"
        )
    ceilings(settings, model)
    plot_reliability(curves, out)


def ceilings(settings, model) -> None:
    """What any filter of the same candidates could reach on the report half (diagnosis, not a result: chosen
    on the half it is measured on): F1 with every wrong candidate dropped, and our ranking at its best
    threshold; for all five, the best recall at precision >= 0.90 anywhere on our ranking."""
    from entitylabel.extract.confidence import scores

    print("\nceilings on the report half (chosen there: diagnosis only)")
    print(f"{'setting':34s} {'cand R':>6s} {'perfect-filter F1':>17s} {'ours at best threshold':>22s}")

    def curve(s: Setting) -> tuple[np.ndarray, np.ndarray]:
        """Precision and recall on the report half at every cut of our ranking."""
        conf, y = scores(s.design, model)[s.odd], s.y[s.odd]
        tp = np.cumsum(y[np.argsort(-conf, kind="stable")])
        return tp / np.arange(1, len(y) + 1), tp / s.n_gold[1]

    for s in [s for s in settings if len(s.models) == 1] + [settings[-1]]:
        p_at, r_at = curve(s)
        r = r_at[-1]  # every candidate kept: the candidates' recall
        f_at = np.where(p_at + r_at > 0, 2 * p_at * r_at / np.maximum(p_at + r_at, 1e-12), 0.0)
        print(f"{s.name:34s} {r:6.3f} {2 * r / (1 + r):17.3f} {f_at.max():22.3f}")
    p_at, r_at = curve(settings[-1])
    ok = p_at >= 0.90
    print(f"all five: best recall at precision >= 0.90 on our ranking {r_at[ok].max() if ok.any() else 0.0:.3f}")


def plot_reliability(curves, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=120)
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    for kind, pairs in curves.items():
        conf = np.concatenate([c for c, _ in pairs])
        y = np.concatenate([y for _, y in pairs])
        idx = np.minimum((conf * 10).astype(int), 9)
        xs = [conf[idx == b].mean() for b in range(10) if (idx == b).any()]
        ys = [y[idx == b].mean() for b in range(10) if (idx == b).any()]
        label = f"{kind}, {len(pairs)} settings pooled" if len(pairs) > 1 else kind
        ax.plot(xs, ys, marker="o", lw=1.2, label=f"{label} (ECE {ece(conf, y):.3f})")
    ax.set_xlabel("confidence")
    ax.set_ylabel("share of candidates in the gold objects")
    ax.set_title("reliability, POPE report half (odd image_id)")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    png = out / "extract_reliability.png"
    fig.savefig(png)
    print(f"reliability diagram: {png}")


if __name__ == "__main__":
    raise SystemExit(main())
