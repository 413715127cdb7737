"""Build script for the one thing setup.cfg cannot declare: the optional C extension.

All metadata lives in setup.cfg. ``rxconnector.exchanges._cbook`` (the compiled
order-book core, issue #12) is ``optional``: on a machine without a C compiler or the
Python headers the build prints a warning and the package installs without it, and
every caller falls back to the pure-Python book and parser (same results, slower).
"""

import sys

from setuptools import Extension, setup

_GCC_LIKE = sys.platform != "win32"

setup(
    ext_modules=[
        Extension(
            "rxconnector.exchanges._cbook",
            ["rxconnector/exchanges/_cbook.c"],
            optional=True,
            extra_compile_args=["-std=c99"] if _GCC_LIKE else [],
        )
    ]
)
