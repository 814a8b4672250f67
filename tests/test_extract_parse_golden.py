"""The parse step's decisions on a fixed set of captions, pinned: a speed-up must not change any of them.

tests/golden/extract_parse.json holds, per caption, the sentence and token counts and every `Mention` field
(phrase, lemma, entity, drop reason, sentence, weak modifier, character span, plural, core, plain) that
`parse.Parser` gives with the shipped coco80 vocabulary. It was written by the code before the issue 17
speed work; a change that means to alter a decision rewrites it (`python tests/test_extract_parse_golden.py
--write`) and the diff shows every decision that moved. The stage's own outputs are pinned against the whole
POPE set by `tests/bench/bench_extract_speed.py --baseline` (SHA-256 of every file).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parent / "golden" / "extract_parse.json"

CAPTIONS = [
    # negation and absence
    "There are no people or cars in the image, and the street is free of bicycles.",
    "The man is not wearing a hat; a dog is not visible. Not a single car is on the road.",
    "A road without trees or buildings. Neither a cat nor a dog is present. None of the benches are taken.",
    "A surfer rides a wave; there are no other people around, and no boats. The beach lacks umbrellas.",
    # hedges and padding sentences
    "What appears to be a dog lies on the road. It seems to be a cat. Something looks like a bicycle.",
    "There might be a car behind the tree. A figure, possibly a pedestrian, is crossing. The object resembles a hat.",
    "A kitchen with a stove and a sink. There are also several chairs, likely for guests. Additionally, a clock.",
    "The image shows a table. Various cups and bowls appear to be on it, and there is another knife.",
    # modifiers, compounds, multi-word and WordNet forms
    "The car headlights glow in the dark. A child eats a hot dog next to a dog bed.",
    "Two traffic lights at the crossing, a stop sign and a fire hydrant by the curb.",
    "A man holds a remote control in front of a tv set; the remote controls lie on a coffee table.",
    "A skateboard trick in a park: a red and yellow surfboard leans on a parked motorcycle.",
    "Traffic light poles and a bus stop sign stand near the train station.",
    # mistagged nouns, plurals, counts, lists
    "A skier holding skis and poles. 1 man on a bicycle riding a wave.",
    "2 slices of pizza on a plate with a fork and knife, three donuts and a cup of coffee.",
    "Men and women walk their dogs; a child flies a kite. Sheep graze beside two horses and a cow.",
    "A cup, a bowl, a spoon, a laptop, a mouse, a keyboard and a cell phone on a desk.",
    # meta nouns, odd text
    "A picture of a scene: in this photo, an elephant and a giraffe under an umbrella.",
    "BROCCOLI and Carrots!! on a Dining Table... an oven, a microwave, a refrigerator.",
    "A teddy bear sits on a bed. Scissors, a toothbrush and a hair drier are on the sink.",
    "",
    "   ",
    # a long VLM description (late sentences, many objects)
    "The image features a busy city street with several cars and a bus driving down the road. A person is "
    "walking on the sidewalk, carrying a handbag. There is a bicycle parked near a bench. In the background, "
    "there are tall buildings and a traffic light. Additionally, a few birds can be seen in the sky. The scene "
    "also includes a fire hydrant, possibly a truck, and a potted plant near the entrance of a store. Overall, "
    "it is a lively urban scene with no dogs in sight.",
    # longer than parse.CHUNK_CHARS: parsed in chunks, offsets and sentence numbers made whole-caption
    " ".join(
        f"In picture {k} a {a} stands quietly beside the {b}, and as one would expect here, no {c} is nearby."
        for k, (a, b, c) in enumerate([("dog", "car", "cat"), ("bench", "tree", "bus"), ("clock", "vase", "book")] * 18)
    ),
]


def _parse(nlp, vocab) -> dict:
    from entitylabel.extract.parse import Parser

    parser = Parser(vocab, None, False, 8, nlp=nlp)
    return {
        "spacy_model": f"{nlp.meta.get('name')}-{nlp.meta.get('version')}",
        "vocab_sha256": vocab.sha256,
        "captions": [
            {"n_sentences": p.n_sentences, "n_tokens": p.n_tokens, "mentions": [list(m) for m in p.mentions]}
            for p in parser.parse(CAPTIONS)
        ],
    }


def test_parse_decisions_match_the_golden_file(entitylabel_cache):
    from extract_support import nlp

    from entitylabel.extract.vocab import load_vocab

    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    got = _parse(nlp(), load_vocab("coco80"))
    if got["spacy_model"] != golden["spacy_model"] or got["vocab_sha256"] != golden["vocab_sha256"]:
        pytest.skip(f"golden file made with {golden['spacy_model']} and another coco80.yaml")
    assert len(got["captions"]) == len(golden["captions"]) == len(CAPTIONS)
    for k, (g, want) in enumerate(zip(got["captions"], golden["captions"], strict=True)):
        assert g == want, f"caption {k}: {CAPTIONS[k][:80]!r}"
    # the set is not trivial: it has kept, negated, hedged, modifier and weak-modifier mentions, chunks
    mentions = [m for c in golden["captions"] for m in c["mentions"]]
    assert {m[3] for m in mentions} >= {None, "negated", "hedged", "modifier", "not_in_vocabulary", "meta"}
    assert any(m[5] for m in mentions) and any(m[8] for m in mentions) and any(m[10] for m in mentions)
    assert max(m[7] for m in mentions) > 5000


def test_one_pipe_over_uneven_caption_batches_gives_the_golden_decisions(entitylabel_cache):
    """`parse_batches` feeds every caption batch through one spaCy pipe whose own batches (3 docs here) straddle
    them: empty batches, captions with no piece ("", "   ") and the chunked one must still come back whole, in
    order, each with its own rows."""
    from extract_support import nlp

    from entitylabel.extract.parse import Parser
    from entitylabel.extract.vocab import load_vocab

    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    vocab = load_vocab("coco80")
    if golden["vocab_sha256"] != vocab.sha256 or golden["spacy_model"] != _parse(nlp(), vocab)["spacy_model"]:
        pytest.skip(f"golden file made with {golden['spacy_model']} and another coco80.yaml")
    cuts = [0, 1, 1, 6, 8, 19, 20, 22, len(CAPTIONS)]  # batches of 1, 0, 5, 2, 11, 1, 2 and the rest
    batches = [(list(range(a, b)), CAPTIONS[a:b]) for a, b in zip(cuts, cuts[1:], strict=False)]
    out = list(Parser(vocab, None, False, 3, nlp=nlp()).parse_batches(iter(batches)))
    assert [rows for rows, _ in out] == [rows for rows, _ in batches]
    for rows, parsed in out:
        assert len(parsed) == len(rows)
        for k, p in zip(rows, parsed, strict=True):
            want = golden["captions"][k]
            assert (p.n_sentences, p.n_tokens) == (want["n_sentences"], want["n_tokens"]), f"caption {k}"
            assert [list(m) for m in p.mentions] == want["mentions"], f"caption {k}: {CAPTIONS[k][:80]!r}"


if __name__ == "__main__" and "--write" in sys.argv:
    sys.path.insert(0, str(GOLDEN.parents[1]))
    sys.path.insert(0, str(GOLDEN.parents[0]))
    from extract_support import nlp

    from entitylabel.extract.vocab import load_vocab

    d = _parse(nlp(), load_vocab("coco80"))
    lines = [f'{{"spacy_model": {json.dumps(d["spacy_model"])}, "vocab_sha256": "{d["vocab_sha256"]}", "captions": [']
    for k, c in enumerate(d["captions"]):  # one mention a line, so a diff names each decision that moved
        ms = ",\n".join("  " + json.dumps(m) for m in c["mentions"])
        head = f'{{"n_sentences": {c["n_sentences"]}, "n_tokens": {c["n_tokens"]}, "mentions": ['
        lines.append(head + ("\n" + ms + "\n" if ms else "") + "]}" + ("," if k < len(d["captions"]) - 1 else ""))
    GOLDEN.write_text("\n".join(lines) + "\n]}\n", encoding="utf-8")
    print(f"wrote {GOLDEN}")
