"""Builds hotpath's compiled recorder; everything else is in pyproject.toml.

Where the extension cannot be built (no C compiler) the install still succeeds and hotpath runs
its pure-Python recorder, saying so. Free-threaded builds skip it: the recorder relies on the
GIL (see hotpath/recorder/__init__.py).
"""

import sys
import sysconfig

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """A failed compile is a warning, not a failed install: the Python recorder remains."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as error:
            self._skip(error)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as error:
            self._skip(error)

    @staticmethod
    def _skip(error: Exception) -> None:
        sys.stderr.write(
            f"hotpath: the compiled recorder was not built ({error}); "
            "hotpath will use its pure-Python recorder\n"
        )


extensions = []
if not sysconfig.get_config_var("Py_GIL_DISABLED"):
    # The recorder and the tracked thread locks: one module each, sharing _shared.h.
    for module in ("_crecorder", "_locks"):
        extensions.append(
            Extension(
                f"hotpath.recorder.{module}",
                sources=[f"hotpath/recorder/{module}.c"],
                depends=["hotpath/recorder/_shared.h"],
                extra_compile_args=[] if sys.platform == "win32" else ["-std=c99", "-O2"],
            )
        )

setup(ext_modules=extensions, cmdclass={"build_ext": OptionalBuildExt})
