import importlib.util
import os

import pytest
import torch

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
