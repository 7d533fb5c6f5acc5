"""The key names the tests use: the default prefix, as gateways, workers and
the CLI use it when ``TIDECHAT_KEY_PREFIX`` is unset. Module-level constants
import ``KEYS``; test functions take the ``keys`` fixture (the same object)."""

from __future__ import annotations

from shared.keys import Keys

KEYS = Keys()
