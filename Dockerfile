# deepfake-forensics app on CPU: a Hugging Face Docker Space as it is, or one command on any machine:
#   docker build -t deepfake-forensics . && docker run --rm -p 7860:7860 deepfake-forensics
# Installs as `make setup` does: torch + torchvision first, then the project, then face-recognition with
# --no-deps (its metadata asks for the source `dlib`, a ~9-minute compile; dlib-bin provides the module).
FROM python:3.11-slim

# Where torch and torchvision come from. The default, PyTorch's CPU index, gives CPU-only wheels (~200 MB);
# `--build-arg TORCH_INDEX=` takes them from PyPI instead, whose Linux wheels bring the CUDA libraries
# (several GB) that this CPU image never uses.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

# Hugging Face Docker Spaces run the container as UID 1000: a user of our own, a writable HOME (Gradio's
# temporary files, torch and matplotlib caches) and the app in it. No system packages are needed: the
# wheels carry their libraries (torch its OpenMP, imageio-ffmpeg its ffmpeg, dlib-bin and OpenCV theirs).
RUN useradd --create-home --uid 1000 user
USER user
ENV HOME=/home/user \
    VIRTUAL_ENV=/home/user/venv \
    PATH=/home/user/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_SERVER_PORT=7860 \
    GRADIO_ANALYTICS_ENABLED=False \
    RAY_USAGE_STATS_ENABLED=0
WORKDIR /home/user/app

# torch first and on its own, in a layer that survives changes to the code.
RUN python -m venv "$VIRTUAL_ENV" \
 && pip install -q --upgrade pip wheel "setuptools<81" \
 && pip install -q "torch>=2.4" torchvision ${TORCH_INDEX:+--index-url "$TORCH_INDEX"}

COPY --chown=user . .
RUN pip install -q -e . \
 && pip install -q --no-deps "face-recognition==1.3.0" \
 && python -c "import app"

EXPOSE 7860
CMD ["python", "app.py"]
