"""The one compiled part, optional: cauldron_proto.broker._batchio (docs/native.md).

Everything else is in pyproject.toml. ``optional=True``: where it cannot be built (no C
compiler, no dlfcn.h), the install still succeeds and the broker runs its pure-Python loop.
It links nothing: at import it takes libzmq's functions from the copy pyzmq has loaded.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("cauldron_proto.broker._batchio", ["src/cauldron_proto/broker/_batchio.c"],
                             extra_compile_args=["-O2", "-Wall"], optional=True)])
