import sys
from pathlib import Path

# ``plugins/`` is a top-level folder of the repository, not part of the installed package.
ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
