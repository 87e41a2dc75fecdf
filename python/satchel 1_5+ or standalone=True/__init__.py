"""Where a lean satchel stream's header finds its check (``c``), format 1.5 and later.

A lean stream (the default: it needs satchel on the receiver) opens with ``GLOBAL '<this
module>' c``. Where satchel 1.5 or newer is installed, this module is satchel's check. Where it
is not (no satchel, or an older one), ``pickle.loads`` fails to import it, and the error reads
``No module named 'satchel 1_5+ or standalone=True'``: install or upgrade satchel on the
receiver, or write the stream with ``standalone=True`` (or ``mode="portable"``), which carries
its own constructors.
"""

import sys

from satchel import _satchel

sys.modules[__name__] = _satchel.lean_module()
