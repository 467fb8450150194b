"""Test-run defaults, applied before any test or notebook kernel starts.

``python3 course.py test`` sets the first ones too; this file makes a bare ``pytest`` behave the
same: quick mode, offline mode, one CPU thread per process, and Triton's CPU interpreter
when there is no CUDA GPU, each only where the caller has not chosen otherwise.
Notebook kernels inherit them.
"""

import os

os.environ.setdefault("TEXTFT_QUICK", "1")
os.environ.setdefault("TEXTFT_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("OMP_NUM_THREADS", "1")  # tiny models: one thread is as fast, and robust to a busy machine
if "TRITON_INTERPRET" not in os.environ:
    import torch  # importing torch does not import triton, so the flag still takes effect

    if not torch.cuda.is_available():
        os.environ["TRITON_INTERPRET"] = "1"
