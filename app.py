"""Gradio app: upload a video (or one image), get a verdict, face tracks, Grad-CAM and a temporal chart.

A thin UI over `detector.analyze_video`; the figures, galleries, boxed clip and downloads are built by
`detector.render.views`. The model loads on the first request (never at import), so this module holds no
tensors and a Hugging Face Space starts in seconds.

Run:  python app.py          (GRADIO_SERVER_PORT / GRADIO_SERVER_NAME choose where it listens)
Load: DEEPFAKE_FORENSICS_CONCURRENCY (analyses at once, default 1), DEEPFAKE_FORENSICS_QUEUE_SIZE (requests
      waiting, default 16; past it a request is told the app is busy, try again) and
      DEEPFAKE_FORENSICS_CACHE_MAX_AGE_S (Gradio's copies of uploads and outputs are deleted after it, 3600, >= 600).
API:  gradio_client.Client(url).predict(handle_file("clip.mp4"), None, 20, "HOG", True, api_name="/analyze")
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import tempfile
from pathlib import Path

import gradio as gr

from detector.errors import ForensicsError, InputError
from detector.faces import FaceConfig
from detector.pipeline import DEFAULT_FRAMES, FRAME_CHOICES, AnalysisConfig, analyze_video
from detector.render import page, views
from detector.weights import DEFAULT_WEIGHTS, read_spec

log = logging.getLogger("deepfake_forensics.app")
EXAMPLES_DIR = Path(__file__).resolve().parent / "assets" / "examples"
DETECTORS = {"BlazeFace": "blazeface", "HOG": "hog", "CNN": "cnn"}
STRIP = 8  # face crops shown per track, spread over it
ALL_FRAMES = "Every sampled frame's crop and maps are in the HTML report (download above)."


def _env_int(name: str, default: int, minimum: int = 1) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        value = int(raw) if raw else default
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise SystemExit(f"{name} must be a whole number >= {minimum}, not {raw!r}")
    return value


# One analysis at a time by default: torch already uses every core for one, and each running analysis
# holds its frames and activations (peak RSS stays under 2.5 GB with 8 requests queued; bench_load.py).
CONCURRENCY = _env_int("DEEPFAKE_FORENSICS_CONCURRENCY", 1)
QUEUE_SIZE = _env_int("DEEPFAKE_FORENSICS_QUEUE_SIZE", 16)
# Not below 10 minutes: Gradio names cached outputs by content, so a response may point at a copy made
# for an earlier request, and a sweep during a long wait deletes it before the client reads it
# (measured: at 60 s under load every client got 403 on a gallery image).
CACHE_MAX_AGE_S = _env_int("DEEPFAKE_FORENSICS_CACHE_MAX_AGE_S", 3600, minimum=600)


def _explain_available() -> bool:
    """The explain package is optional at run time; without it we analyse without explanations."""
    try:
        from explain import explain_report  # noqa: F401
    except ImportError:
        return False
    return True


def _model_card() -> tuple[str, bool, dict | None, bool]:
    """(Markdown card, whether the weights are trained, their stored faithfulness test, whether they have a
    residual-pair stream). Reads the JSON sidecar only: no tensors."""
    try:
        spec = read_spec(DEFAULT_WEIGHTS)
    except ForensicsError as e:
        return f"> ⚠️ **Model card unavailable:** {e}", False, None, False
    return (views.model_card_markdown(spec), spec.trained, spec.metrics.get("faithfulness"),
            bool(spec.residual_width))


def analyze_steps(video: str | None, image: str | None, frames: int, face_detector: str, explain: bool,
                  progress: gr.Progress = gr.Progress(), out_dir: str | None = None):
    """One request, as the outputs become ready: first the verdict, its evidence and the face strip (the
    explanation galleries, chart, boxed clip and downloads still empty), then, with explanations on, everything.
    Without explanations the one full answer. Yields tuples in the order of the click's outputs.

    Files (boxed clip, JSON, HTML) go to out_dir, or a new temporary folder the caller owns."""
    path = video or image
    if not path:
        raise gr.Error("Upload a video or an image first.")
    notes = []
    if explain and not _explain_available():
        explain = False
        notes.append("explanations are not available in this build (the explain package is missing); "
                     "analysed without Grad-CAM")
    if face_detector not in DETECTORS:
        raise gr.Error(f"face detector must be one of {', '.join(DETECTORS)}, not {face_detector!r}")
    try:
        config = AnalysisConfig(frames=int(frames), explain=bool(explain),
                                faces=FaceConfig(detector=DETECTORS[face_detector]))
        report = analyze_video(path, config, progress=lambda f, m: progress(0.6 * f, desc=m), explain_later=True)
        report.warnings.extend(notes)
        if report.pending_explanations is not None:
            # The verdict now; Grad-CAM, the attributions and the files follow (~1-2 s at 60 frames on 2 cores).
            yield (views.label_value(report), views.timings_markdown(report),
                   views.face_gallery(report, per_face=STRIP), [], [], None, None, None, None,
                   views.cue_gallery(report))
            progress(0.7, desc="explaining (Grad-CAM and which frames moved the verdict)")
            report.pending_explanations()
        yield _full_outputs(report, out_dir or tempfile.mkdtemp(prefix="dff_"), progress)
    except InputError as e:
        raise gr.Error(str(e)) from None
    except ForensicsError as e:  # e.g. weights missing or inconsistent: the message says the fix
        raise gr.Error(str(e).splitlines()[0]) from None
    except Exception as e:
        log.exception("analysis failed")
        raise gr.Error(f"analysis failed ({type(e).__name__}); please try another file") from None
    progress(1.0, desc="done")


def _full_outputs(report, out: str, progress: gr.Progress) -> tuple:
    """Every output of a finished report, its files written into `out`."""
    progress(0.87, desc="drawing face boxes")
    boxed = views.boxed_video(report, out)
    progress(0.92, desc="writing the JSON and HTML reports (every frame's crop and maps)")
    json_path, html_path = views.write_downloads(report, out)
    progress(0.97, desc="drawing the chart and galleries")
    # What an analyst looks at first: a strip of each track and the frames the attribution names; the rest
    # is in the HTML report, so a response carries ~15 images, not one per frame and map (~180).
    return (views.label_value(report), views.timings_markdown(report),
            views.face_gallery(report, per_face=STRIP), views.gradcam_gallery(report, top_only=True),
            views.gradcam_gallery(report, "texture", top_only=True),
            views.temporal_figure(report), boxed, json_path, html_path, views.cue_gallery(report))


def analyze(video: str | None, image: str | None, frames: int, face_detector: str, explain: bool,
            progress: gr.Progress = gr.Progress(), out_dir: str | None = None):
    """One request's full answer (the last of `analyze_steps`): what the API returns, what tests check."""
    out = None
    for out in analyze_steps(video, image, frames, face_detector, explain, progress, out_dir):
        pass
    return out


