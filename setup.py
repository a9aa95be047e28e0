"""Build step for the one compiled part: the progress tracker's local search.

Everything else is in pyproject.toml. The extension is optional: where no C compiler or
Python headers are found, the install goes on and tmstate.core.progress uses its Python code.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "tmstate.core._progress_kernel",
            ["tmstate/core/_progress_kernel.c"],
            extra_compile_args=["-O2", "-ffp-contract=off"],  # bit-identical to the Python code
            optional=True,
        )
    ]
)
