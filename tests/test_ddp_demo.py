import pytest
import json
import os
import subprocess
import sys

import torch

from ftlib.engine.ddp_demo import run


@pytest.mark.slow  # torchrun, two processes
def test_two_process_ddp_matches_one_process_with_the_same_global_batch(tmp_path):
    out = tmp_path / "ddp.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                    "-m", "ftlib.engine.ddp_demo", "--steps", "6", "--out", str(out)],
                   check=True, env=env, timeout=120, capture_output=True)
    result = json.loads(out.read_text())
    assert result["world_size"] == 2
    single = run(steps=6)
    assert single[-1] < single[0]                                   # it trains
    assert not torch.allclose(torch.tensor(single[1:]), torch.tensor(single[:-1]))
    torch.testing.assert_close(torch.tensor(result["losses"]), torch.tensor(single), rtol=1e-5, atol=1e-5)
    # a different global batch gives different losses, so the comparison above can fail
    assert not torch.allclose(torch.tensor(run(steps=6, global_batch=8)), torch.tensor(single), atol=1e-5)
