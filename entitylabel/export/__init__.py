"""Stage 4: export pairs + captions + entity labels as a HuggingFace dataset folder, publish it, load it back.

Modules: `splits` (train/test assignment), `features` (the `datasets.Features` of a config), `inputs`
(reading the caption and entity outputs), `writer` (sharded, byte-reproducible Parquet), `layout` (where each
file of the folder lives, existing configs), `sources` (credits per source dataset), `card` (README.md dataset
card), `stage` (`run_export`), `publish` (upload to the hub), `load` (`load` / `download`).
Nothing heavy is imported here so `import entitylabel.export` stays cheap.
"""
