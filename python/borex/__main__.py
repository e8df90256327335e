"""``python -m borex …``: the ``borex`` command line (same arguments and outputs)."""

from ._package import main

if __name__ == "__main__":
    main()
