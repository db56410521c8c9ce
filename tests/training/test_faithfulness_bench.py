"""detector/training/faithfulness.py: the "isolated" spatial test gives an edit to one stream only. Splicing
that stream's block of features from the edited crops into the original features must equal running the
model with that stream on the edited crops and the other stream on the originals."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from detector.training import faithfulness as bf


def test_isolate_equals_each_stream_on_its_own_input(tiny_spec):
    from detector.model import build_model

    torch.manual_seed(0)
    model = build_model(dataclasses.replace(tiny_spec, residual_width=2, residual_pairs="next")).eval()
    rng = np.random.default_rng(0)
    clip = torch.from_numpy(rng.integers(0, 255, (1, 4, 3, 64, 64)).astype(np.uint8))
    partners = torch.from_numpy(rng.integers(0, 255, (1, 4, 3, 64, 64)).astype(np.uint8))
    mask = torch.zeros(64, 64, dtype=torch.bool)
    mask[16:48, 16:48] = True
    filled_clip, filled_partners = clip.clone(), partners.clone()
    filled_clip[..., mask], filled_partners[..., mask] = 128, 128
    with torch.no_grad():
        orig = model.forward_features(clip, partners)
        edited = model.forward_features(filled_clip, filled_partners)
        rgb_only = bf.isolate(orig, edited, slice(0, model.rgb_features))
        tex_only = bf.isolate(orig, edited, slice(model.rgb_features, orig.shape[-1]))
        n = model.rgb_features
        # The reference: each stream run on its own input.
        rgb_ref = model.frame_features(filled_clip[0].float()).float()
        res_ref = model.residual(filled_clip.float(), filled_partners.float())
    assert torch.allclose(rgb_only[0, :, :n], rgb_ref, atol=1e-5)
    assert torch.equal(rgb_only[..., n:], orig[..., n:])
    assert torch.allclose(tex_only[..., n:], res_ref, atol=1e-5)
    assert torch.equal(tex_only[..., :n], orig[..., :n])
    # The edit changed both streams, so each splice differs from the whole-model edit.
    assert not torch.allclose(rgb_only, edited) and not torch.allclose(tex_only, edited)


def test_grain_fill_changes_only_the_mask_and_keeps_the_grain():
    import cv2

    rng = np.random.default_rng(1)
    crops = np.clip(120 + rng.normal(0, 6, (3, 48, 48, 1)).repeat(3, -1), 0, 255).astype(np.uint8)
    masks = np.zeros((3, 48, 48), bool)
    masks[:, 8:40, 8:40] = True
    a = bf.grain_fill(crops, masks, np.random.default_rng(5))
    assert np.array_equal(a[~masks], crops[~masks])
    assert np.array_equal(a, bf.grain_fill(crops, masks, np.random.default_rng(5)))  # deterministic per seed
    b = bf.grain_fill(crops, masks, np.random.default_rng(6))
    assert not np.array_equal(a[masks], b[masks])  # fresh noise, as a camera renews it
    flat = bf.mean_fill(crops, masks)

    def grain(x):
        g = x[8:40, 8:40].astype(np.float32).mean(-1)
        return (g - cv2.GaussianBlur(g, (0, 0), 1.0)).std()

    # the filled patch keeps about the crop's grain; the mean fill has none
    assert grain(flat[0]) < 0.1 < 0.5 * grain(crops[0]) < grain(a[0]) < 2 * grain(crops[0])
