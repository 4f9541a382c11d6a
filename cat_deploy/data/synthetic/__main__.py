"""``python -m cat_deploy.data.synthetic``: write a synthetic dataset (see :func:`.writer.main`)."""
import sys

from .writer import main

if __name__ == "__main__":
    sys.exit(main())