def serve_analyze(video: str | None, image: str | None, frames: int, face_detector: str, explain: bool,
                  progress: gr.Progress = gr.Progress()):
    """The served handler: `analyze_steps` in a work folder that is removed once the response is served.

    A generator on purpose: the verdict is shown while the explanations are computed, and Gradio copies the
    returned files into its own cache while post-processing a yielded value and only then asks for the next
    one, so the `finally` runs after the copy (and on errors). Gradio's copies and the uploads are removed by
    `delete_cache` after CACHE_MAX_AGE_S.
    """
    work = tempfile.mkdtemp(prefix="dff_")
    try:
        yield from analyze_steps(video, image, frames, face_detector, explain, progress, out_dir=work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        # Off the answer's path: this generator's end is what Gradio waits for before it completes the
        # request, and the collection + trim take ~0.3 s after a 60-frame 1080p analysis (issue 41).
        threading.Thread(target=_release_memory, name="release-memory", daemon=True).start()


def _release_memory() -> None:
    """Hand freed heap back to the OS after a request. Gradio runs requests on varying threads, each
    with its own glibc malloc arena, so without this the RSS creeps up request after request."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to trim
        pass


MODEL_CARD, TRAINED, FAITHFULNESS, HAS_STREAM = _model_card()

# delete_cache=(every, older than): uploads and Gradio's copies of our outputs live at most ~1.25 × the age.
with gr.Blocks(title="Deepfake forensics", delete_cache=(max(60, CACHE_MAX_AGE_S // 4), CACHE_MAX_AGE_S)) as demo:
    gr.Markdown("# Deepfake forensics\nUpload a video (or a single image). Each face is tracked, scored by a "
                "ResNeXt50 + LSTM, and explained with Grad-CAM and temporal importance."
                + ("" if TRAINED else "\n\n> ⚠️ **The loaded model is UNTRAINED (random weights): "
                                      "its verdicts mean nothing.** See the model card below."))
    with gr.Row():
        with gr.Column(scale=1):
            video_in = gr.Video(label="Video", sources=["upload"], elem_id="video-in")
            image_in = gr.Image(label="…or one image", type="filepath", sources=["upload"], height=200)
            frames_in = gr.Dropdown(list(FRAME_CHOICES), value=DEFAULT_FRAMES, label="Frames sampled over the clip")
            detector_in = gr.Radio(list(DETECTORS), value="BlazeFace", label="Face detector",
                                   info="HOG is fast on CPU; CNN finds harder poses but is slower")
            explain_in = gr.Checkbox(value=True, label="Explanations (Grad-CAM + which frames moved the verdict)")
            run_btn = gr.Button("Analyze", variant="primary", elem_id="analyze-btn")
        with gr.Column(scale=2):
            verdict_out = gr.Label(label="Verdict", num_top_classes=2, elem_id="verdict")
            timings_out = gr.Markdown(label="Evidence, details and processing time", elem_id="summary")
            boxed_out = gr.Video(label="Sampled frames, faces boxed green (real) → red (fake)", format=None,
                                 height=360,
                                 interactive=False)
            with gr.Row():
                json_out = gr.File(label="JSON report")
                html_out = gr.File(label="HTML report")
    with gr.Tab("Face tracks"):
        gr.Markdown(f"{STRIP} frames spread over each face track. {ALL_FRAMES}")
        faces_out = gr.Gallery(label="Face crops", columns=8, height="auto", elem_id="faces", format="jpeg")
    with gr.Tab("Mouth detail (measured cue)"):
        gr.Markdown("Besides the network, the verdict weighs one fixed measurement: how much less fine detail the "
                    "lower face has than the upper face (lip-sync generators re-draw the mouth at low resolution). "
                    "Each face's reading, what it added to the verdict, and the frame that shows it. Some real "
                    "faces read high too (studio light from above, a smooth chin under busy brows): weigh it with "
                    "the network's own margin, shown beside the verdict.")
        cue_out = gr.Gallery(label="What the mouth-detail cue compares", columns=2, height="auto", elem_id="cue",
                             format="jpeg")

    def texture_tab() -> gr.Gallery:
        with gr.Tab("Grad-CAM: grain between frames"):
            gr.Markdown("Where the finest grain of each frame and of the video frame right after it pushed the "
                        "verdict (the residual-pair stream, which carries most of the default model's decision). "
                        "Red: grain that does not renew itself as a camera's does. Empty for an image. Shown: the "
                        "frames that moved the verdict most. " + ALL_FRAMES + "\n\n"
                        + page.map_check(FAITHFULNESS, "texture"))
            return gr.Gallery(label="Grad-CAM on the residual-pair stream", columns=8, height="auto",
                              elem_id="texture-cams", format="jpeg")

    def appearance_tab() -> gr.Gallery:
        with gr.Tab("Grad-CAM: appearance"):
            gr.Markdown("Where the ResNeXt50's last block looked, in the frames that moved the verdict most. "
                        + ALL_FRAMES + "\n\n" + page.map_check(FAITHFULNESS, "appearance"))
            return gr.Gallery(label="Grad-CAM overlays", columns=8, height="auto", elem_id="cams", format="jpeg")

    # The texture map's tab first for a model with a stream (on the default weights the map the deletion test
    # found pointing at what the model uses); each tab says what that test found for its map.
    if HAS_STREAM:
        texture_out, cams_out = texture_tab(), appearance_tab()
    else:
        cams_out, texture_out = appearance_tab(), texture_tab()
    with gr.Tab("Temporal chart"):
        plot_out = gr.Plot(label="Which frames moved the verdict (signed) and p(fake)", elem_id="temporal")
    with gr.Accordion("Model card", open=not TRAINED):
        gr.Markdown(MODEL_CARD)
    inputs = [video_in, image_in, frames_in, detector_in, explain_in]
    # The examples run as the product's defaults do (frames, face detector), so that the verdict is read as
    # the threshold was calibrated and no "other frame count" warning greets a first visitor.
    gr.Examples([[str(p), None, DEFAULT_FRAMES, "BlazeFace", True] for p in sorted(EXAMPLES_DIR.glob("*.mp4"))],
                inputs=inputs, label="Examples (what each is and its licence: assets/examples/README.md)",
                cache_examples=False)
    run_btn.click(serve_analyze, inputs=inputs,
                  outputs=[verdict_out, timings_out, faces_out, cams_out, texture_out, plot_out, boxed_out,
                           json_out, html_out, cue_out],
                  api_name="analyze")

# Past QUEUE_SIZE waiting requests Gradio turns new ones away: the browser shows "This application is
# currently busy. Please try again.", gradio_client raises QueueError("Queue is full! Please try again.").
demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)

if __name__ == "__main__":
    demo.launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
