"""Build script for the optional C accelerator; the package metadata lives in setup.cfg.

``pip install -e .`` (or ``pip install .``) compiles ``pybroker._native`` from native/.
The extension is optional: without a C compiler the build still succeeds and pybroker
uses its pure-Python twin (``pybroker.client._records_py``), which gives the same bytes.
"""
from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "pybroker._native",
            sources=["native/_native.c"],
            extra_compile_args=["-O3", "-Wall"],
            optional=True,
        )
    ],
)
