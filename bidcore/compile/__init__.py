"""Build model artifacts: compile a LightGBM model with Treelite, TL2cgen and gcc, check the
library against LightGBM, and write the directory the engine loads (:mod:`bidcore.artifact`).

Needs the ``bidcore[compile]`` extra (``lightgbm``, ``treelite``, ``tl2cgen``, ``numpy``,
``tqdm``) and gcc. Tested with lightgbm 4.7.0, treelite 4.8.1 and tl2cgen 1.0.0 (which embeds
Treelite 4.1.2 and says so on every code generation: see :mod:`.toolchain`), numpy 2.4.6 and
gcc 12.2; :data:`TESTED_TOOLCHAIN` records the combination. Whatever the versions, no library is
accepted before it reproduces LightGBM's raw margins on the check rows.

The command line does the same: ``bidcore compile MODEL.txt -o ARTIFACT``.

Modules: :mod:`.build` (:func:`build_artifact`), :mod:`.modeltext` (what the model text says),
:mod:`.probes` (check rows generated from the model), :mod:`.library` (C generation, parallel
gcc, the cache), :mod:`.agreement` (the check), :mod:`.reference` (drift histograms),
:mod:`.toolchain` (versions, the native libraries' output).
"""

from bidcore.compile.agreement import TOLERANCE
from bidcore.compile.build import build_artifact
from bidcore.compile.library import default_cache_dir
from bidcore.compile.toolchain import TESTED_TOOLCHAIN

__all__ = ["TESTED_TOOLCHAIN", "TOLERANCE", "build_artifact", "default_cache_dir"]
