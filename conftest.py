"""Test-session setup for tests/ and notebooks/ (nbval).

- every notebook runs in the ``smoke`` profile (the kernels inherit ``FTLIB_PROFILE``);
- no hub: ``HF_HUB_OFFLINE=1``, and a network guard (tests/netguard) in this process and in every
  child Python process refuses and logs any non-loopback connection; the session fails if the
  log is not empty at the end;
- a fresh course cache (``FTLIB_HOME``) per session, so the builds themselves are tested,
  unless ``FTLIB_TEST_HOME`` names one to reuse; the session's temporary folder is removed at the end.
"""
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
_session_dir = Path(tempfile.mkdtemp(prefix="ftlib-tests-"))
NETGUARD_LOG = _session_dir / "network-attempts.log"

os.environ["FTLIB_PROFILE"] = "smoke"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["MPLBACKEND"] = "Agg"
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see ftlib/engine/hardware.py: shared cores
os.environ["FTLIB_RECORDS"] = str(_session_dir / "records.json")
os.environ["FTLIB_HOME"] = os.environ.get("FTLIB_TEST_HOME") or str(_session_dir / "home")
os.environ["FTLIB_NETGUARD_LOG"] = str(NETGUARD_LOG)
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(ROOT / "tests" / "netguard"), str(ROOT), os.environ.get("PYTHONPATH", "")])

# Load the guard into this process too (it installs itself because FTLIB_NETGUARD_LOG is set).
_spec = importlib.util.spec_from_file_location("ftlib_netguard", ROOT / "tests" / "netguard" / "sitecustomize.py")
_spec.loader.exec_module(importlib.util.module_from_spec(_spec))


def pytest_sessionfinish(session, exitstatus):
    if NETGUARD_LOG.exists() and NETGUARD_LOG.read_text().strip():
        print(f"\nNETWORK ACCESS WAS ATTEMPTED during the tests (must be offline):\n{NETGUARD_LOG.read_text()}")
        session.exitstatus = 1
    # The session's course cache (the dequantized SmolLM2 alone is 517 MB) and records go with it.
    shutil.rmtree(_session_dir, ignore_errors=True)
