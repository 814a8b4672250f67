"""Validation sets, simulated lighting, the rank table, and the recipe's loss / augmentation pieces."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from fusion_synth import synth_pair, tiny_config, write_pair_folder

from entitylabel.errors import EntityLabelError
from entitylabel.fusion import losses
from entitylabel.fusion.data import light_augment
from entitylabel.fusion.model import EntityFusionNet, contrast_base, fixed_rule, local_mean
from entitylabel.fusion.rank import TEN, load_peers, rank_table
from entitylabel.fusion.validate import ValSet, fixed_rule_u8, load_val_set, simulate_light, ten_metrics, validate

SIX = TEN  # the rank-table tests below build rows with every metric


def _set(n: int = 2) -> ValSet:
    pairs = []
    for i in range(n):
        ir, rgb = synth_pair(i, 70, 76)
        pairs.append((f"p{i}", ir, rgb[..., 1]))
    return ValSet("s", pairs)


def test_untrained_model_scores_as_pixel_mean_and_ranks_below_pixel_max() -> None:
    """The untrained model is the pixel mean: validation sees its ten means, and the rank among the model and
    the three references (Nabf lower is better) puts it behind pixel-max."""
    torch.manual_seed(0)
    model = EntityFusionNet(tiny_config())
    sets = [_set(), simulate_light(_set(), "day")]
    res = validate(model, sets)
    for name, r in res["sets"].items():
        base = sets[0 if name == "s" else 1].baseline_means()
        # the same image up to rounding (fuse rounds half to even, the baseline half up)
        assert all(r[m] == pytest.approx(base["pixel-mean"][m], rel=0.02) for m in ("SD", "SF", "VIF", "SSIM"))
        assert set(base) == {"pixel-max", "pixel-mean", "fixed-rule"} and r["above_max"] < 5
    assert -4.0 <= res["score"] <= -1.0
    assert model.training  # validate leaves the mode as it found it


def test_set_result_ranks_ten_metrics_with_nabf_lower_is_better() -> None:
    from entitylabel.fusion.validate import set_result

    mx = {m: 2.0 for m in TEN} | {"Nabf": 0.01}
    mn = {m: 1.0 for m in TEN} | {"Nabf": 0.0}
    rule = {m: 3.0 for m in TEN} | {"Nabf": 0.1}
    base = {"pixel-max": mx, "pixel-mean": mn, "fixed-rule": rule}
    r = set_result({m: 2.5 for m in TEN} | {"Nabf": 0.005}, base)
    assert r["above_max"] == 10 and r["above_rule"] == 1 and r["below_mean"] == []
    assert r["rank"] == pytest.approx((9 * 2 + 2) / 10)  # 2nd on nine metrics, 2nd on Nabf (after pixel-mean)
    worse = set_result({m: 0.5 for m in TEN} | {"Nabf": 0.5}, base)
    assert worse["rank"] == 4.0 and "SSIM" not in worse["below_mean"] and "EN" in worse["below_mean"]
    assert worse["ratio"] < 0 < r["ratio"]


def test_a_constant_validation_pair_leaves_the_score_finite() -> None:
    """VIF, SSIM and Qabf are undefined (NaN) against a constant source: the means skip that pair, never NaN."""
    torch.manual_seed(0)
    black = np.zeros((70, 76), np.uint8)
    vs = ValSet("s", [*_set().pairs, ("black", black, black)])
    res = validate(EntityFusionNet(tiny_config()), [vs])
    assert np.isfinite(res["score"]) and all(np.isfinite(res["sets"]["s"][m]) for m in TEN)
    only_black = validate(EntityFusionNet(tiny_config()), [ValSet("b", [("black", black, black)])])
    assert np.isfinite(only_black["score"])


def test_fixed_rule_is_pixel_max_with_an_unsharp_mask() -> None:
    ir, rgb = synth_pair(3, 70, 76)
    vis = rgb[..., 1]
    got = fixed_rule_u8(ir, vis)
    t = [torch.from_numpy(x.astype(np.float32) / 255.0)[None, None] for x in (ir, vis)]
    want = np.round(contrast_base(torch.maximum(*t), 0.5, 16.0).clamp(0, 1)[0, 0].numpy() * 255.0)
    assert np.array_equal(got, want.astype(np.uint8))
    assert torch.equal(fixed_rule(*t), contrast_base(torch.maximum(*t), 0.5, 16.0).clamp(0, 1))


def test_simulated_lighting() -> None:
    vs = _set(1)
    _, ir, vis = vs.pairs[0]
    _, ir_low, vis_low = simulate_light(vs, "low-light").pairs[0]
    _, ir_day, vis_day = simulate_light(vs, "day").pairs[0]
    assert np.array_equal(ir_low, ir) and vis_low.mean() < 0.6 * vis.mean()
    assert np.array_equal(vis_day, vis) and ir_day.mean() == pytest.approx(0.4 * ir.mean(), rel=0.02)
    with pytest.raises(EntityLabelError, match="unknown lighting"):
        simulate_light(vs, "dusk")


def test_load_val_set_from_a_folder_leaves_out_small_pairs(tmp_path) -> None:
    src = write_pair_folder(tmp_path / "v", {"a": ((70, 72), (70, 72)), "b": ((30, 40), (30, 40))})
    with pytest.warns(UserWarning, match="under 64 px"):
        vs = load_val_set(src, max_pairs=5)
    assert [p[0] for p in vs.pairs] == ["v-a"]
    small = write_pair_folder(tmp_path / "w", {"b": ((30, 40), (30, 40))})
    with pytest.raises(EntityLabelError, match="no validation pair"), pytest.warns(UserWarning):
        load_val_set(small)


def test_ten_metrics_match_the_evaluate_metrics() -> None:
    from entitylabel.fusion.metrics import compute_all

    ir, rgb = synth_pair(3, 70, 70)
    vis = rgb[..., 0]
    fused = np.maximum(ir, vis)
    full = compute_all(ir, vis, fused)
    assert ten_metrics(ir, vis, fused) == pytest.approx({m: full[m] for m in TEN})


def test_rank_table_uses_only_shared_pairs_and_min_ties() -> None:
    rows = []
    for pid in ("a", "b", "c"):
        rows.append({"method": "m1", "pair_id": pid, **{m: 2.0 for m in SIX}})
        rows.append({"method": "m2", "pair_id": pid, **{m: 1.0 for m in SIX}})
    rows.append({"method": "m3", "pair_id": "a", **{m: 1.0 for m in SIX}})
    rows.append({"method": "m3", "pair_id": "b", **{m: 9.0 if m == "EN" else 1.0 for m in SIX}})
    t = rank_table(pd.DataFrame(rows))
    assert int(t["n"].iloc[0]) == 2  # m3 lacks pair c
    assert t.loc["m3", "EN"] == pytest.approx(5.0)
    assert t.loc["m3", "rank_EN"] == 1 and t.loc["m1", "rank_EN"] == 2
    assert t.loc["m2", "rank_SD"] == 2 and t.loc["m3", "rank_SD"] == 2  # tie shares the better rank
    assert list(t.index) == ["m1", "m3", "m2"]
    with pytest.raises(EntityLabelError, match="share no pair"):
        rank_table(pd.DataFrame([rows[0], {**rows[1], "pair_id": "z"}]))


def test_load_peers_filters_by_coverage(tmp_path) -> None:
    rows = [{"method": "big", "pair_id": f"p{i}", **{m: 1.0 for m in SIX}} for i in range(3)]
    rows.append({"method": "small", "pair_id": "p0", **{m: 1.0 for m in SIX}})
    pd.DataFrame(rows).to_csv(tmp_path / "peers.csv", index=False)
    assert set(load_peers(tmp_path / "peers.csv", min_pairs=2)["method"]) == {"big"}
    pd.DataFrame({"method": ["x"], "pair_id": ["p"]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(EntityLabelError, match="lack columns"):
        load_peers(tmp_path / "bad.csv")


def test_contrast_structure_ssim_ignores_brightness() -> None:
    """The luminance factor is what pulls a fused image toward the sources' mean; without it a brighter copy
    of a source scores 1 and the intensity loss alone decides the brightness."""
    x = torch.rand(1, 1, 32, 32) * 0.5
    assert float(losses.ssim(x, x + 0.4, luminance=False)) == pytest.approx(1.0, abs=1e-4)
    assert float(losses.ssim(x, x + 0.4)) < 0.9


def test_gradient_gain_scales_the_gradient_target() -> None:
    ir = torch.rand(2, 1, 24, 24)
    vis = torch.rand(2, 1, 24, 24)
    fused = torch.maximum(ir, vis)
    _, p1 = losses.fusion_loss(fused, ir, vis, tiny_config(grad_gain=1.0, w_intensity=0, w_ssim=0))
    _, p2 = losses.fusion_loss(fused, ir, vis, tiny_config(grad_gain=1.5, w_intensity=0, w_ssim=0))
    assert p2["gradient"] > p1["gradient"]


def test_contrast_term_asks_for_the_more_contrasted_source_where_pixel_max_loses_it() -> None:
    """A warm target (IR 0.6 on 0.3) in front of a bright visible wall (VIS 0.8, flat): pixel-max shows a flat
    0.8 and loses the target; adding the IR band to the VIS base keeps it (the term is met up to the blur of the
    blur: the band of a band is not the band itself)."""
    ir = torch.full((1, 1, 64, 64), 0.3)
    ir[..., 24:40, 24:40] = 0.6
    vis = torch.full((1, 1, 64, 64), 0.8)
    cfg = tiny_config(w_contrast=1.0, contrast_sigma=8.0, contrast_gain=1.0, w_intensity=0, w_gradient=0,
                      w_overshoot=0, w_ssim=0)  # fmt: skip
    kept = vis + (ir - local_mean(ir, 8.0))
    total_max, p_max = losses.fusion_loss(torch.maximum(ir, vis), ir, vis, cfg)
    _, p_kept = losses.fusion_loss(kept, ir, vis, cfg)
    assert p_max["contrast"] > 0.01 and float(total_max) == pytest.approx(p_max["contrast"])
    assert p_kept["contrast"] < p_max["contrast"] / 2
    _, p_more = losses.fusion_loss(kept, ir, vis, cfg.replace(contrast_gain=1.5))
    assert p_more["contrast"] > p_kept["contrast"]  # a gain above 1 asks for more than the source's own contrast
    assert "contrast" not in losses.fusion_loss(kept, ir, vis, tiny_config(w_contrast=0))[1]


def test_light_augment() -> None:
    rng = np.random.default_rng(0)
    ir = np.random.default_rng(1).random((16, 1, 8, 8), dtype=np.float32)
    vis = np.random.default_rng(2).random((16, 1, 8, 8), dtype=np.float32)
    same_ir, same_vis = light_augment(ir, vis, rng, 0.0)
    assert np.array_equal(same_ir, ir) and np.array_equal(same_vis, vis)
    a_ir, a_vis = light_augment(ir, vis, np.random.default_rng(5), 1.0)
    b_ir, b_vis = light_augment(ir, vis, np.random.default_rng(5), 1.0)
    assert np.array_equal(a_vis, b_vis) and a_vis.dtype == np.float32
    assert 0.0 <= a_vis.min() and a_vis.max() <= 1.0 and 0.0 <= a_ir.min() and a_ir.max() <= 1.0
    changed = [not np.allclose(a_vis[i], vis[i]) for i in range(16)]
    assert all(changed)
    assert float(a_ir.mean()) < float(ir.mean())  # IR gain is at most 1.1 and mostly below 1


def test_contrast_base_raises_local_contrast_only() -> None:
    flat = torch.full((1, 1, 37, 41), 0.4)
    assert torch.allclose(contrast_base(flat, 0.5, 16.0), flat, atol=1e-6)  # nothing to raise, any size
    x = torch.rand(1, 1, 64, 64)
    assert torch.equal(contrast_base(x, 0.0, 16.0), x)
    y = contrast_base(x, 0.5, 16.0)
    assert y.shape == x.shape and float(y.std()) > 1.3 * float(x.std())
    assert float(y.mean()) == pytest.approx(float(x.mean()), abs=0.01)  # no darkening or brightening


def test_rank_table_ranks_nabf_lower_is_better() -> None:
    rows = []
    for pid in ("a", "b"):
        rows.append({"method": "clean", "pair_id": pid, **{m: 1.0 for m in TEN}, "Nabf": 0.01})
        rows.append({"method": "noisy", "pair_id": pid, **{m: 1.0 for m in TEN}, "Nabf": 0.2})
    t = rank_table(pd.DataFrame(rows))
    assert t.loc["clean", "rank_Nabf"] == 1 and t.loc["noisy", "rank_Nabf"] == 2
    assert list(t.index) == ["clean", "noisy"]
