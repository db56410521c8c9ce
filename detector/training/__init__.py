"""The training flow: make fakes, cache face crops, train, evaluate.

- ``synth``: offline SBI and landmark face-swap clips from real clips (``deepfake-forensics synth``).
- ``online_fakes``: fresh fakes of the training crops at every step (paired with their reals).
- ``prepare``: face-crop cache with identity-disjoint splits (``deepfake-forensics prepare``).
- ``train``: two-stage training, frames then clips (``deepfake-forensics train``).
- ``evaluate``: metrics on prepared splits (``deepfake-forensics evaluate``).

The analysis flow (``detector.pipeline`` and what it calls) never imports this package.
"""
