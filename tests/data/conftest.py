import pytest

from cat_deploy.data.synthetic import generate_dataset


@pytest.fixture(scope="session")
def synth_coco(tmp_path_factory):
    """A tiny synthetic COCO dataset: (images_dir, annotations.json)."""
    out = tmp_path_factory.mktemp("synth")
    ann = generate_dataset(out, 8, size=(320, 96), seed=3)
    return out / "images", ann
