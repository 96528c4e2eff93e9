"""nbval runs the notebooks with their default parameters; keep their outputs out of the repo.

The kernel inherits this process's environment, so pointing the workbench's output directories at
a temporary directory here keeps `pytest --nbval-lax notebooks/` from overwriting `figures/`.
"""

import os
import tempfile

_scratch = tempfile.mkdtemp(prefix="workbench-nbval-")
os.environ["WORKBENCH_FIGURES_DIR"] = os.path.join(_scratch, "figures")
