"""The encoders pathview knows: one module per family of published models.

Importing this package registers them all. To add an encoder, write a module here
that calls :func:`pathview.encoders.registry.register` and import it below.
"""

from __future__ import annotations

from . import conch, gigapath, hoptimus, kaiko, pathview_he, phikon, uni, virchow  # noqa: F401
