"""Sphinx configuration of the neuroenc documentation (built with -W in the tests)."""

import os
import re
import sys

sys.path.insert(0, os.path.abspath(".."))

from neuroenc import __version__  # noqa: E402

project = "neuroenc"
author = "neuroenc developers"
copyright = "2026, neuroenc developers"
version = release = __version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "examples"]
autosummary_generate = True
autodoc_typehints = "description"
autodoc_member_order = "bysource"
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False
myst_heading_anchors = 3
html_theme = "alabaster"
html_static_path = []

_FOREIGN_REF = re.compile(r":ref:`([^`<]+?)\s*(?:<[^`>]+>)?`")


def _plain_foreign_refs(app, what, name, obj, options, lines):
    # methods inherited from scikit-learn (score, set_output, ...) cite labels of
    # scikit-learn's own docs, which do not exist here: keep the text, drop the link
    if not str(getattr(obj, "__module__", None) or "neuroenc").startswith("neuroenc"):
        lines[:] = [_FOREIGN_REF.sub(r"\1", line) for line in lines]


def setup(app):
    app.connect("autodoc-process-docstring", _plain_foreign_refs)
