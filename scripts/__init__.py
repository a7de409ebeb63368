"""Developer scripts (the local cluster, the ``--py-files`` archive, explorer screenshots); not part of
the wheel.

A regular package, not a namespace one, so ``python -m scripts.<name>`` and ``import scripts.<name>``
from the repository root cannot pick up an unrelated ``scripts`` package installed in site-packages.
"""
