"""Hides the top-level modules named in ``$TURNGYM_TEST_BLOCKED`` (comma-separated) from this
interpreter, as if their distributions were not installed (see ``tests/helpers/extras.py``).

``sys.modules[name] = None`` makes ``import name`` raise ``ModuleNotFoundError`` and
``importlib.util.find_spec(name)`` return None, the two ways libraries probe for a package.
"""

import os
import sys

__all__: list[str] = []

for _name in filter(None, os.environ.get("TURNGYM_TEST_BLOCKED", "").split(",")):
    sys.modules.setdefault(_name, None)
