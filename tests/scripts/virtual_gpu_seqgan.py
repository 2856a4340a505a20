"""`seqgan ARGS` on a GPU played by the CPU (tests/virtual_gpu.py), where `device=cuda` means it:
`python tests/scripts/virtual_gpu_seqgan.py train configs/smoke.yaml device=cuda ...`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from seqgan.cli.main import main  # noqa: E402
from virtual_gpu import virtual_gpu  # noqa: E402

with virtual_gpu():
    status = main()
sys.exit(status)
