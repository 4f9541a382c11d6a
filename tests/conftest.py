import importlib.util
import os

import pytest
import torch

from cat_deploy.plugins.ort_library import library_path

# Under pytest-xdist every worker is its own process: one intra-op thread each keeps the
# workers from oversubscribing the cores (PyTorch slows down ~50x when they do).
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    has_trt = importlib.util.find_spec("tensorrt") is not None
    has_gpu = torch.cuda.is_available()
    for item in items:
        if "tensorrt" in item.keywords and not has_trt:
            item.add_marker(pytest.mark.skip(reason="TensorRT is not installed (pip install '.[trt]' on a CUDA machine)"))
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(pytest.mark.skip(reason="no CUDA GPU on this machine"))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def ort_ops_library():
    """Path of the compiled ONNX Runtime operator library (plugins/cpp); skips when it is not built, and fails
    instead under scripts/test.sh (CAT_DEPLOY_REQUIRE_ORT_OPS=1), whose setup builds it."""
    from cat_deploy.plugins.ort_library import library_path

    path = library_path()
    if path is None:
        msg = "libcat_deploy_ort_ops.so is not built: python -m cat_deploy.plugins.build"
        if os.environ.get("CAT_DEPLOY_REQUIRE_ORT_OPS") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return path
