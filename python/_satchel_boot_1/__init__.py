"""The wire name of satchel's bootstrap constructors (format major 1).

Streams name their constructors ``_satchel_boot_1.<name>``; importing this module makes a
receiver that has satchel installed resolve them with plain ``pickle.loads``. The constructors
themselves are the source embedded in satchel's binary (``bootstrap/boot.py``).
"""

import sys

from satchel import _satchel

sys.modules[__name__] = _satchel.bootstrap_module()
