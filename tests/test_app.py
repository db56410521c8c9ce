"""The Gradio app: the handler's every output on a committed example clip, friendly errors, the served API.

The clip analyses take ~10 s each on a CPU (10 frames, one face), so the handler runs once per module.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import cv2
import gradio as gr
import numpy as np
import pytest

import app
from detector.render import render_html
from detector.render import views as app_logic
from detector.report import FaceResult, Report
from detector.spec import ModelSpec

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "assets" / "examples").glob("*.mp4"))


@pytest.fixture(scope="module")
def clip() -> str:
    assert EXAMPLES, "assets/examples/*.mp4 missing"
    return str(EXAMPLES[0])


@pytest.fixture(scope="module")
def outputs(clip):
    return app.analyze(clip, None, 10, "HOG", True)


def test_no_model_loaded_at_import():
    import detector.pipeline

    # Runs first in this module: importing app must not have loaded weights.
    assert detector.pipeline.get_detector.cache_info().currsize == 0
    # app.py holds no tensors at module level.
    import torch

    assert not [k for k, v in vars(app).items() if isinstance(v, torch.Tensor | torch.nn.Module)]


def test_handler_outputs(outputs):
    label, timings, faces, cams, texture, fig, boxed, json_path, html_path, cue = outputs
    report = json.loads(Path(json_path).read_text())
    # Verdict: FAKE/REAL bars, or the INCONCLUSIVE band in words
    if report["verdict"] == "INCONCLUSIVE":
        assert isinstance(label, str) and label.startswith("INCONCLUSIVE")
    else:
        assert isinstance(label, dict) and set(label) == {"FAKE", "REAL"}
        assert label["FAKE"] + label["REAL"] == pytest.approx(1.0, abs=1e-3)
    # What the verdict means, beside it (the threshold's measured false-alarm rate, or "not calibrated")
    meaning = report["calibration"]["meaning"]
    assert "What this means" in timings and (meaning[:1].upper() + meaning[1:]) in timings
    # The verdict in plain words and the three evidence lines, first; the numbers below them under "Details"
    from detector.plain import evidence_lines, verdict_sentence

    sentence = verdict_sentence(report)
    assert timings.index(sentence) < timings.index("Details") < timings.index("What this means")
    for title, text in evidence_lines(report):
        assert f"**{title}** — {text}" in timings
    assert report["provenance"]["c2pa"]["present"] is False and report["provenance"]["container"]["tags"]
    page = Path(html_path).read_text()
    assert "id='verdict-sentence'" in page and "Content Credentials" in page and "File metadata" in page
    # Timings by stage
    for stage in ("decode", "faces", "model", "total"):
        assert stage in timings
    # Face tracks gallery: a strip of each track (crops with captions naming face, frame, time and p_fake)
    assert faces and all(isinstance(img, np.ndarray) and img.shape == (112, 112, 3) for img, _ in faces)
    assert len(faces) == sum(min(app.STRIP, len(f["frame_indices"])) for f in report["faces"])
    assert all("face" in c and "frame" in c and " s " in c and "p_fake" in c for _, c in faces)
    # The measured cue the bundled sidecar adds: one panel per face, its reading in words, and the same reading
    # in the JSON and beside the verdict
    assert len(cue) == len(report["faces"]) and all(img.shape == (224, 448, 3) for img, _ in cue)
    reading = report["faces"][0]["cues"]["mouth_detail_deficit"]
    assert f"deficit {reading['value']:.2f}" in cue[0][1] and f"deficit {reading['value']:.2f}" in timings
    # Grad-CAM galleries: the frames that moved the verdict most, per face, when explanations ran, else empty;
    # every frame's maps are in the HTML report (JPEG thumbnails)
    if "explanations" in report or cams:
        top = [t for pf in report["explanations"]["per_face"] for t in pf["top_frames"][:3]]
        assert len(cams) == len(top) and all("moved the verdict most" in c for _, c in cams)
        # the bundled model has a residual stream: its Grad-CAM gallery has the same items, other maps
        assert len(texture) == len(top) and "gradcam_texture" in report["explanations"]["method"]
        assert any(not np.array_equal(a, b) for (a, _), (b, _) in zip(cams, texture))
        page = Path(html_path).read_text()
        n = sum(len(f["frame_indices"]) for f in report["faces"])
        assert page.count("data:image/jpeg") >= 3 * n and "data:image/png" not in page
    # Plot
    assert len(fig.data) >= 1 and fig.layout.xaxis.title.text == "time (s)"
    # Boxed video: readable by OpenCV, one frame per sampled frame
    cap = cv2.VideoCapture(boxed)
    ok, frame = cap.read()
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    assert ok and frame is not None and n == len(report["sampling"]["indices"])
    # Downloads
    assert report["schema_version"] == 1 and report["verdict"] in ("REAL", "FAKE", "INCONCLUSIVE")
    assert report["verdict"] in Path(html_path).read_text()
    assert "calibration" in report and "p_fake_raw" in report


def test_bad_file_is_one_line_error(tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("this is not a video\n" * 20)
    with pytest.raises(gr.Error) as e:
        app.analyze(str(bad), None, 10, "HOG", False)
    msg = str(e.value.message)
    assert msg and "\n" not in msg


def test_no_input_is_friendly():
    with pytest.raises(gr.Error, match="Upload a video or an image"):
        app.analyze(None, None, 20, "HOG", True)


# ---------------------------------------------------------------- pure helpers on a synthetic report
def _report(explained: bool, faces: bool = True) -> Report:
    t = 4
    frames = np.zeros((t, 120, 160, 3), np.uint8)
    face = FaceResult(0, 0.8, [0, 5, 10, 15], [[40, 20, 100, 90]] * t, [False] * t,
                      np.zeros((t, 112, 112, 3), np.uint8))
    if explained:
        face.explanation = {"crop_overlays": np.full((t, 112, 112, 3), 200, np.uint8),
                            "temporal_importance": np.array([-0.5, 0.2, -0.1, 0.9]),
                            "temporal_method": "integrated_gradients", "frame_p_fake": np.full(t, 0.7)}
    return Report(file={"name": "x.mp4"}, video={"fps": 5.0},
                  model={"display_name": "m", "weights_sha256": "ab"},
                  verdict="FAKE" if faces else "NO_FACE", p_fake=0.8 if faces else None, threshold=0.5,
                  faces=[face] if faces else [], timings_s={"decode": 0.1, "total": 0.2},
                  sampling={"indices": [0, 5, 10, 15]}, frames=frames)


def test_helpers_with_explanations(tmp_path):
    r = _report(explained=True)
    cams = app_logic.gradcam_gallery(r)
    # The frames that pushed towards FAKE most come first (values -0.5, 0.2, -0.1, 0.9: frames 15 then 5),
    # then the rest in time order.
    assert [c[1] for c in cams] == ["face 0 · frame 15 · 3.00 s · #1 moved the verdict most",
                                    "face 0 · frame 5 · 1.00 s · #2 moved the verdict most",
                                    "face 0 · frame 0 · 0.00 s", "face 0 · frame 10 · 2.00 s"]
    fig = app_logic.temporal_figure(r)
    assert [tr.name for tr in fig.data] == ["face 0: integrated_gradients (+ towards FAKE)",
                                            "face 0: moved the verdict most", "face 0: p(fake) per frame",
                                            "towards REAL"]
    bars, top = fig.data[0], fig.data[1]
    assert bars.type == "bar" and list(bars.x) == [0.0, 1.0, 2.0, 3.0] and list(bars.y) == [-0.5, 0.2, -0.1, 0.9]
    assert list(bars.marker.color) == ["#1f77b4", "#d62728", "#1f77b4", "#d62728"]  # blue = towards REAL
    assert list(top.x) == [3.0, 1.0] and list(top.text) == ["#1", "#2"]
    note = fig.layout.annotations[-1].text
    assert "not measured" in note
    r.explanations = {"method": {"temporal": {"method": "integrated_gradients"}},
                      "faithfulness": {"measured_on": "dev fakes", "temporal": {"integrated_gradients": {
                          "k3": {"top_drop": 0.8, "random_drop": 0.1}}},
                          "spatial": {"top_drop": 0.4, "random_blobs_drop": 0.2}}}
    note = app_logic.temporal_figure(r).layout.annotations[-1].text.replace("<br>", " ")
    # the maps' own figures are under each Grad-CAM tab (map_check), not repeated in the chart's note
    assert "-0.80" in note and "-0.10" in note and "dev fakes" in note and "Grad-CAM" not in note
    boxed = app_logic.draw_boxes(r)
    assert boxed[0, 20, 70].tolist() != [0, 0, 0]  # box edge drawn
    assert app_logic.p_fake_colour(0.0) == (0, 255, 0) and app_logic.p_fake_colour(1.0) == (255, 0, 0)
    path = app_logic.boxed_video(r, tmp_path)
    cap = cv2.VideoCapture(path)
    assert cap.read()[0] and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 4


def test_helpers_no_face():
    r = _report(explained=False, faces=False)
    assert app_logic.label_value(r).startswith("NO_FACE")
    assert app_logic.face_gallery(r) == [] and app_logic.gradcam_gallery(r) == []
    assert "NO_FACE" in render_html(r)


def test_model_card_lists_calibration_and_devset_per_family():
    dev = {"data": "public dev set", "n_real": 36, "n_fake": 38, "no_face": {"n_real": 1, "n_fake": 2},
           "flagged_real": 9, "fpr": 0.25, "detected_fake": 20, "tpr": 0.53, "inconclusive_real": 3,
           "inconclusive_fake": 4, "roc_auc": 0.61, "threshold": 0.8, "calibrated": True, "frames": 20,
           "per_family": {"real": {"n_scored": 36}, "lip-sync": {"n_scored": 17, "n_no_face": 0, "called_fake": 9,
                                                                "fake_rate": 0.53, "inconclusive": 2,
                                                                "roc_auc_vs_all_real": 0.7}}}
    cal = {"method": "platt", "a": 0.4, "b": -1.2, "threshold": 0.8, "band_low": 0.5,
           "validation": {"n_real": 40, "n_fake": 40, "false_alarms": 2, "detected": 30, "data": "GRID val"}}
    card = app_logic.model_card_markdown(ModelSpec(name="m", trained=True, calibration=cal,
                                                   metrics={"devset": dev}))
    assert "| lip-sync | 17 | 0 | 9 (53%) | 2 | 0.700 |" in card
    dev = {**dev, "roc_auc_ci95": [0.48, 0.74]}  # figures stored since the intervals: shown with them
    dev["per_family"]["lip-sync"]["roc_auc_vs_all_real_ci95"] = [0.52, 0.86]
    card_ci = app_logic.model_card_markdown(ModelSpec(name="m", trained=True, calibration=cal, metrics={"devset": dev}))
    assert "| 0.610 (95% CI 0.48-0.74) |" in card_ci and "| 0.700 (95% CI 0.52-0.86) |" in card_ci
    assert "2 of 40 real are flagged" in card and "threshold **0.800**" in card
    assert "not calibrated" not in card
    assert "none: p(fake) is the raw" in app_logic.model_card_markdown(ModelSpec(name="m"))
    assert "Residual-pair stream" not in card
    nxt = app_logic.model_card_markdown(ModelSpec(name="m", residual_width=32, residual_pairs="next"))
    assert "128 features per frame" in nxt and "the video frame right after it" in nxt
    assert "Threshold on real footage" not in card
    rw = {"n_real": 36, "sources": 12, "target_fpr": 0.1, "raised": True, "false_alarms_in_sample": 3,
          "false_alarms_leave_one_source_out": 4}
    members = [{"name": f"h{k}", "head_seed": k, "val_auc": 0.9} for k in range(3)]
    card_rw = app_logic.model_card_markdown(ModelSpec(name="m", trained=True, calibration=cal | {"real_world": rw},
                                                      training={"recipe": "r", "members": members}))
    assert "raised on 36 real-world real clips of 12 sources" in card_rw and "**4 of 36**" in card_rw
    assert "h2 (seed 2, validation AUC 0.9)" in card_rw


def test_model_card_says_untrained_loudly():
    card = app_logic.model_card_markdown(ModelSpec(name="resnext50_lstm", weights_sha256="abc123"))
    assert "UNTRAINED" in card and "abc123" in card and "Licence" in card
    trained = app_logic.model_card_markdown(ModelSpec(name="m", trained=True, trained_on="GRID",
                                                      metrics={"auc": 0.91}, limits=("frontal faces",)))
    assert "UNTRAINED" not in trained and "auc" in trained and "frontal faces" in trained


def test_model_card_reads_the_bundled_sidecar_without_raw_records():
    """The bundled card: the training lineage by name, the test set as a table, the deletion test as a
    sentence, and no nested record dumped as text."""
    from detector.weights import DEFAULT_WEIGHTS, read_spec

    spec = read_spec(DEFAULT_WEIGHTS)
    card = app_logic.model_card_markdown(spec)
    assert "- **Started from:** " + spec.training["init"]["name"] in card
    if "test_clips" in spec.metrics:
        t = spec.metrics["test_clips"]
        assert "**Identity-held-out test" in card and f"| all real | {t['n_real']} |" in card
    if "faithfulness" in spec.metrics:
        assert "**Explanations** — Faithfulness, measured on" in card
    assert "{'" not in card and "'per_family'" not in card  # no dict printed into the card


# ---------------------------------------------------------------- the served API
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gradio_client_against_served_app(clip):
    from gradio_client import Client, handle_file

    port = _free_port()
    app.demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        result = client.predict(handle_file(clip), None, 10, "HOG", False, api_name="/analyze")
        label, timings, faces, cams, texture, plot, boxed, json_file, html_file, cue = result
        # the verdict of the bundled model on this clip is not the point here, only that one comes back
        assert label["label"] in ("FAKE", "REAL") or label["label"].startswith("INCONCLUSIVE: the detector cannot tell")
        assert "total" in timings and len(faces) >= 1 and plot is not None and len(cue) >= 1
        assert json.loads(Path(json_file).read_text())["schema_version"] == 1
        assert Path(boxed["video"] if isinstance(boxed, dict) else boxed).is_file()
    finally:
        app.demo.close()


def test_image_upload(tmp_path, clip):
    cap = cv2.VideoCapture(clip)
    ok, frame = cap.read()
    cap.release()
    png = tmp_path / "frame.png"
    cv2.imwrite(str(png), frame)
    label, timings, faces, _cams, _tex, fig, boxed, json_path, _html, cue = app.analyze(None, str(png), 20, "HOG",
                                                                                       False)
    # the verdict on this frame is not the point: a label comes back (a FAKE/REAL confidence dict, or the
    # INCONCLUSIVE sentence)
    assert (set(label) == {"FAKE", "REAL"} if isinstance(label, dict)
            else label.startswith("INCONCLUSIVE: the detector cannot tell"))
    assert len(faces) == 1 and len(cue) == 1 and "still image" in timings
    assert len(fig.data) == 1 and Path(boxed).is_file()
    assert json.loads(Path(json_path).read_text())["video"]["codec"] == "image"


def test_the_verdict_comes_before_the_explanations(clip):
    """With explanations on, the served handler answers twice: the verdict, its evidence and the face strip
    first (no maps, chart or files yet), then everything; without them, once."""
    steps = list(app.analyze_steps(clip, None, 10, "HOG", True))
    assert len(steps) == 2
    first, full = steps
    assert first[0] == full[0] and first[2] and full[2]  # the same verdict; the face strip in both
    assert first[3] == [] and first[5] is None and first[7] is None and first[8] is None
    assert full[3] and full[5] is not None and full[7] and full[8]
    plain = list(app.analyze_steps(clip, None, 10, "HOG", False))
    assert len(plain) == 1 and plain[0][7]


def test_explanations_computed_later_are_the_same(face_clip):
    """classify(..., explain_later=True): the report stands without explanations, and calling
    `pending_explanations` gives the explanations an undeferred run gives."""
    from detector.faces import FaceConfig
    from detector.pipeline import AnalysisConfig, analyze_video

    config = AnalysisConfig(frames=8, explain=True, faces=FaceConfig(detector="hog"))
    later = analyze_video(face_clip, config, explain_later=True)
    assert later.explanations is None and later.pending_explanations is not None
    later.pending_explanations()
    now = analyze_video(face_clip, config)
    assert later.pending_explanations is None and now.pending_explanations is None
    a, b = later.explanations["per_face"][0], now.explanations["per_face"][0]
    assert a["integrated_gradients"] == b["integrated_gradients"] and a["cam_peak"] == b["cam_peak"]
    assert "explain" in later.timings_s and later.to_dict()["verdict"] == now.to_dict()["verdict"]


def test_boxes_land_on_display_copies():
    """Report.frames are display copies (detector/streamed.py): a box in the video's pixels is drawn scaled, on the
    face, not at its full-size coordinates."""
    r = _report(explained=False)
    r.video.update(width=320, height=240)  # the frames (160 x 120) are half size
    r.faces[0].boxes = [[80, 40, 200, 180]] * 4  # at half size: (40, 20) to (100, 90)
    boxed = app_logic.draw_boxes(r)
    assert all(boxed[0, y, x].any() for y, x in [(20, 70), (55, 40), (55, 100), (90, 70)])  # its four edges
    assert not boxed[0, 55, 80].any() and not boxed[0, 110, 80].any()  # where the unscaled left edge would run
