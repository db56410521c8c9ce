"""analyze_video / analyze_image: file -> probe + hash -> sampled frames -> faces -> tracks -> model -> Report.

Each arrow is a function in its own module; this one only wires them, times them and reports progress.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from detector import adaptive
from detector.version import __version__
from detector import calibration as cal
from detector.cues import apply_cues
from detector.errors import InputError
from detector.faces import BackgroundTracks, FaceConfig, FaceTrack, find_face_tracks, track_crops
from detector.hashing import sha256_file
from detector.provenance import ProvenanceConfig, read_provenance
from detector.report import NO_FACE, FaceResult, Report
from detector.runtime import ENGINES, PRECISIONS, Detector, get_detector, get_model, wants_partners
from detector.streamed import FrameCrops, Reread, SuccessorCrops, display_copies
from detector.video import (VideoInfo, VideoLimits, is_image_path, probe, read_frames, read_image, sample_indices,
                            stream_frames)
from detector.weights import DEFAULT_WEIGHTS, read_spec

if TYPE_CHECKING:  # torch loads with the model (get_detector), not at `import detector`: ~2 s of start-up
    import torch

Progress = Callable[[float, str], None]
FRAME_CHOICES = (10, 20, 40, 60, 80, 100)
# Frames read per clip by default. 60, not 20: which 20 frames are read moves the dev set's ROC-AUC by
# +-0.03 (six disjoint 20-frame samplings of the same clips: 0.768-0.835, research/devset_quick.py --sets);
# 60 frames read in one pass score 0.797-0.801 there, as the mean of those samplings (0.801), for ~2.5x the time.
DEFAULT_FRAMES = 60


@dataclass(frozen=True)
class AnalysisConfig:
    """Options of one analysis. `frames`: T, frames sampled evenly over the whole clip (1-300; default
    DEFAULT_FRAMES, the count the bundled weights were calibrated at).

    threshold: None uses the one in the weights' sidecar. precision: "fp32", "bf16" or "auto" (bf16
    autocast + channels_last where the CPU has native bf16, ~2x faster here, softmax within 4e-5). engine:
    "auto", "onnxruntime" or "torch", which library runs the trunk in fp32 (detector/runtime.py).
    explain: also compute Grad-CAM and temporal importance (see explain/).
    provenance: how the file's Content Credentials and container metadata are read (detector/provenance);
    they are reported beside the verdict and never change it.
    adaptive: at the default frame count, score a third of the frames first and stop there when the verdict
    is far from the threshold and band (detector/adaptive.py; `prepare` reads the first read, `classify` scores
    it); a clip it does not decide gets the plain run's report for about the plain run's time. Opt-in: read as
    the default candidate, the dev set disagreed with the validation clips it was fitted on (3 of the 6 dev clips
    it stops early get another verdict from all 60 frames; `adaptive.RULE.error`).
    """

    frames: int = DEFAULT_FRAMES
    faces: FaceConfig = field(default_factory=FaceConfig)
    limits: VideoLimits = field(default_factory=VideoLimits)
    weights: str = str(DEFAULT_WEIGHTS)
    threshold: float | None = None
    precision: str = "auto"
    engine: str = "auto"
    explain: bool = False
    explain_target: str = "fake"
    provenance: ProvenanceConfig = field(default_factory=ProvenanceConfig)
    adaptive: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.frames <= 300:
            raise InputError(f"frames must be between 1 and 300, not {self.frames}")
        if self.precision not in PRECISIONS:
            raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")
        if self.engine not in ENGINES:
            raise InputError(f"engine must be one of {', '.join(ENGINES)}, not {self.engine!r}")


def _noop(_f: float, _m: str) -> None:
    pass


@dataclass
class Prepared:
    """A clip read and its faces found: everything an analysis does before the model.

    frames: uint8 (T, H, W, 3) RGB, the sampled frames; once the faces are found, display copies (longer side at
    most streamed.DISPLAY_MAX_SIDE; None until then where they were streamed); indices: their frame numbers;
    tracks: face tracks over them; crops (RGB): per track, its face crops (`faces.track_crops`).
    frame_crops / successors: the sampled frames' face crops and display copies and, for a model that pairs
    "next" frames (None otherwise, and for an image), each frame's successor's face crops, cut while the file was
    read (detector/streamed.py), and `reread`, which reads frames again where a track's box was interpolated;
    partner_crops (RGB): per track, the successors cropped with the track's boxes.
    Made by `prepare` (no torch needed), finished by `classify`; the CLI's batch mode prepares the next
    clip in a thread while the model classifies the current one.
    """

    frames: np.ndarray | None
    indices: list[int]
    file: dict
    video: dict
    warnings: list[str]
    timings: dict[str, float]
    t0: float
    tracks: list[FaceTrack] = field(default_factory=list)
    crops: list[np.ndarray] | None = None
    frame_crops: FrameCrops | None = None
    successors: SuccessorCrops | None = None
    reread: Reread | None = None
    partner_crops: list[np.ndarray] | None = None
    provenance: dict | None = None
    # The adaptive frame count's first read (detector/adaptive.py): every third of these frames with its own
    # face tracks, prepared from the same decode; None unless `prepare(..., first=...)` asked for it.
    first: Prepared | None = None


def analyze_video(path: str | os.PathLike, config: AnalysisConfig = AnalysisConfig(),
                  progress: Progress | None = None, detector: Detector | None = None,
                  explain_later: bool = False) -> Report:
    """Analyse every face in a video (or, for an image path, the one frame).

    Returns a Report whose verdict is FAKE if any face track's p_fake >= threshold, REAL if all are
    below, NO_FACE if no face was found; with a calibrated sidecar p_fake is the calibrated probability
    and scores in the validation-defined band below the threshold are INCONCLUSIVE (see
    detector/calibration.py). Raises InputError subclasses for bad input. explain_later: see `classify`.
    """
    progress = progress or _noop
    partners = first = None  # None: as the sidecar of config.weights says
    if detector is not None:  # a model passed in: its own spec decides
        partners = detector.wants_partners
        first = config.adaptive and adaptive.applies(config.frames, detector.spec.calibration,
                                                    config.threshold is not None)
    report = classify(prepare(path, config, progress, partners, first), config, progress, detector, explain_later)
    report.sampling.setdefault("decided_at", len(report.sampling["indices"]))
    return report


def analyze_image(path: str | os.PathLike, config: AnalysisConfig = AnalysisConfig(),
                  progress: Progress | None = None, detector: Detector | None = None) -> Report:
    """Frame-level analysis of a still image: every face is a track of length 1 (T = 1)."""
    return classify(_prepare_image(path, config, progress or _noop), config, progress, detector)


def prepare(path: str | os.PathLike, config: AnalysisConfig = AnalysisConfig(),
            progress: Progress | None = None, partners: bool | None = None, first: bool | None = None) -> Prepared:
    """Probe, hash, read the T sampled frames (or the image) and find the face tracks.

    partners: also read each sampled frame's successor (for a model whose stream pairs "next" frames);
    None: as `config.weights`' sidecar says (read without loading the model). first: also prepare the adaptive
    frame count's first read (`Prepared.first`: every third frame, tracks found on those frames alone, as a
    read of `adaptive.RULE.first` frames would) from the same decode, which `classify` then scores first; None:
    where `config.adaptive` asks for it and the rule applies (`adaptive.applies`)."""
    progress = progress or _noop
    if is_image_path(path):
        return _prepare_image(path, config, progress)
    t0 = time.perf_counter()
    info = probe(path, config.limits)
    file = {"name": Path(path).name, "bytes": info.bytes, "sha256": sha256_file(path)}
    wanted = sample_indices(info.frame_count, config.frames)
    # Faces are found on a second thread while the file is decoded on this one (detector/faces.py:
    # BackgroundTracks), and each frame, and each successor a "next" model needs, is cut down there to its face
    # crops (and a display copy) as soon as it is read, so no full frame is kept (detector/streamed.py); "faces"
    # then times only what is left of it once the last frame is read.
    progress(0.0, f"reading video and finding faces in {len(wanted)} frames")
    spec = read_spec(config.weights) if first is None or partners is None else None  # the sidecar: no torch here
    succ = SuccessorCrops(config.faces) if (partners if partners is not None else wants_partners(spec)) else None
    if first is None:
        first = config.adaptive and adaptive.applies(config.frames, spec.calibration, config.threshold is not None)
    subset = _first_read(wanted, info.frame_count) if first else None
    streamed = FrameCrops(config.faces, len(wanted))
    # The adaptive first read's frames are also tracked on their own there, as a read of just them would be.
    tracker = BackgroundTracks(config.faces, successors=succ, frames=streamed, subset=subset)
    try:
        got = stream_frames(path, wanted, info, frames=tracker, successors=tracker if succ else None)
    finally:
        tracker.close()
    warnings = []
    if len(wanted) < config.frames:
        warnings.append(f"clip has only {info.frame_count} frames: used all of them instead of {config.frames}")
    if len(got) < len(wanted):
        warnings.append(f"only {len(got)} of {len(wanted)} sampled frames could be decoded "
                        "(truncated or damaged file); analysed those")
    video = {"width": info.width, "height": info.height, "fps": round(info.fps, 3),
             "frame_count": info.frame_count, "duration_s": round(info.duration_s, 3),
             "codec": info.codec, "rotation": info.rotation}
    reread = _rereader(path, info)
    prep = Prepared(None, got, file, video, warnings, {"decode": time.perf_counter() - t0}, t0,
                    frame_crops=streamed, successors=succ, reread=reread)
    _read_provenance(prep, path, config, image=False)
    if subset:
        pos = [k for k, i in enumerate(got) if i in subset]
        sub = Prepared(None, [got[k] for k in pos], file, video, list(warnings), dict(prep.timings), t0,
                       frame_crops=streamed, successors=succ, reread=reread, provenance=prep.provenance)
        prep.first = _find_faces(sub, config, _noop, tracker, rows=pos)
    return _find_faces(prep, config, progress, tracker)


def _rows(frames: np.ndarray, pos: list[int]) -> np.ndarray:
    """frames[pos] as a view where `pos` is evenly spaced (the first read's every third frame), else a copy."""
    if len(pos) > 1 and pos == list(range(pos[0], pos[-1] + 1, pos[1] - pos[0])):
        return frames[pos[0]:pos[-1] + 1:pos[1] - pos[0]]
    return frames[pos]


def _rereader(path: str | os.PathLike, info: VideoInfo) -> Reread:
    """Reads frames again (frame numbers -> RGB frames), for boxes the tracker interpolated."""
    def reread(indices: list[int]) -> dict[int, np.ndarray]:
        frames, got = read_frames(path, indices, info)
        return dict(zip(got, frames))
    return reread


def _first_read(wanted: list[int], frame_count: int) -> set[int] | None:
    """The adaptive first read's frames: every third of the `adaptive.RULE.total` sampled (the middle one of each
    three), None when `wanted` is another count. That is sample_indices(N, RULE.first) whenever float rounding
    lets it be (94 % of frame counts; otherwise one of them lies a frame away), so a first read decides as a
    read of RULE.first frames does."""
    if len(wanted) == adaptive.RULE.total:
        return set(wanted[1::3])
    if frame_count < adaptive.RULE.total:  # a short clip: every frame is read; the first read takes as a short read
        return set(sample_indices(frame_count, adaptive.RULE.first))
    return None


def _prepare_image(path: str | os.PathLike, config: AnalysisConfig, progress: Progress) -> Prepared:
    t0 = time.perf_counter()
    img = read_image(path, config.limits.max_bytes)
    file = {"name": Path(path).name, "bytes": os.path.getsize(path), "sha256": sha256_file(path)}
    video = {"width": img.shape[1], "height": img.shape[0], "fps": 0.0, "frame_count": 1,
             "duration_s": 0.0, "codec": "image", "rotation": 0}
    warnings = ["still image: one frame, so the LSTM sees no motion; the verdict is frame-level"]
    prep = Prepared(img[None], [0], file, video, warnings, {"decode": time.perf_counter() - t0}, t0)
    _read_provenance(prep, path, config, image=True)
    return _find_faces(prep, config, progress)


def _read_provenance(prep: Prepared, path: str | os.PathLike, config: AnalysisConfig, image: bool) -> None:
    """The file's Content Credentials and container tags, read from its bytes after the pixels (so a file
    that cannot be decoded fails as before); reported beside the verdict, never an input to it."""
    t = time.perf_counter()
    prep.provenance = read_provenance(path, config.provenance, image=image).to_dict()
    prep.timings["provenance"] = time.perf_counter() - t


def _find_faces(prep: Prepared, config: AnalysisConfig, progress: Progress,
                tracker: BackgroundTracks | None = None, rows: list[int] | None = None) -> Prepared:
    """The face tracks (from `tracker`, which saw every frame as it was read, or found here), each track's crops
    and successor crops; the frames become display copies. rows: these are the adaptive first read's frames,
    at these positions of the read (tracked on their own by `tracker`)."""
    progress(0.15, f"linking the faces of {len(prep.indices)} frames into tracks")
    t = time.perf_counter()
    if tracker is None:
        prep.tracks = find_face_tracks(prep.frames, config.faces)
    else:
        prep.tracks = tracker.result() if rows is None else tracker.result_subset()
    if prep.frame_crops is not None:
        prep.crops = prep.frame_crops.track_crops(prep.tracks, prep.indices, prep.reread)
        display = prep.frame_crops.frames()
        prep.frames = display if rows is None else _rows(display, rows)
    else:
        prep.crops = [track_crops(prep.frames, tr, config.faces) for tr in prep.tracks]
        prep.frames = display_copies(prep.frames)
    if prep.successors is not None:
        prep.partner_crops = prep.successors.track_partners(prep.tracks, prep.indices, prep.crops, prep.reread)
    prep.timings["faces"] = time.perf_counter() - t
    return prep


def classify(prep: Prepared, config: AnalysisConfig = AnalysisConfig(), progress: Progress | None = None,
             detector: Detector | None = None, explain_later: bool = False) -> Report:
    """Run the model on every face track of a prepared clip (and explain, if asked); returns the Report.
    A clip prepared with its adaptive first read (`prep.first`) is scored that way (`_score_adaptive`).

    explain_later: with `config.explain`, return as soon as the verdict stands, with
    `report.pending_explanations` set: calling it computes the explanations from the features and activations
    this pass kept (no model pass again) and updates the timings. The app shows the verdict first this way."""
    progress = progress or _noop
    det = detector or get_model(config.weights, config.precision, config.engine, explain=config.explain)
    if prep.first is not None:
        report, feats, maps = _score_adaptive(prep, config, progress, det)
    else:
        report, feats, maps = _score(prep, config, progress, det)

    def finish() -> None:
        report.pending_explanations = None
        _explain(report, det, feats, maps, config, progress)
        report.timings_s["total"] = time.perf_counter() - prep.t0
        progress(1.0, "done")

    report.timings_s["total"] = time.perf_counter() - prep.t0
    if not (config.explain and report.faces):
        progress(1.0, "done")
    elif explain_later:
        report.pending_explanations = finish
    else:
        finish()
    return report


def _score(prep: Prepared, config: AnalysisConfig, progress: Progress, det: Detector,
           cache: dict | None = None) -> tuple[Report, list, list]:
    """The model on every face track: the Report (verdict, faces, no explanations), each track's features
    (1, T, C) and, when explanations are asked for, the activations Grad-CAM reads (Detector.features_and_maps;
    {} otherwise): the explanations reuse both instead of running the trunk again. cache: crops already through
    the trunk in this analysis (the adaptive first read's), not run again."""
    frames, indices, tracks, warnings, timings = prep.frames, prep.indices, prep.tracks, prep.warnings, prep.timings
    progress(0.5, f"classifying {len(tracks)} face track(s)")
    t = time.perf_counter()
    calib = det.spec.calibration if cal.is_calibrated(det.spec.calibration) else {}
    threshold = config.threshold if config.threshold is not None else \
        float(calib["threshold"]) if calib else det.spec.threshold
    band = None if config.threshold is not None else cal.band(calib)
    note = cal.frames_note(calib, config.frames) if config.threshold is None and prep.video.get("codec") != "image" \
        else None
    if note:
        warnings.append(note)
    results, feats, maps = [], [], []
    for k, tr in enumerate(tracks):
        crops = prep.crops[k]
        partners = prep.partner_crops[k] if prep.partner_crops is not None else None
        if det.wants_partners and partners is None and len(frames) > 1:
            warnings.append("this model compares each frame with the next one, which was not read (the clip "
                            "was prepared for other weights); its frame-pair evidence is left out")
        f, acts = det.features_and_maps(crops, partners, keep_maps=config.explain, cache=cache)
        feats.append(f)
        maps.append(acts)
        m_model = det.margin(f)
        m, cue_details = apply_cues(m_model, crops, det.spec.cues)  # the model's margin when there are none
        results.append(FaceResult(tr.track_id, cal.calibrate(m, calib), [indices[p] for p in tr.positions],
                                  [b.as_list() for b in tr.boxes], [not d for d in tr.detected], crops,
                                  p_fake_raw=cal.sigmoid(m), margin=m,
                                  partners=partners if det.wants_partners else None,
                                  model_margin=m_model if cue_details else None, cues=cue_details or None))
    timings["model"] = time.perf_counter() - t
    if not det.spec.trained:
        warnings.append("the model is UNTRAINED (random weights): its probabilities mean nothing")
    p_raw = None
    if results:
        p = max(r.p_fake for r in results)  # calibration is increasing: the same face has the max raw p
        p_raw = max(r.p_fake_raw for r in results)
        verdict = cal.decide(p, threshold, band[0] if band else None)
    else:
        p, verdict = None, NO_FACE
        warnings.append(f"no face found in {len(frames)} sampled frames; try more frames (--frames 60), "
                        "the cnn detector, or a clip where a face is visible")
    report = Report(file=prep.file, video=prep.video, model=det.model_info(), verdict=verdict, p_fake=p,
                    threshold=threshold, faces=results, timings_s=timings,
                    sampling={"requested": config.frames, "used": len(indices), "indices": indices},
                    warnings=warnings, software=_software(det), frames=frames, p_fake_raw=p_raw,
                    calibration=cal.report_block(calib, det.spec.metrics, threshold, config.threshold is not None),
                    provenance=prep.provenance)
    return report, feats, maps


def _explain(report: Report, det: Detector, feats: list, maps: list, config: AnalysisConfig,
             progress: Progress) -> None:
    from explain import explain_report

    progress(0.7, "explaining (Grad-CAM and temporal importance)")
    t = time.perf_counter()
    explain_report(report, det, feats, target=config.explain_target, maps=maps)
    report.timings_s["explain"] = time.perf_counter() - t


def _score_adaptive(prep: Prepared, config: AnalysisConfig, progress: Progress,
                    det: Detector) -> tuple[Report, list, list]:
    """The adaptive frame count (detector/adaptive.py) on a clip prepared with its first read: the first read's
    `RULE.first` frames (every third, their own face tracks) are scored first; if that verdict is far from the
    threshold and band it is the report, else the full read's crops go through the model, the first read's not
    again (same features: the trunk's output for a crop does not depend on the batch), so its report is a plain
    run's. Returns what `_score` returns, the rule's block in `report.sampling["adaptive"]`."""
    calib = det.spec.calibration
    cache: dict = {}
    n_first = len(prep.first.indices)
    first = dataclasses.replace(config, frames=adaptive.RULE.first)
    report, feats, maps = _score(prep.first, first, lambda f, m: progress(f, f"first {n_first} frames: {m}"),
                                 det, cache)
    band = cal.band(calib)
    p_first = report.p_fake
    verdict = adaptive.early_verdict(p_first, report.threshold, band[0] if band else None)
    if verdict is not None:
        # the calibration's "other frame count" warning does not apply: the rule was set for this first read
        report.warnings[:] = [w for w in report.warnings if w != cal.frames_note(calib, first.frames)]
        report.sampling.update(requested=config.frames, decided_at=len(report.sampling["indices"]))
    else:
        model_first = report.timings_s["model"]
        report, feats, maps = _score(prep, config, progress, det, cache)
        report.sampling["decided_at"] = len(report.sampling["indices"])
        report.timings_s["model_first_read"] = model_first  # "model" then times the rest of the crops
    report.sampling["adaptive"] = adaptive.report_block(p_first, verdict)
    return report, feats, maps


def _software(det: Detector) -> dict:
    """The versions that made the numbers: torch's where it ran (not for lean.LeanDetector), onnxruntime's where
    it ran the trunk, numpy's where it ran the LSTM."""
    out = {"deepfake_forensics": __version__, "python": platform.python_version()}
    if getattr(det, "uses_torch", True):
        import torch

        out["torch"] = torch.__version__
    else:
        out["numpy"] = np.__version__
    if det.engine == "onnxruntime":
        import onnxruntime

        out["onnxruntime"] = onnxruntime.__version__
    return out
