"""tools/gpu_check.py runs end to end on the CPU (--dry-run: TRITON_INTERPRET, tiny shapes)."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_check_dry_run(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "gpu_check.py"), "--dry-run", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_fused_pool.json").read_text())
    assert report["env"]["dry_run"] is True
    assert len(report["cases"]) == 4  # 2 shapes x (fp32, fp16)
    for case in report["cases"]:
        for key in ("rel_err_fused", "rel_err_plugin", "time_copy_s", "time_eager_s", "time_fused_best_s",
                    "time_plugin_s", "fused_bandwidth_gbs", "fused_copy_ratio", "speedup_fused_vs_eager"):
            assert key in case
        tol = 1e-5 if case["dtype"] == "float32" else 2e-3
        assert case["max_rel_err"] <= tol
    assert report["verdict"]["rel_err_fp32_ok"]
    md = (tmp_path / "gpu_fused_pool.md").read_text()
    assert "Dry run" in md and "| F | dtype |" in md
