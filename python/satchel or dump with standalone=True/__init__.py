"""Where a format 1.4 lean satchel stream's header finds its check (``c``); still read.

A lean stream (the default: it needs satchel on the receiver) opens with ``GLOBAL '<this
module>' c``. Where satchel is installed, this module is satchel's bootstrap check. Where it is
not, ``pickle.loads`` fails to import it, and the error reads ``No module named 'satchel or dump
with standalone=True'``: install satchel on the receiver, or write the stream with
``standalone=True`` (or ``mode="portable"``), which carries its own constructors.
"""

import sys

from satchel import _satchel

sys.modules[__name__] = _satchel.lean_module(True)
