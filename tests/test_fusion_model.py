"""The fusion network, its config and its losses (no training, no files)."""

from __future__ import annotations

import pytest
import torch
from fusion_synth import tiny_config

from entitylabel.errors import EntityLabelError
from entitylabel.fusion.config import FusionConfig, parse_overrides
from entitylabel.fusion.losses import fusion_loss, sobel_magnitude, ssim
from entitylabel.fusion.model import EntityFusionNet


@pytest.mark.parametrize("hw", [(1, 1), (17, 23), (32, 32), (5, 64), (63, 30)])
def test_any_size_gives_the_input_size(hw: tuple[int, int]) -> None:
    model = EntityFusionNet(tiny_config(labels=["a", "b"]), torch.randn(2, 384)).eval()
    ir, vis = torch.rand(2, 1, *hw), torch.rand(2, 1, *hw)
    out = model(ir, vis)
    assert out.fused.shape == (2, 1, *hw)
    assert out.logits is not None and out.logits.shape == (2, 2)
    assert float(out.fused.detach().min()) >= 0.0 and float(out.fused.detach().max()) <= 1.0


def test_untrained_model_is_the_pixel_mean_and_the_selection_is_learnable() -> None:
    """Nothing fixed in the output path: the untrained model is the plain mean; the selection logit and the
    detail channel move the output anywhere between (and beyond) the sources."""
    model = EntityFusionNet(tiny_config()).eval()
    ir, vis = torch.rand(1, 1, 20, 28), torch.rand(1, 1, 20, 28)
    assert torch.allclose(model(ir, vis).fused, (ir + vis) / 2, atol=1e-6)
    with torch.no_grad():
        model.decoder.out.bias.copy_(torch.tensor([30.0, 0.0]))  # select IR everywhere
    assert torch.allclose(model(ir, vis).fused, ir, atol=1e-5)
    with torch.no_grad():
        model.decoder.out.bias.copy_(torch.tensor([-30.0, 0.5]))  # VIS plus a detail offset
    assert torch.allclose(model(ir, vis).fused, (vis + 0.25 * torch.tanh(torch.tensor(0.5))).clamp(0, 1), atol=1e-5)


def test_default_config_is_under_one_million_parameters() -> None:
    cfg = FusionConfig(labels=[f"label{i}" for i in range(200)])
    model = EntityFusionNet(cfg)
    assert 20_000 < model.num_params() < 1_000_000
    assert model.n_labels == 200


def test_entity_tokens_come_from_labels_or_predictions() -> None:
    torch.manual_seed(0)
    model = EntityFusionNet(tiny_config(labels=["a", "b", "c"]), torch.randn(3, 384)).eval()
    torch.nn.init.normal_(model.decoder.out.weight, std=0.5)  # make the residual visible
    with torch.no_grad():
        model.entity.gate_attn.fill_(1.0)
        model.entity.gate_mlp.fill_(1.0)
    ir, vis = torch.rand(1, 1, 24, 24), torch.rand(1, 1, 24, 24)
    none = model(ir, vis, torch.tensor([[0.0, 0.0, 0.0]]))
    some = model(ir, vis, torch.tensor([[1.0, 0.0, 1.0]]))
    assert not torch.allclose(none.fused, some.fused)  # the visual-entity attention is in the path
    assert some.active.tolist() == [[1.0, 0.0, 1.0]]
    with torch.no_grad():
        model.head.fc.bias.copy_(torch.tensor([50.0, -50.0, 50.0]))
        model.head.fc.weight.zero_()
    pred = model(ir, vis)  # no labels: the classifier's own prediction picks the tokens
    assert pred.active.tolist() == [[1.0, 0.0, 1.0]]
    assert torch.allclose(pred.fused, some.fused)


def test_lambda_zero_or_no_labels_has_no_entity_path() -> None:
    assert EntityFusionNet(tiny_config(labels=["a"], lambda_cls=0.0)).n_labels == 0
    out = EntityFusionNet(tiny_config()).eval()(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8))
    assert out.logits is None and out.active is None


def test_losses_behave() -> None:
    flat = torch.full((1, 1, 16, 16), 0.5)
    assert float(sobel_magnitude(flat).max()) < 1e-2
    x = torch.rand(2, 1, 32, 32)
    assert float(ssim(x, x)) == pytest.approx(1.0, abs=1e-5)
    assert float(ssim(x, 1 - x)) < 0.5
    cfg = tiny_config(w_ssim=0.0)
    ir, vis = torch.rand(1, 1, 16, 16), torch.zeros(1, 1, 16, 16)
    total, parts = fusion_loss(ir, ir, vis, cfg)  # F = IR = max(IR, 0) with IR's own edges
    assert parts["intensity"] == pytest.approx(0.0) and parts["gradient"] == pytest.approx(0.0, abs=1e-3)
    assert parts["overshoot"] == pytest.approx(0.0, abs=1e-3)
    _, sharp = fusion_loss((2 * ir - 0.5).clamp(0, 1), ir, vis, cfg)  # edges neither source has: overshoot
    assert sharp["overshoot"] > 0.05
    logits, target = torch.zeros(1, 3), torch.tensor([[1.0, 0.0, 1.0]])
    _, parts = fusion_loss(ir, ir, vis, cfg.replace(lambda_cls=0.5), logits, target)
    assert parts["cls"] == pytest.approx(0.6931, abs=1e-3)
    _, parts = fusion_loss(ir, ir, vis, cfg.replace(lambda_cls=0.0), logits, target)
    assert "cls" not in parts


def test_config_overrides_and_round_trip() -> None:
    over = parse_overrides(["lr=0.01", "hflip=false", "patch_size=64", "text_model=x"])
    assert over == {"lr": 0.01, "hflip": False, "patch_size": 64, "text_model": "x"}
    cfg = FusionConfig().replace(**over)
    assert FusionConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(EntityLabelError, match="bad --set"):
        parse_overrides(["nope=1"])
    with pytest.raises(EntityLabelError, match="bad value for lr"):
        parse_overrides(["lr=fast"])
    with pytest.raises(EntityLabelError, match="newer"):
        FusionConfig.from_dict({**cfg.to_dict(), "format_version": cfg.format_version + 1})
    with pytest.raises(EntityLabelError, match="fixed-base model"):  # format 1: the model before issue 19
        FusionConfig.from_dict({**cfg.to_dict(), "format_version": 1})


def test_pixel_max_meets_the_intensity_target_but_not_the_gradient_target() -> None:
    """The losses ask for something no fixed rule gives: pixel-max drops the darker source's texture."""
    from entitylabel.fusion.model import fixed_rule

    cfg = tiny_config()
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    ir = torch.full((1, 1, 32, 32), 0.8)  # a bright flat IR
    vis = (0.3 + 0.2 * torch.sin(xx / 2.0) * torch.cos(yy / 3.0)).view(1, 1, 32, 32)  # darker texture
    _, at_max = fusion_loss(torch.maximum(ir, vis), ir, vis, cfg)
    assert at_max["intensity"] == pytest.approx(0.0) and at_max["gradient"] > 0.1
    mixed = (torch.maximum(ir, vis) + (vis - vis.mean())).clamp(0, 1)  # keeps the VIS texture
    _, at_mixed = fusion_loss(mixed, ir, vis, cfg)
    assert at_mixed["gradient"] < 0.2 * at_max["gradient"]
    _, at_rule = fusion_loss(fixed_rule(ir, vis), ir, vis, cfg)
    assert at_rule["gradient"] > 0.1  # the unsharp mask of a flat max adds nothing either
