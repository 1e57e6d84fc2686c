"""Offline tools (training, evaluation). Not shipped to the pole units."""

import os

# One BLAS thread per process, set before numpy loads: the log-mel front end's small matmuls run ~15x slower
# with threaded OpenBLAS on this 2-core machine, and feature extraction already uses one process per core.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
