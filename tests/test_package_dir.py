"""What `dir(minirobera)` shows a learner: the public names, not the package's plumbing."""

import subprocess
import sys


def test_dir_shows_the_public_names_and_no_helper():
    code = "import minirobera; print(' '.join(dir(minirobera)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    names = set(done.stdout.split())
    import minirobera

    assert names == set(minirobera.__all__) | {"__version__"}  # a fresh import: no submodule yet
    assert "import_module" not in names and not any(n.startswith("_i") for n in names)
